"""AppTest tests of the Audit page (app_pages/audit.py): it opens an audit folder made here and shows what it holds."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from medimg_core.inference.audit_summary import (NOT_AN_IMAGE, PARTS, RECOGNISED, ROW_SCHEMA, UNREADABLE, finish_audit,
                                       write_part)
from medimg_app.widgets import EMPTY_CELL
from tests.imagegen import dicom_bytes, gradient, png_bytes

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "audit.py")
DISAGREES = "The header says CT of the HEAD; the image looks like a hand X-ray."


def audit_rows(scans: Path) -> list[dict]:
    """Five files as `medimg audit` would have written them: two header disagreements (one file since deleted), a
    recognised PNG, a non-image and a damaged file."""
    header = {"format": "DICOM", "verdict": RECOGNISED, "label": "Hand", "confidence": 0.97, "modality": "CT",
              "body_part": "HEAD", "header_agrees": False, "header_note": DISAGREES, "study": "a1b2c3d4e5f6"}
    return [
        {"path": str(scans / "hand-as-ct.dcm"), "phash": "f0f0f0f0f0f0f0f0", **header},
        {"path": str(scans / "deleted.dcm"), "phash": "0f0f0f0f0f0f0f0f", **header},
        {"path": str(scans / "chest.png"), "format": "PNG", "verdict": RECOGNISED, "label": "CXR", "confidence": 0.9,
         "phash": "0f0f0f0f0f0f0f0e"},
        {"path": str(scans / "notes.txt"), "format": "unknown", "verdict": NOT_AN_IMAGE,
         "error": "This file is not an image we can read (JPEG, PNG, BMP, TIFF, WebP, GIF or DICOM)."},
        {"path": str(scans / "cut.png"), "format": "PNG", "verdict": UNREADABLE,
         "error": "The image file is damaged or truncated and cannot be decoded."},
    ]


@pytest.fixture
def audit_folder(tmp_path) -> Path:
    """A finished audit of five files; of the two disagreeing DICOMs only one is still on disk."""
    scans = tmp_path / "scans"
    scans.mkdir()
    (scans / "hand-as-ct.dcm").write_bytes(dicom_bytes(gradient().astype(np.uint16) * 16, modality="CT"))
    (scans / "chest.png").write_bytes(png_bytes(gradient()))
    out = tmp_path / "audit"
    write_part(pa.Table.from_pylist(audit_rows(scans), schema=ROW_SCHEMA), out / PARTS, 0)
    finish_audit(out, {"complete": True, "files": 5, "task": "modality", "model": "modality.pt", "workers": 2,
                       "seconds": 3.0, "engine": "Ray"})
    return out


def open_audit(folder: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["audit_folder"] = folder
    at.run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, first_column: str):
    """The page's table whose first column (or index) is named first_column (AppTest does not expose their keys)."""
    return next(d.value for d in at.dataframe if first_column in (d.value.index.name, d.value.columns[0]))


def test_the_page_shows_the_counts_per_verdict(audit_folder):
    at = open_audit(str(audit_folder))
    assert {m.label: m.value for m in at.metric} == {"recognised": "3", "not recognised": "0", "not an image": "1",
                                                     "unreadable": "1"}
    assert "**2** files whose DICOM header disagrees with the image" in at.markdown[0].value
    assert "**0** groups of identical files (**0** files, the same bytes)" in at.markdown[0].value


def test_the_crosstab_counts_files_per_header_modality_and_kind(audit_folder):
    crosstab = table(open_audit(str(audit_folder)), "header modality")
    assert crosstab.loc["CT", "Hand"] == 2 and crosstab.loc["no DICOM header", "CXR"] == 1


def test_disagreements_show_a_thumbnail_or_say_the_file_is_gone(audit_folder):
    at = open_audit(str(audit_folder))
    assert len(at.get("image")) == 1
    assert any(f"no longer at {audit_folder.parent / 'scans' / 'deleted.dcm'}" in i.value for i in at.info)
    assert sum(DISAGREES in c.value for c in at.caption) == 2


def test_filters_narrow_the_file_table(audit_folder):
    at = open_audit(str(audit_folder))
    assert len(table(at, "path")) == 5
    at.multiselect(key="audit_verdicts").set_value([NOT_AN_IMAGE, UNREADABLE]).run()
    assert sorted(Path(p).name for p in table(at, "path")["path"]) == ["cut.png", "notes.txt"]
    at.multiselect(key="audit_verdicts").set_value([]).run()
    at.multiselect(key="audit_flags").set_value(["header disagrees"]).run()
    at.multiselect(key="audit_kinds").set_value(["Hand"]).run()
    assert len(table(at, "path")) == 2


def test_a_stopped_audit_opens_with_a_warning(tmp_path):
    write_part(pa.Table.from_pylist(audit_rows(tmp_path)[:2], schema=ROW_SCHEMA), tmp_path / "audit" / PARTS, 0)
    at = open_audit(str(tmp_path / "audit"))
    assert "stopped before the end" in at.warning[0].value and at.metric[0].value == "2"


def test_a_folder_without_an_audit_is_one_clear_error(tmp_path):
    at = open_audit(str(tmp_path))
    assert "holds no audit" in at.error[0].value


def test_the_path_of_the_audits_parquet_file_opens_its_folder(audit_folder):
    at = open_audit(str(audit_folder / "files.parquet"))
    assert not at.error and at.metric[0].value == "3"


def test_without_a_folder_the_page_says_how_to_make_an_audit():
    at = open_audit("")
    assert "medimg audit" in at.info[0].value


def test_every_table_of_the_page_shows_a_dash_for_an_empty_cell(audit_folder):
    at = open_audit(str(audit_folder))
    assert len(at.dataframe) == 3  # the crosstab, the studies, the files
    assert [d.proto.placeholder for d in at.dataframe] == [EMPTY_CELL] * 3
    assert table(at, "path")["label"].isna().any()  # the files that have no label leave that cell empty
