"""read_image on DICOM: rescale, windowing, MONOCHROME1, signed data, frames, codecs, errors."""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image

from medimg_core.io.imaging import ImageReadError, read_image
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
    with pytest.raises(ImageReadError, match="compressed with MPEG2.*which cannot be decoded here"):
        read_image(data)


def test_damaged_data_of_a_codec_we_have_is_called_damaged_not_unsupported():
    jpeg = io.BytesIO()
    Image.fromarray(gradient(16, 32)).save(jpeg, format="JPEG", quality=95)
    data = dicom_bytes(np.zeros((16, 32), np.uint8), transfer_syntax="1.2.840.10008.1.2.4.50",
                       encapsulated=[jpeg.getvalue()[:40]])
    with pytest.raises(ImageReadError, match=r"^This DICOM file's pixel data, compressed with JPEG Baseline "
                                             r"\(Process 1\), is damaged and cannot be decoded\.$"):
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


PYTHON_WORDS = ("invalid literal", "int()", "float()", "base 10", "Errno", "unpack requires", "struct.error", "Traceback",
                "object has", "NoneType", "b'", "KeyError", "dataset may be corrupted")


@pytest.mark.filterwarnings("ignore")
def test_a_dicom_with_a_malformed_element_names_the_element_its_tag_and_its_value():
    bad = next(p for p in PYDICOM_DATA if p.name == "badVR.dcm")
    with pytest.raises(ImageReadError) as err:
        read_image(bad)
    assert str(err.value) == ("The DICOM element NumberOfFrames (0028,0008) holds '1A', which is not a whole number, "
                              "so the image cannot be read.")


def test_a_malformed_dicom_prints_no_warning_that_quotes_its_values():
    bad = next(p for p in PYDICOM_DATA if p.name == "badVR.dcm")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a warning would raise here instead of the sentence
        with pytest.raises(ImageReadError, match="NumberOfFrames"):
            read_image(bad)


def with_raw_value(tags: dict, tag: bytes, vr: bytes, written: bytes, raw: bytes) -> bytes:
    """A DICOM whose element `tag` holds `raw`, a value pydicom refuses to write (replaced in the written bytes)."""
    data = dicom_bytes(ramp16(), tags=tags)
    written_element = tag + vr + len(written).to_bytes(2, "little") + written
    assert data.count(written_element) == 1
    return data.replace(written_element, tag + vr + len(raw).to_bytes(2, "little") + raw)


@pytest.mark.filterwarnings("ignore")
def test_a_malformed_element_that_reading_needs_is_named():
    data = with_raw_value({"NumberOfFrames": "1"}, b"\x28\x00\x08\x00", b"IS", b"1 ", b"2B")
    with pytest.raises(ImageReadError, match=r"^The DICOM element NumberOfFrames \(0028,0008\) holds '2B', which is "
                                             r"not a whole number"):
        read_image(data)


@pytest.mark.filterwarnings("ignore")
def test_a_malformed_element_that_reading_does_not_need_costs_nothing():
    data = with_raw_value({"SliceThickness": "5"}, b"\x18\x00\x50\x00", b"DS", b"5 ", b"5m")
    assert read_image(data).shape == (16, 32)


def test_a_malformed_value_that_could_name_a_person_is_never_quoted():
    from medimg_core.io.dicom_errors import element_sentence

    assert element_sentence(0x00101030, "PatientWeight", "Doe 70", "a decimal number") == (
        "The DICOM element PatientWeight (0010,1030) holds a value, which is not a decimal number, so the image "
        "cannot be read.")


def test_pixel_data_cut_short_says_how_much_is_there():
    with pytest.raises(ImageReadError) as err:
        read_image(dicom_bytes(ramp16(64, 64))[:-2000])
    assert str(err.value) == ("The DICOM pixel data is incomplete: the file holds 6,192 bytes of pixels where its size "
                              "and bit depth call for 8,192, so it was cut short or its header is wrong.")


@pytest.mark.filterwarnings("ignore")
def test_a_header_cut_short_is_refused_in_words():
    data = dicom_bytes(ramp16(), tags={"StudyDescription": "CT HEAD"})
    for cut in range(133, 600, 3):
        try:
            read_image(data[:cut])
        except ImageReadError as err:
            assert not [w for w in PYTHON_WORDS if w in str(err)], (cut, str(err))


@pytest.mark.filterwarnings("ignore")
def test_every_refusal_of_pydicoms_test_files_is_in_words_without_pythons():
    refusals = {}
    for path in PYDICOM_DATA:
        try:
            read_image(path)
        except ImageReadError as err:
            refusals[path.name] = str(err)
    assert len(refusals) > 20
    assert not {name: text for name, text in refusals.items() if any(w in text for w in PYTHON_WORDS)}
    assert refusals["MR_truncated.dcm"].startswith("The DICOM pixel data is incomplete: the file holds 8,130 bytes")
    assert refusals["meta_missing_tsyntax.dcm"].startswith("This DICOM file holds pixel data but does not say")
