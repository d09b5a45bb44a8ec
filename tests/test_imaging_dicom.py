"""read_image on DICOM: rescale, windowing, MONOCHROME1, signed data, frames, codecs, errors."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from medimg_core.imaging import ImageReadError, read_image
from tests.imagegen import dicom_bytes, gradient


def ramp16(h: int = 16, w: int = 32) -> np.ndarray:
    return np.tile(np.linspace(0, 4000, w).astype(np.uint16), (h, 1))


def test_dicom_is_sniffed_and_decoded():
    img = read_image(dicom_bytes(ramp16()))
    assert img.shape == (16, 32) and img[0, 0] == 0.0 and img[0, -1] == 1.0


def test_monochrome1_is_inverted():
    img = read_image(dicom_bytes(ramp16(), photometric="MONOCHROME1"))
    assert img[0, 0] == 1.0 and img[0, -1] == 0.0


def test_rescale_and_stored_window_are_applied():
    # stored 0..4000 -> HU -1000..3000; a soft-tissue window 40/400 saturates bone and air
    img = read_image(dicom_bytes(ramp16(), slope=1.0, intercept=-1000.0, window=(40.0, 400.0)))
    hu = np.linspace(0, 4000, 32) - 1000
    inside = (hu > -160) & (hu < 240)
    assert img[0, hu < -160].max() == 0.0 and img[0, hu > 240].min() == 1.0
    assert 0.0 < img[0, inside].mean() < 1.0


def test_a_ct_without_a_stored_window_gets_the_soft_tissue_window():
    img = read_image(dicom_bytes(ramp16(), intercept=-1000.0, modality="CT"))
    hu = np.linspace(0, 4000, 32) - 1000
    assert img[0, hu < -160].max() == 0.0 and img[0, hu > 240].min() == 1.0


def test_an_mri_without_a_stored_window_is_windowed_on_its_own_values():
    img = read_image(dicom_bytes(ramp16(), modality="MR"))
    assert img[0, 0] == 0.0 and img[0, -1] == 1.0 and 0.4 < img[0, 16] < 0.6


def test_signed_16_bit_pixels():
    pixels = np.tile(np.linspace(-1024, 2000, 32).astype(np.int16), (8, 1))
    img = read_image(dicom_bytes(pixels))
    assert img[0, 0] == 0.0 and img[0, -1] == 1.0


def test_multi_frame_takes_the_middle_frame():
    frames = np.stack([np.full((8, 8), v, np.uint16) for v in (0, 0, 1000, 0, 0)])
    frames[2, 0, 0] = 0  # give the middle frame some contrast
    img = read_image(dicom_bytes(frames, frames=5))
    assert img.mean() > 0.9


def test_jpeg_compressed_dicom_is_decoded():
    jpeg = io.BytesIO()
    Image.fromarray(gradient(16, 32)).save(jpeg, format="JPEG", quality=95)
    data = dicom_bytes(np.zeros((16, 32), np.uint8), transfer_syntax="1.2.840.10008.1.2.4.50",
                       encapsulated=[jpeg.getvalue()])
    img = read_image(data)
    assert img.shape == (16, 32) and img[:, -4:].mean() > img[:, :4].mean() + 0.5


def test_unsupported_codec_is_named():
    data = dicom_bytes(np.zeros((16, 32), np.uint8), transfer_syntax="1.2.840.10008.1.2.4.100",
                       encapsulated=[b"\0" * 64])
    with pytest.raises(ImageReadError, match="MPEG2"):
        read_image(data)


def test_dicom_without_pixel_data_is_explained():
    with pytest.raises(ImageReadError, match="no pixel data"):
        read_image(dicom_bytes(ramp16(), with_pixels=False))


def test_truncated_dicom_pixel_data_is_reported():
    data = dicom_bytes(ramp16(64, 64))
    with pytest.raises(ImageReadError, match="DICOM"):
        read_image(data[:-2000])


PYDICOM_DATA = sorted(p for p in (Path(pydicom.__file__).parent / "data").rglob("*") if p.is_file())


@pytest.mark.filterwarnings("ignore")
def test_every_file_of_pydicoms_test_data_is_read_or_refused_with_a_sentence():
    read = 0
    for path in PYDICOM_DATA:
        try:
            image = read_image(path)
        except ImageReadError as err:
            assert str(err)[:1].isupper() and str(err).endswith("."), (path, str(err))
            continue
        assert image.ndim == 2 and 0.0 <= image.min() <= image.max() <= 1.0, path
        read += 1
    assert len(PYDICOM_DATA) > 50 and read > 50


@pytest.mark.filterwarnings("ignore")
def test_a_dicom_with_a_malformed_element_is_refused_with_a_sentence():
    bad = next(p for p in PYDICOM_DATA if p.name == "badVR.dcm")
    with pytest.raises(ImageReadError, match="malformed element"):
        read_image(bad)
