"""The predict command on files, folders and zip archives: a line per image, and an exit status that tells."""
from __future__ import annotations

import io
import json
import zipfile

from PIL import Image

from medimg_core.cli.main import main
from tests.imagegen import bare_dicom, dicom_of


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
                                              "(.bmp, .dcm, .gif, .j2k, .jp2, .jpeg, .jpg, .png, .tif, .tiff, .webp, " \
                                              "or DICOM files without a suffix)."


def test_a_dicom_tree_of_files_without_suffixes_is_read_but_not_its_index(scans, tmp_path, capsys):
    series = tmp_path / "export" / "DICOM" / "PA000000" / "ST000000" / "SE000000"
    series.mkdir(parents=True)
    (series / "IM000000").write_bytes(dicom_of(scans["Hand"], modality="CR"))
    (series / "1.2.840.113619.2.55.3.604688.234").write_bytes(dicom_of(scans["CXR"], modality="CR"))
    (series / "README").write_text("not an image, and without a suffix")
    (tmp_path / "export" / "DICOMDIR").write_bytes(dicom_of(scans["Hand"], modality="CR"))
    assert main(["predict", "--task", "modality", "--json", str(tmp_path / "export")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted(r["file"].rsplit("/", 1)[1] for r in rows) == ["1.2.840.113619.2.55.3.604688.234", "IM000000"]
    assert sorted(r["label"] for r in rows) == ["CXR", "Hand"]


def test_a_dicom_written_without_preamble_and_file_meta_is_read_in_a_tree_and_named_dcm(scans, tmp_path, capsys):
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "IMG0001").write_bytes(bare_dicom(dicom_of(scans["Hand"], modality="CR")))
    (tmp_path / "old" / "chest.dcm").write_bytes(bare_dicom(dicom_of(scans["CXR"], modality="CR"), implicit_vr=False))
    assert main(["predict", "--task", "modality", "--json", str(tmp_path / "old")]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert sorted((r["file"].rsplit("/", 1)[1], r["label"], r["error"]) for r in rows) == [
        ("IMG0001", "Hand", None), ("chest.dcm", "CXR", None)]


def test_a_zipped_dicom_tree_is_read_member_by_member(scans, tmp_path, capsys):
    archive = tmp_path / "cd.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("DICOM/I0", dicom_of(scans["Hand"], modality="CR"))
        zf.writestr("DICOM/NOTES", "plain text")
    assert main(["predict", "--task", "modality", "--json", str(archive)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["file"], r["label"]) for r in rows] == [(f"{archive}/DICOM/I0", "Hand")]


def test_predict_exits_non_zero_only_when_no_input_could_be_read(samples, tmp_path, capsys):
    bad, good = tmp_path / "bad.png", tmp_path / "good.png"
    bad.write_bytes(samples.broken)
    good.write_bytes(samples.hand_like_png())
    assert main(["predict", "--task", "modality", str(bad), str(tmp_path / "missing.png")]) == 1
    assert main(["predict", "--task", "modality", str(bad), str(good)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_predict_json_gives_a_dicoms_header_and_its_check_but_never_who_it_is(scans, tmp_path, capsys):
    from tests.imagegen import dicom_of

    (tmp_path / "hand.dcm").write_bytes(dicom_of(scans["Hand"], "DX", {
        "BodyPartExamined": "CHEST", "ViewPosition": "PA", "StudyDescription": "XR CHEST 2 VIEWS",
        "PatientName": "Qzxv^Marker", "PatientID": "PID-7731-Q", "PatientBirthDate": "19510203",
        "InstitutionName": "St Leakwell Hospital", "AccessionNumber": "ACC-99172"}))
    (tmp_path / "hand.jpeg").write_bytes(scans["Hand"])
    assert main(["predict", "--task", "modality", "--json", str(tmp_path / "hand.dcm"), str(tmp_path / "hand.jpeg")]) == 0
    out = capsys.readouterr().out
    dicom, jpeg = [json.loads(line) for line in out.splitlines()]
    assert dicom["label"] == "Hand" and jpeg["dicom"] is None
    assert dicom["dicom"] == {
        "modality": "DX", "modality_name": "X-ray", "body_part": "CHEST", "study_description": "XR CHEST 2 VIEWS",
        "series_description": None, "view": "PA", "pixel_spacing": None, "rows": 64, "columns": 64,
        "photometric": "MONOCHROME2", "window": {"center": 2040.0, "width": 4080.0, "source": "file"},
        "agrees": False, "note": "The header says X-ray of the CHEST; the image looks like a hand X-ray."}
    assert not [leak for leak in ("Qzxv", "PID-7731", "1951", "Leakwell", "ACC-99172") if leak in out]


def test_predict_text_says_whether_the_header_agrees(scans, tmp_path, capsys):
    from tests.imagegen import dicom_of

    (tmp_path / "chest.dcm").write_bytes(dicom_of(scans["Hand"], "CR", {"BodyPartExamined": "CHEST"}))
    (tmp_path / "hand.dcm").write_bytes(dicom_of(scans["Hand"], "CR", {"BodyPartExamined": "HAND"}))
    assert main(["predict", "--task", "modality", str(tmp_path / "chest.dcm"), str(tmp_path / "hand.dcm")]) == 0
    chest, hand = capsys.readouterr().out.splitlines()[:2]
    assert chest.startswith(f"{tmp_path / 'chest.dcm'}: Hand (") and chest.endswith(
        "Decided by the image; its DICOM header says X-ray of the CHEST, which does not fit a hand X-ray (headers are "
        "sometimes wrong).")
    assert hand.startswith(f"{tmp_path / 'hand.dcm'}: Hand (") and hand.endswith(
        "The image and its DICOM header (X-ray of the HAND) agree.")


def test_the_summary_names_the_files_of_a_folder_that_were_skipped(samples, tmp_path, capsys):
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "hand.png").write_bytes(samples.hand_like_png())
    (tmp_path / "scans" / "notes.txt").write_text("not an image")
    (tmp_path / "scans" / ".DS_Store").write_bytes(b"\0")  # hidden: neither read nor counted
    assert main(["predict", "--task", "modality", str(tmp_path / "scans")]) == 0
    assert capsys.readouterr().err.strip().endswith(
        "; 1 other file in the folders and zips skipped, not images by its name (notes.txt)")


def test_a_jpeg_2000_file_in_a_folder_is_read_not_skipped(samples, tmp_path, capsys):
    (tmp_path / "scans").mkdir()
    hand = Image.open(io.BytesIO(samples.hand_like_png()))
    hand.save(tmp_path / "scans" / "hand.jp2")
    assert main(["predict", "--task", "modality", str(tmp_path / "scans")]) == 0
    out, err = capsys.readouterr()
    assert out.startswith(f"{tmp_path / 'scans' / 'hand.jp2'}: ") and "skipped" not in err
