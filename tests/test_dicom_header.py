"""read_dicom_header: the descriptive fields of a DICOM, never an identifying one, and never an exception."""
from __future__ import annotations

import io
import json
from dataclasses import astuple
from pathlib import Path

import numpy as np
import pydicom
import pytest

from medimg_core.io.dicom_header import ALLOWED_TAGS, DicomHeader, body_parts, modality_name, read_dicom_header
from medimg_core.io.imaging import Window
from tests.imagegen import dicom_bytes, png_bytes, gradient

MARKER = "Qzxv^Marker"  # a name no real file holds, so finding it anywhere is a leak
IDENTIFYING = {
    "PatientName": MARKER, "PatientID": "PID-7731-Q", "PatientBirthDate": "19510203", "PatientAddress": "1 Leak Lane",
    "InstitutionName": "St Leakwell Hospital", "InstitutionAddress": "2 Leak Road", "ReferringPhysicianName": "Dr^Leak",
    "PerformingPhysicianName": "Dr^Leakier", "OperatorsName": "Op^Leak", "AccessionNumber": "ACC-99172",
    "StudyDate": "20240305", "StudyTime": "101112", "StudyInstanceUID": "1.2.3.4.5.6.7.8.99172",
    "DeviceSerialNumber": "SN-LEAK-0042", "StationName": "LEAKSTATION",
}
LEAKS = [str(v) for v in IDENTIFYING.values()] + ["Qzxv"]


def ct_scan(**tags) -> bytes:
    """A tiny abdomen CT DICOM with a full descriptive header and every identifying field filled in."""
    header = {"BodyPartExamined": "ABDOMEN", "StudyDescription": "CT ABDOMEN W CONTRAST",
              "SeriesDescription": "Axial 5mm", "PixelSpacing": [0.5, 0.75],
              "ImageOrientationPatient": [1, 0, 0, 0, 1, 0], **IDENTIFYING, **tags}
    return dicom_bytes(np.full((16, 32), 1040, np.uint16), modality="CT", intercept=-1024.0, tags=header)


def test_the_descriptive_fields_are_read():
    header = read_dicom_header(ct_scan())
    assert header == DicomHeader(modality="CT", body_part="ABDOMEN", study_description="CT ABDOMEN W CONTRAST",
                                 series_description="Axial 5mm", view="axial", pixel_spacing=(0.5, 0.75), rows=16,
                                 columns=32, photometric="MONOCHROME2", window=Window(40.0, 400.0, "default"))
    assert header.modality_name == "CT" and header.anatomy == {"abdomen"}


def test_path_bytes_and_file_objects_give_the_same_header(tmp_path):
    data = ct_scan()
    (tmp_path / "scan.dcm").write_bytes(data)
    assert read_dicom_header(tmp_path / "scan.dcm") == read_dicom_header(str(tmp_path / "scan.dcm")) \
        == read_dicom_header(io.BytesIO(data)) == read_dicom_header(data)


def test_identifying_fields_are_never_read():
    header = read_dicom_header(ct_scan())
    held = repr(header) + json.dumps(header.to_dict()) + repr(astuple(header))
    assert not [leak for leak in LEAKS if leak in held]
    assert not set(IDENTIFYING) & set(ALLOWED_TAGS)


def test_the_window_is_the_one_read_image_applies():
    stored = read_dicom_header(dicom_bytes(gradient().astype(np.uint16), window=(300.0, 1500.0)))
    assert stored.window == Window(300.0, 1500.0, "file")
    assert stored.to_dict()["window"] == {"center": 300.0, "width": 1500.0, "source": "file"}
    mri = read_dicom_header(dicom_bytes(gradient().astype(np.uint16), modality="MR"))
    assert mri.window is None and mri.to_dict()["window"] == {"center": None, "width": None, "source": "image"}


def test_an_x_ray_gives_its_view_and_detector_spacing():
    header = read_dicom_header(dicom_bytes(gradient().astype(np.uint16), modality="DX", tags={
        "BodyPartExamined": "CHEST", "ViewPosition": "PA", "ImagerPixelSpacing": [0.143, 0.143]}))
    assert (header.modality_name, header.view, header.pixel_spacing) == ("X-ray", "PA", (0.143, 0.143))


def test_missing_fields_are_none():
    header = read_dicom_header(dicom_bytes(gradient().astype(np.uint16)))
    assert header.modality == "OT" and header.modality_name is None and not header.anatomy
    assert (header.body_part, header.study_description, header.view, header.pixel_spacing) == (None,) * 4


@pytest.mark.parametrize("code,name", [("CT", "CT"), ("MR", "MRI"), ("CR", "X-ray"), ("DX", "X-ray"),
                                       ("MG", "mammography"), ("RG", "X-ray"), ("x-ray", "X-ray"), ("US", "ultrasound"),
                                       ("OT", None), ("SC", None), ("", None), (None, None)])
def test_modality_codes_in_plain_words(code, name):
    assert modality_name(code) == name


@pytest.mark.parametrize("value,parts", [
    ("CHEST", {"chest"}), ("Thorax", {"chest"}), ("chest pa", {"chest"}), ("ABDOMEN_PELVIS", {"abdomen", "pelvis"}),
    ("BRAIN", {"head"}), ("SKULL", {"head"}), ("hand", {"hand"}), ("BREAST", {"breast"}), ("KNEE", {"knee"}),
    ("L SPINE", {"spine"}), ("XYZZY", set()), ("", set()), (None, set())])
def test_body_part_values_in_the_facts_words(value, parts):
    assert body_parts(value) == parts


def test_mammography_names_the_breast_when_the_body_part_is_missing():
    assert read_dicom_header(dicom_bytes(gradient().astype(np.uint16), modality="MG")).anatomy == {"breast"}


def test_other_formats_and_unreadable_sources_give_none(tmp_path):
    assert read_dicom_header(png_bytes(gradient())) is None
    assert read_dicom_header(b"") is None
    assert read_dicom_header(tmp_path / "missing.dcm") is None
    assert read_dicom_header(b"\0" * 128 + b"DICM" + b"\xff" * 40) is None


def test_a_malformed_element_costs_only_its_field():
    data = ct_scan().replace(b"0.5\\0.75", b"0.5\\x.75")  # written raw: pydicom would not write it
    assert b"0.5\\x.75" in data
    header = read_dicom_header(data)
    assert header.pixel_spacing is None and header.modality == "CT" and header.body_part == "ABDOMEN"


PYDICOM_DATA = sorted(p for p in (Path(pydicom.__file__).parent / "data").rglob("*") if p.is_file())


def test_every_file_of_pydicoms_test_data_gives_a_header_or_none(recwarn):
    headers = [read_dicom_header(path) for path in PYDICOM_DATA]
    assert len(PYDICOM_DATA) > 50 and sum(h is not None for h in headers) > 50
    assert {h.modality for h in headers if h} >= {"CT", "MR"}
    assert not recwarn.list  # nothing a file holds is echoed through a warning
