"""The arrays Classifier.predict accepts: the same picture as uint8, uint16 or floats in [0, 1] gets one answer;
any other array gets a ValueError that says what is accepted."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medimg_core.io.imaging import as_unit_gray, read_image
from medimg_core.inference.predict import load_classifier


@pytest.fixture(scope="module")
def modality():
    return load_classifier("modality")


@pytest.fixture(scope="module")
def picture(scans) -> np.ndarray:
    """A real MedNIST hand X-ray as np.asarray(Image.open(f)) gives it: HxW uint8."""
    return np.asarray(Image.open(io.BytesIO(scans["Hand"])).convert("L"))


def same_picture(gray: np.ndarray) -> dict[str, np.ndarray]:
    """One uint8 picture in every accepted form."""
    rgb = np.repeat(gray[..., None], 3, axis=2)
    return {"uint8": gray, "uint16": gray.astype(np.uint16) * 257, "float32": gray.astype(np.float32) / 255,
            "float64": gray / 255.0, "HxWx1": gray[..., None], "RGB uint8": rgb,
            "RGBA opaque": np.dstack([rgb, np.full(gray.shape, 255, np.uint8)])}


def test_every_accepted_form_of_a_picture_becomes_the_same_gray_image(picture):
    expected = picture.astype(np.float32) / 255
    for form, array in same_picture(picture).items():
        gray = as_unit_gray(array)
        assert gray.dtype == np.float32 and gray.shape == picture.shape, form
        assert np.abs(gray - expected).max() < 1e-5, form


def test_the_same_picture_as_uint8_uint16_or_floats_gets_one_answer(modality, picture):
    reference = modality.predict(picture.astype(np.float32) / 255)
    for form, array in same_picture(picture).items():
        pred = modality.predict(array)
        assert (pred.label, pred.closest, pred.in_distribution) == (reference.label, reference.closest,
                                                                    reference.in_distribution), form
        assert pred.probabilities == pytest.approx(reference.probabilities, abs=1e-5), form


def test_an_array_gets_the_answer_of_its_file(modality, scans, picture):
    """np.asarray(Image.open(f)) and read_image(f) are one picture to the classifier."""
    assert modality.predict(picture).probabilities == pytest.approx(
        modality.predict(read_image(scans["Hand"])).probabilities, abs=1e-5)


def test_a_batch_of_mixed_forms_matches_one_by_one(modality, picture):
    forms = list(same_picture(picture).values())
    batch = modality.predict_batch(forms)
    assert [p.label for p in batch] == [modality.predict(a).label for a in forms]


def test_transparency_is_composited_onto_black_as_for_files():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 200, 0
    assert as_unit_gray(rgba).max() == 0.0


@pytest.mark.parametrize("array,words", [
    (np.full((32, 32), 200.0), "from 200 to 200 (divide 0..255 values by 255, or pass them as uint8)"),
    (np.linspace(-1, 1, 1024).reshape(32, 32), "must lie in [0, 1]"),
    (np.ones((32, 32), bool), "bool values is not accepted"),
    (np.ones((32, 32), np.int64), "int64 values is not accepted"),
    (np.ones((32, 32), np.int16), "int16 values is not accepted"),
    (np.full((32, 32), np.nan), "NaN or infinite"),
    (np.ones(32, np.uint8), "shape (32,) is not accepted"),
    (np.ones((8, 8, 2), np.uint8), "shape (8, 8, 2) is not accepted"),
    (np.ones((2, 8, 8, 3), np.uint8), "shape (2, 8, 8, 3) is not accepted"),
    (np.ones((0, 8), np.uint8), "holds no pixels"),
])
def test_any_other_array_is_refused_naming_what_is_accepted(array, words):
    with pytest.raises(ValueError) as err:
        as_unit_gray(array)
    assert words in str(err.value) and "uint8 (0..255), uint16 (0..65535) or floats in [0, 1]" in str(err.value)


def test_predict_refuses_an_array_it_cannot_read(modality):
    with pytest.raises(ValueError, match="float picture values must lie in"):
        modality.predict(np.full((64, 64), 128.0))
    with pytest.raises(ValueError, match="int64"):
        modality.predict_batch([np.zeros((64, 64), np.uint8), np.zeros((64, 64), np.int64)])


def test_the_heatmap_takes_the_same_arrays(modality, picture):
    assert np.allclose(modality.explain(picture), modality.explain(picture.astype(np.float32) / 255), atol=1e-5)


def test_a_picture_check_made_by_the_caller_decides_in_place_of_one_on_the_copy(modality, picture):
    blank = np.zeros((64, 64), np.float32)
    reason = "The picture is blank (checked on the full-size file)."
    scan, flat = modality.predict_batch([picture, blank], picture_checks=[reason, None])
    assert scan.label is None and scan.reason == reason and scan.decided_by == "pixels"
    assert flat.reason != modality.predict(blank).reason  # the copy's own check (blank) was not made again


def test_picture_checks_must_come_one_per_image(modality, picture):
    with pytest.raises(ValueError, match="1 images but 2 picture checks"):
        modality.predict_batch([picture], picture_checks=[None, None])
