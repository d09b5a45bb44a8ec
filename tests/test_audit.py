"""`medimg audit` on Ray Data: a tiny archive made here (a folder, a zip inside it, DICOMs whose header disagrees,
a broken file, a non-image, a DICOM without pixels, copies of one image) audited once with local Ray on 2 CPUs."""
from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageEnhance

from medimg_core.inference.audit_files import discover, file_format
from medimg_core.cli.audit import add_audit_parser, cmd_audit
from medimg_core.inference.audit_summary import (COPY, FILES, HEADER_DISAGREES, IDENTICAL, NOT_AN_IMAGE,
                                                 NOT_RECOGNISED, PARTS, RECOGNISED, ROW_SCHEMA, STUDY_DISAGREES,
                                                 SUMMARY, UNREADABLE, counted, duplicates_sentence, read_audit,
                                                 summary_lines, write_part)
from medimg_core import read_image, to_model_input
from medimg_core.data.duplicates import hamming, perceptual_hashes
from medimg_core.io.imaging import to_uint8
from tests.imagegen import dicom_bytes, dicom_of, nifti_bytes, png_bytes

ROOT = Path(__file__).resolve().parents[1]
NAME, PATIENT_ID = "Quixotic^Zebediah", "ZX-7741-MARK"  # identifying fields that must appear in no output
STUDY_A, STUDY_B = "1.2.826.0.1.3680043.99.771234567", "1.2.826.0.1.3680043.99.881234567"
MARKERS = (NAME, "Zebediah", PATIENT_ID, STUDY_A, STUDY_B, "771234567", "881234567")


def identified(study: str) -> dict:
    """DICOM tags naming a patient and a study, all of them markers."""
    return {"PatientName": NAME, "PatientID": PATIENT_ID, "StudyInstanceUID": study}


def model_phash(data: bytes) -> int:
    """The pHash the audit gives a picture (of its 64 x 64 model input)."""
    return int(perceptual_hashes(to_uint8(to_model_input(read_image(data), 64))[None])[0])


def near_copy(data: bytes) -> bytes:
    """The picture edited a little and saved as JPEG: a near copy (pHash 1-4 bits away), not a byte-for-byte one."""
    im = Image.open(io.BytesIO(data)).convert("L")
    for edited in (ImageEnhance.Contrast(im).enhance(1.4), ImageEnhance.Brightness(im).enhance(1.2),
                   ImageEnhance.Brightness(im).enhance(1.3), im.rotate(3)):
        buf = io.BytesIO()
        edited.save(buf, format="JPEG", quality=90)
        if 0 < hamming(model_phash(data), model_phash(buf.getvalue())) <= 4:
            return buf.getvalue()
    pytest.skip("no small edit of this scan lands 1-4 pHash bits away")


def cut_short_png(data: bytes) -> bytes:
    """A picture saved as PNG and cut off half way, as an interrupted copy leaves it."""
    buf = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buf, format="PNG")
    return buf.getvalue()[: buf.tell() // 2]


@pytest.fixture(scope="session")
def archive(tmp_path_factory, scans) -> SimpleNamespace:
    """The tiny archive, and the name under which each of its files must appear as a row."""
    root = tmp_path_factory.mktemp("archive")
    hand, chest = scans["Hand"], scans["CXR"]
    files = {
        "xrays/hand.jpeg": hand, "xrays/hand-copy.jpeg": hand, "xrays/hand-resaved.jpg": near_copy(hand),
        "xrays/broken.png": cut_short_png(hand),
        "notes.txt": b"not an image, a note about the scans",
        "dicom/IM0001": dicom_of(chest, modality="CR", tags={"BodyPartExamined": "CHEST", **identified(STUDY_B)}),
        ".DS_Store": b"hidden",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    members = {
        "study-a/hand-as-head-ct.dcm": dicom_of(hand, modality="CT", tags={"BodyPartExamined": "HEAD",
                                                                           **identified(STUDY_A)}),
        "study-a/chest.dcm": dicom_of(chest, modality="DX", tags={"BodyPartExamined": "CHEST", **identified(STUDY_A)}),
        "study-a/report.dcm": dicom_bytes(np.zeros((4, 4), np.uint16), with_pixels=False, modality="SR",
                                          tags=identified(STUDY_A)),
        "__MACOSX/study-a/._chest.dcm": b"resource fork",
    }
    with zipfile.ZipFile(root / "series.zip", "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    rows = [str(root / n) for n in files if not n.startswith(".")]
    rows += [f"{root / 'series.zip'}/{n}" for n in members if not n.startswith("__MACOSX")]
    return SimpleNamespace(root=root, rows=sorted(rows), path=lambda name: str(root / name))


@pytest.fixture(scope="session")
def ray_session():
    """Local Ray with 2 CPUs, started once for the whole test session."""
    ray = pytest.importorskip("ray")
    from medimg_core.inference.audit import start_ray

    started = start_ray(workers=2)
    yield ray
    if started:
        ray.shutdown()


def run_cli(*argv: str) -> tuple[int, str]:
    """Run `medimg audit ARGS` in-process; returns the exit status and everything it printed."""
    parser = argparse.ArgumentParser(prog="medimg")
    add_audit_parser(parser.add_subparsers(dest="command", required=True))
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        rc = cmd_audit(parser.parse_args(["audit", *argv]))
    return rc, out.getvalue()


@pytest.fixture(scope="session")
def audited(archive, ray_session, tmp_path_factory) -> SimpleNamespace:
    """The archive audited once through the command line, with two workers."""
    out = tmp_path_factory.mktemp("audit") / "result"
    rc, printed = run_cli(str(archive.root), "--out", str(out), "--workers", "2", "--batch-size", "4")
    audit = read_audit(out)
    return SimpleNamespace(rc=rc, printed=printed, out=out, audit=audit, rows=audit.rows.set_index("path"))


def test_the_audit_runs_and_prints_its_summary(audited):
    assert audited.rc == 0, audited.printed
    assert "audited 9 files" in audited.printed and f"wrote {audited.out / FILES}" in audited.printed
    assert "Traceback" not in audited.printed


def test_the_printed_summary_counts_one_of_a_thing_in_the_singular(tmp_path):
    summary = {"verdicts": {RECOGNISED: 1}, "flags": {HEADER_DISAGREES: 1}, "studies": [{"agrees": True}],
               "duplicates": {"groups": 1, "files": 2, "max_distance": 4, "identical_groups": 1, "identical_files": 2},
               "damaged_parts": 1}
    text = "\n".join(summary_lines(summary, tmp_path))
    assert "1 file whose DICOM header disagrees" in text and "1 study," in text and "1 group of copies" in text
    assert "1 group of identical files (2 files, the same bytes)" in text
    assert "1 part file could not be read and is left out" in text
    assert (counted(2, "study", "studies"), counted(1_024, "file")) == ("2 studies", "1,024 files")


def test_every_file_is_exactly_one_row_zip_members_and_suffixless_dicoms_included(audited, archive):
    assert sorted(audited.audit.rows["path"]) == archive.rows
    assert audited.audit.summary["files"] == audited.audit.summary["rows"] == len(archive.rows)
    assert audited.audit.summary["complete"] is True


def test_a_broken_file_a_non_image_and_a_dicom_without_pixels_are_rows_with_their_error(audited, archive):
    rows = audited.rows
    broken, notes = rows.loc[archive.path("xrays/broken.png")], rows.loc[archive.path("notes.txt")]
    report = rows.loc[f"{archive.path('series.zip')}/study-a/report.dcm"]
    assert (broken["verdict"], broken["format"]) == (UNREADABLE, "PNG") and "damaged" in broken["error"]
    assert (notes["verdict"], notes["format"]) == (NOT_AN_IMAGE, "unknown") and "not an image" in notes["error"]
    assert report["verdict"] == NOT_AN_IMAGE and "no pixel data" in report["error"] and report["modality"] == "SR"
    assert audited.audit.summary["errors_total"] == 3


def test_readable_scans_are_recognised_with_their_kind_and_header_fields(audited, archive):
    rows = audited.rows
    dicom = rows.loc[archive.path("dicom/IM0001")]
    assert (dicom["format"], dicom["verdict"], dicom["label"]) == ("DICOM", RECOGNISED, "CXR")
    assert (dicom["modality"], dicom["body_part"], dicom["header_agrees"]) == ("CR", "CHEST", True)
    assert rows.loc[archive.path("xrays/hand.jpeg"), "label"] == "Hand"
    assert rows.loc[archive.path("xrays/hand.jpeg"), "decided_by"] == "pixels"


def test_a_header_that_disagrees_with_the_image_is_in_the_summary(audited, archive):
    summary = audited.audit.summary
    path = f"{archive.path('series.zip')}/study-a/hand-as-head-ct.dcm"
    [found] = summary["disagreements"]
    assert found["path"] == path and found["closest"] == "Hand"
    assert "CT of the HEAD" in found["header_note"] and "hand X-ray" in found["header_note"]
    row = audited.rows.loc[path]
    assert row["decided_by"] != "pixels" and HEADER_DISAGREES in row["flags"]  # the header joined the verdict
    table = summary["crosstab"]
    assert table["counts"][table["header"].index("CT")][table["predicted"].index(row["verdict"])] == 1


def test_a_study_whose_images_disagree_is_named_by_a_salted_hash(audited):
    studies = {s["study"]: s for s in audited.audit.summary["studies"]}
    assert sorted(s["agrees"] for s in studies.values()) == [False, True]
    mixed = next(s for s in studies.values() if s["agrees"] is False)
    assert (mixed["files"], mixed["header_disagreements"]) == (3, 1)
    assert all(len(study) == 12 and int(study, 16) >= 0 for study in studies)
    assert audited.audit.summary["flags"][STUDY_DISAGREES] == 3


def test_exact_and_near_copies_share_a_group_id(audited, archive):
    rows = audited.rows
    hand = rows.loc[archive.path("xrays/hand.jpeg")]
    resaved = rows.loc[archive.path("xrays/hand-resaved.jpg")]
    assert 0 < hamming(int(hand["phash"], 16), int(resaved["phash"], 16)) <= 4  # a near copy, not an exact one
    same = set(rows.index[rows["group"] == hand["group"]])
    assert same == {archive.path(n) for n in ("xrays/hand.jpeg", "xrays/hand-copy.jpeg", "xrays/hand-resaved.jpg")} \
        | {f"{archive.path('series.zip')}/study-a/hand-as-head-ct.dcm"}
    assert rows.loc[archive.path("xrays/hand-copy.jpeg"), "group_size"] == 4 and COPY in hand["flags"]
    assert pd.isna(rows.loc[archive.path("notes.txt"), "group"])  # no image, no group


def test_identical_files_are_counted_apart_from_near_copies(audited, archive):
    rows = audited.rows
    for name in ("xrays/hand.jpeg", "xrays/hand-copy.jpeg"):
        assert rows.loc[archive.path(name), "identical"] == 2 and IDENTICAL in rows.loc[archive.path(name), "flags"]
    resaved = rows.loc[archive.path("xrays/hand-resaved.jpg")]
    assert resaved["identical"] == 1 and IDENTICAL not in resaved["flags"] and COPY in resaved["flags"]
    assert rows.loc[archive.path("notes.txt"), "identical"] == 1  # any file with bytes: not only images
    dup = audited.audit.summary["duplicates"]
    assert (dup["identical_groups"], dup["identical_files"]) == (1, 2)
    assert "1 group of identical files (2 files, the same bytes)" in audited.printed


def test_a_files_digest_is_salted_so_it_cannot_find_a_known_file(audited, archive, scans):
    import hashlib

    digest = audited.rows.loc[archive.path("xrays/hand.jpeg"), "digest"]
    assert len(digest) == 16 and digest not in {hashlib.blake2b(scans["Hand"], digest_size=8).hexdigest(),
                                                 hashlib.sha256(scans["Hand"]).hexdigest()[:16],
                                                 hashlib.md5(scans["Hand"]).hexdigest()[:16]}


def test_no_identifying_field_appears_in_any_output_file_or_printed_line(audited):
    written = [p for p in audited.out.rglob("*") if p.is_file()]
    assert {p.name for p in written} == {FILES, SUMMARY}
    texts = [audited.printed, (audited.out / SUMMARY).read_text(),
             pq.read_table(audited.out / FILES).to_pandas().to_csv()]
    raw = [p.read_bytes() for p in written]
    for marker in MARKERS:
        assert not any(marker in t for t in texts), marker
        assert not any(marker.encode() in b for b in raw), marker


def test_no_identifying_field_reaches_rays_logs(audited, ray_session):
    node = getattr(getattr(ray_session, "_private", None), "worker", None)
    node = getattr(node, "_global_node", None)
    if node is None:
        pytest.skip("this Ray version does not say where its session logs are")
    logs = [p for p in Path(node.get_logs_dir_path()).rglob("*") if p.is_file()]
    assert logs
    for marker in MARKERS:
        assert not any(marker.encode() in p.read_bytes() for p in logs), marker


def test_discovery_skips_hidden_files_and_macos_metadata(archive):
    names = [item["path"] for item in discover([archive.root])]
    assert sorted(names) == archive.rows
    assert not any(".DS_Store" in n or "__MACOSX" in n for n in names)


def test_file_formats_are_named_from_their_first_bytes(archive):
    assert file_format(Path(archive.path("xrays/hand.jpeg")).read_bytes()) == "JPEG"
    assert file_format(Path(archive.path("dicom/IM0001")).read_bytes()) == "DICOM"
    assert file_format(b"%PDF-1.7 a report") == "PDF"
    assert file_format(b"plain words") == "unknown"
    assert file_format(b"%!PS-Adobe-3.0 EPSF-3.0\n") == "EPS"
    assert file_format(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic") == "HEIC"


def test_a_nifti_volume_is_an_image_that_cannot_be_read_not_a_document():
    from medimg_core.inference.audit import error_verdict

    volume = gzip.compress(nifti_bytes(1))
    assert file_format(volume) == "NIfTI" and error_verdict("NIfTI", volume) == UNREADABLE


def test_a_stopped_audit_stays_readable_from_its_parts(tmp_path):
    rows = [{"path": f"/scans/{i}.png", "size": 10, "format": "PNG", "verdict": RECOGNISED, "label": "Hand",
             "phash": "8000000000000000"} for i in range(3)]
    write_part(pa.Table.from_pylist(rows, schema=ROW_SCHEMA), tmp_path / PARTS, 0)
    (tmp_path / PARTS / "part-000001.parquet").write_bytes(b"PAR1 cut short by Ctrl-C")
    audit = read_audit(tmp_path)
    assert audit.summary["complete"] is False and audit.summary["damaged_parts"] == 1
    assert len(audit.rows) == 3 and set(audit.rows["group_size"]) == {3}


def test_a_missing_path_is_one_clear_line(ray_session, tmp_path):
    rc, printed = run_cli(str(tmp_path / "nowhere"), "--out", str(tmp_path / "out"))
    last = printed.strip().splitlines()[-1]
    assert rc == 2 and last == f"error: There is no file or folder at {tmp_path / 'nowhere'}."


def test_an_existing_audit_is_never_overwritten(audited, archive):
    rc, printed = run_cli(str(archive.root), "--out", str(audited.out))
    assert rc == 2 and "already holds an audit" in printed and "Traceback" not in printed


def test_workers_must_be_at_least_one(tmp_path):
    rc, printed = run_cli(str(tmp_path), "--out", str(tmp_path / "out"), "--workers", "0")
    assert (rc, printed.strip()) == (2, "error: --workers must be a whole number of at least 1, not 0.")


def test_the_audit_parser_stays_light_and_agrees_with_the_library():
    code = ("import argparse, sys\n"
            "from medimg_core.cli.audit import add_audit_parser\n"
            "add_audit_parser(argparse.ArgumentParser().add_subparsers())\n"
            "print(sorted(m for m in ('pandas', 'pyarrow', 'ray', 'torch') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
    from medimg_core.cli import audit as audit_cli
    from medimg_core.inference import audit

    assert audit_cli.BATCH_SIZE == audit.DEFAULT_BATCH_SIZE and audit_cli.OUTPUTS == (FILES, SUMMARY)


def test_without_ray_the_command_names_the_install_command(tmp_path):
    code = ("import sys; sys.modules['ray'] = None\n"
            "from tests.test_audit import run_cli\n"
            f"rc, printed = run_cli({str(tmp_path)!r}, '--out', {str(tmp_path / 'out')!r})\n"
            "print(rc, printed)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("2 error: medimg audit runs on Ray Data, which is not installed here: "
                                  "pip install 'medimg[audit]'"), done.stdout + done.stderr


def test_a_run_from_the_shell_prints_its_summary_and_no_ray_log_lines(tmp_path):
    (tmp_path / "scans").mkdir()
    (tmp_path / "scans" / "a.png").write_bytes(png_bytes(np.zeros((64, 64), np.uint8)))
    done = subprocess.run([sys.executable, "-m", "medimg_core", "audit", str(tmp_path / "scans"), "--out",
                           str(tmp_path / "out"), "--workers", "1"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("audited 1 file in "), done.stdout + done.stderr
    assert not any(word in done.stderr for word in ("core_worker", "Actor with class name", "Warning", "Traceback")), \
        done.stderr


def test_stopping_an_audit_keeps_the_rows_done_so_far(archive, ray_session, tmp_path):
    from medimg_core.inference.audit import run_audit

    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_audit([archive.root], tmp_path / "stopped", workers=1, batch_size=2, progress=stop)
    audit = read_audit(tmp_path / "stopped")
    assert audit.summary["complete"] is False and 1 <= len(audit.rows) < len(archive.rows)
    assert json.loads((tmp_path / "stopped" / SUMMARY).read_text())["rows"] == len(audit.rows)


def test_a_damaged_zip_archive_is_one_item_whose_error_says_so(tmp_path):
    from medimg_core.inference.audit_files import item_bytes
    from medimg_core.io.imaging import ImageReadError

    (tmp_path / "scans.zip").write_bytes(b"PK\x03\x04 and then nothing a zip reader can use")
    items = discover([tmp_path])
    assert [i["path"] for i in items] == [str(tmp_path / "scans.zip")]
    with pytest.raises(ImageReadError, match=r"^This zip archive is damaged and cannot be opened, so none of its "
                                             r"files were read\.$"):
        item_bytes(items[0])


def test_an_encrypted_zip_member_is_explained_in_words(tmp_path):
    from medimg_core.inference.audit_files import item_bytes
    from medimg_core.io.imaging import ImageReadError

    archive = tmp_path / "scans.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.png", b"\x89PNG not really")
    data = bytearray(archive.read_bytes())
    data[6] |= 0x01  # the local header's flag bit 0: encrypted
    central = data.rfind(b"PK\x01\x02")
    data[central + 8] |= 0x01  # and the central directory's
    archive.write_bytes(bytes(data))
    (item,) = discover([archive])
    with pytest.raises(ImageReadError, match="encrypted"):
        item_bytes(item)


def test_a_picture_without_a_scan_is_refused_for_the_reason_predict_gives(tmp_path):
    from medimg_core import get_task
    from medimg_core.inference.audit import decode_batch, predictor_for
    from medimg_core.inference.predict import load_classifier

    path = tmp_path / "blank.png"
    path.write_bytes(png_bytes(np.zeros((300, 200), np.uint8)))
    predictor = predictor_for("modality", None)()
    decoded = decode_batch(pa.Table.from_pylist(discover([path])), predictor.side, get_task("modality").fit, b"salt")
    row = predictor(decoded).to_pylist()[0]
    expected = load_classifier("modality").predict(read_image(path))
    assert (row["verdict"], row["label"], row["reason"]) == (NOT_RECOGNISED, None, expected.reason)


def test_an_audit_written_before_digests_were_kept_still_opens(audited, tmp_path):
    older = tmp_path / "older"
    older.mkdir()
    pq.write_table(pq.read_table(audited.out / FILES).drop(["digest", "identical"]), older / FILES)
    audit = read_audit(older)
    assert len(audit.rows) == len(audited.rows) and audit.rows["identical"].isna().all()
    assert audit.summary["duplicates"]["identical_files"] == 0


def test_the_duplicates_sentence_of_an_older_summary_names_the_copies_alone():
    older = {"groups": 3, "files": 7, "max_distance": 4}  # a summary.json written before identical files were counted
    assert duplicates_sentence(older) == "3 groups of copies or near copies (7 files, pHash within 4 bits)"
    assert duplicates_sentence({**older, "identical_groups": 1, "identical_files": 2}, bold=True).startswith(
        "**1** group of identical files (**2** files, the same bytes); **3** groups")
