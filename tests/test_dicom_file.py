"""Telling DICOM files from their first bytes, with and without the preamble, and reading the bare ones."""
from __future__ import annotations

import numpy as np
import pytest

from medimg_core.io.dicom_file import HEAD_BYTES, is_dicom
from medimg_core.io.imaging import read_image
from medimg_core.io.dicom_header import read_dicom_header
from tests.imagegen import bare_dicom, dicom_bytes, encode, gradient, png_bytes

RAMP = np.tile(np.linspace(0, 4000, 32).astype(np.uint16), (16, 1))
ENCODINGS = [(True, True), (False, True), (False, False)]  # implicit LE, explicit LE, explicit big-endian


def test_a_file_with_the_preamble_is_dicom():
    assert is_dicom(dicom_bytes(RAMP)[:HEAD_BYTES])


@pytest.mark.parametrize("implicit_vr, little_endian", ENCODINGS)
def test_a_dataset_written_without_preamble_or_file_meta_is_dicom(implicit_vr, little_endian):
    bare = bare_dicom(dicom_bytes(RAMP), implicit_vr, little_endian)
    assert bare[128:132] != b"DICM" and is_dicom(bare[:HEAD_BYTES])


def test_pictures_text_and_noise_are_not_dicom():
    from PIL import Image

    picture = Image.fromarray(gradient())
    heads = [png_bytes(gradient()), encode(picture, "JPEG"), encode(picture, "BMP"), encode(picture, "TIFF"),
             encode(picture, "TGA"), b"%PDF-1.7\n", b"hello, world\n" * 20,
             np.random.default_rng(0).integers(0, 256, 512, dtype=np.uint8).tobytes(), b"\x08\x00", b""]
    assert not any(is_dicom(head[:HEAD_BYTES]) for head in heads)


@pytest.mark.parametrize("implicit_vr, little_endian", ENCODINGS)
def test_a_bare_dataset_reads_as_the_same_picture_as_the_full_file(implicit_vr, little_endian):
    full = dicom_bytes(RAMP, window=(2000.0, 4000.0))
    np.testing.assert_array_equal(read_image(bare_dicom(full, implicit_vr, little_endian)), read_image(full))


def test_a_bare_datasets_header_is_read():
    bare = bare_dicom(dicom_bytes(RAMP, modality="CT", tags={"BodyPartExamined": "CHEST"}))
    header = read_dicom_header(bare)
    assert header is not None and (header.modality, header.body_part) == ("CT", "CHEST")
