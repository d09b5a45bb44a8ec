"""The Predict page's DICOM header panel (medimg_app/dicom_panel.py): fields, the cross-check, and no identity."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from medimg_app.cache import shipped_tasks
from medimg_app.dicom_panel import MISSING, header_rows
from medimg_core.io.dicom_header import DicomHeader, read_dicom_header
from medimg_core.io.imaging import Window
from tests.imagegen import dicom_of

ROOT = Path(__file__).resolve().parents[1]
MARKER = "Qzxv^Marker"  # a patient name no real file holds: finding it anywhere on the page is a leak
IDENTIFYING = {"PatientName": MARKER, "PatientID": "PID-7731-Q", "PatientBirthDate": "19510203",
               "InstitutionName": "St Leakwell Hospital", "ReferringPhysicianName": "Dr^Leakworth",
               "AccessionNumber": "ACC-99172", "StudyDate": "20240305", "DeviceSerialNumber": "SN-LEAK-0042"}
needs_model = pytest.mark.skipif("modality" not in shipped_tasks(), reason="no modality model installed")


def open_with(name: str, data: bytes, mime: str) -> AppTest:
    """A fresh session of the app on the Predict page with one file uploaded."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    at.run()
    at.switch_page("app_pages/predict.py").run()
    at.file_uploader(key="uploads").set_value([(name, data, mime)]).run()
    assert not at.exception
    return at


def page_text(at: AppTest) -> str:
    """Every element the page drew, as its protobuf text: values, labels, captions, table cells, file names."""
    def walk(node):
        yield str(getattr(node, "proto", ""))
        for child in getattr(node, "children", {}).values():
            yield from walk(child)

    return "\n".join(walk(at._tree))


def panel(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown if "| Field | In the file |" in m.value)


def test_the_panel_lists_the_fields_in_words():
    header = DicomHeader(modality="MR", body_part="BRAIN", view="axial", pixel_spacing=(0.5, 0.5), rows=512,
                         columns=448, window=Window(40.0, 400.0, "default"))
    rows = dict(header_rows(header))
    assert rows["Modality"] == "MR (MRI)" and rows["Body part examined"] == "BRAIN" and rows["View"] == "axial"
    assert rows["Pixel spacing"] == "0.5 x 0.5 mm" and rows["Size"] == "448 x 512 pixels"
    assert rows["Window used"] == "centre 40, width 400 (the default for MR)"
    assert rows["Study description"] == MISSING
    assert dict(header_rows(DicomHeader(modality="DX")))["Window used"].startswith("its own range")


@needs_model
def test_a_dicom_upload_shows_its_header_and_the_disagreement_but_never_who_it_is(scans):
    data = dicom_of(scans["Hand"], "CR", {"BodyPartExamined": "CHEST", "StudyDescription": "XR CHEST PA",
                                          "ViewPosition": "PA", "ImagerPixelSpacing": [0.143, 0.143], **IDENTIFYING})
    assert read_dicom_header(data).body_part == "CHEST"
    at = open_with("scan.dcm", data, "application/dicom")
    assert "## Hand" in [m.value for m in at.markdown]
    assert [w.value for w in at.warning] == ["The header says X-ray of the CHEST; the image looks like a hand X-ray."]
    table = panel(at)
    for shown in ("| Modality | CR (X-ray) |", "| Body part examined | CHEST |", "| Study description | XR CHEST PA |",
                  "| View | PA |", "| Pixel spacing | 0.143 x 0.143 mm |", "| Size | 64 x 64 pixels |",
                  "| Window used | centre 2040, width 4080 (stored in the file) |"):
        assert shown in table
    text = page_text(at)
    assert "XR CHEST PA" in text and "scan.dcm" in text  # the walk reaches the panel and the heading
    assert not [leak for leak in ("Qzxv", "PID-7731", "19510203", "Leakwell", "Leakworth", "ACC-99172", "20240305",
                                  "SN-LEAK") if leak in text]


@needs_model
def test_an_agreeing_header_gets_a_caption_and_other_files_no_panel(scans):
    at = open_with("hand.dcm", dicom_of(scans["Hand"], "DX", {"BodyPartExamined": "HAND"}), "application/dicom")
    assert not at.warning
    assert "The header (X-ray of the HAND) agrees with the prediction (hand X-ray)." in [c.value for c in at.caption]
    assert "| Body part examined | HAND |" in panel(at)
    at = open_with("hand.jpeg", scans["Hand"], "image/jpeg")
    assert not panel(at) and not any("header" in c.value for c in at.caption)


@needs_model
def test_a_header_that_rules_out_every_class_gives_no_label_and_the_page_says_it_decided(scans):
    at = open_with("us.dcm", dicom_of(scans["Hand"], "US", {"BodyPartExamined": "HAND"}), "application/dicom")
    assert "## Not recognised" in [m.value for m in at.markdown]
    assert "Its DICOM header says ultrasound of the HAND; the modality model knows only CT, MRI and X-ray images." \
        in at.warning[0].value
    captions = [c.value for c in at.caption]
    assert "Decided by the DICOM header: the image alone looks like a hand X-ray (100%)." in captions
    assert "What this header says took part in the verdict above (see why there)." in captions


@needs_model
def test_the_card_says_what_decided(scans):
    at = open_with("hand.dcm", dicom_of(scans["Hand"], "DX", {"BodyPartExamined": "HAND"}), "application/dicom")
    assert "The image and its DICOM header (X-ray of the HAND) agree." in [c.value for c in at.caption]
    at = open_with("hand.jpeg", scans["Hand"], "image/jpeg")
    assert "Decided by the image alone." in [c.value for c in at.caption]
