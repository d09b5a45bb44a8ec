"""The predict command on files, folders and zip archives: a line per image, and an exit status that tells."""
from __future__ import annotations

import json
import zipfile

from medimg_core.cli import main


def test_a_folder_is_searched_recursively_and_every_image_gets_a_line(samples, tmp_path, capsys):
    (tmp_path / "scans" / "more").mkdir(parents=True)
    for i, folder in enumerate(("scans", "scans", "scans/more")):
        (tmp_path / folder / f"hand{i}.png").write_bytes(samples.hand_like_png())
    (tmp_path / "scans" / "notes.txt").write_text("not an image")
    assert main(["predict", "--task", "modality", "--json", str(tmp_path / "scans")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["file"].rsplit("scans/", 1)[1] for r in rows) == ["hand0.png", "hand1.png", "more/hand2.png"]
    assert all(r["error"] is None for r in rows)


def test_a_zip_archive_is_read_image_by_image(samples, tmp_path, capsys):
    archive = tmp_path / "scans.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a/hand.png", samples.hand_like_png())
        zf.writestr("b/broken.png", samples.broken)
    assert main(["predict", "--task", "modality", str(archive)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith(f"{archive}/b/broken.png: error: ")


def test_a_folder_without_images_exits_non_zero_with_one_sentence(tmp_path, capsys):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "readme.txt").write_text("nothing to see")
    assert main(["predict", "--task", "modality", str(tmp_path / "docs")]) == 1
    assert capsys.readouterr().out.strip() == f"{tmp_path / 'docs'}: error: {tmp_path / 'docs'} holds no images " \
                                              "(.bmp, .dcm, .gif, .jpeg, .jpg, .png, .tif, .tiff, .webp)."


def test_predict_exits_non_zero_only_when_no_input_could_be_read(samples, tmp_path, capsys):
    bad, good = tmp_path / "bad.png", tmp_path / "good.png"
    bad.write_bytes(samples.broken)
    good.write_bytes(samples.hand_like_png())
    assert main(["predict", "--task", "modality", str(bad), str(tmp_path / "missing.png")]) == 1
    assert main(["predict", "--task", "modality", str(bad), str(good)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4
