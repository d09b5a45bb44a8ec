"""picture_check.not_a_scan: pictures with no scan in them are refused in a sentence, real scans never."""
from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from medimg_core.io.imaging import read_image
from medimg_core.inference.picture_check import not_a_scan
from medimg_core.data.synthetic import synthetic_picture
from tests.imagegen import png_bytes

RNG = np.random.default_rng(7)


def as_file(image: np.ndarray, fmt: str = "PNG") -> np.ndarray:
    """A [0, 1] picture saved as an 8-bit file and read back as the product reads files."""
    buf = io.BytesIO()
    Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buf, format=fmt)
    return read_image(buf.getvalue())


def flat_colour(rgb: tuple[int, int, int]) -> np.ndarray:
    """A flat colour PNG as read_image reads it."""
    buf = io.BytesIO()
    Image.new("RGB", (120, 80), rgb).save(buf, format="PNG")
    return read_image(buf.getvalue())


def grainy_body(size: int = 64) -> np.ndarray:
    """A bright disc of pixel noise on a flat grey field: what a very noisy, downscaled CT slice looks like."""
    yy, xx = np.mgrid[:size, :size] / size
    inside = (xx - 0.5) ** 2 + (yy - 0.5) ** 2 < 0.16
    return np.where(inside, 0.3 + 0.7 * RNG.random((size, size)), 0.45).astype(np.float32)


@pytest.mark.parametrize("value", [0.0, 1.0, 0.37])
def test_a_blank_picture_is_refused_as_blank(value):
    reason = not_a_scan(np.full((64, 64), value, np.float32))
    assert reason is not None and reason.startswith("The picture is blank")


@pytest.mark.parametrize("rgb", [(255, 0, 0), (0, 128, 255), (255, 255, 0)])
def test_a_flat_colour_is_refused(rgb):
    assert "blank" in not_a_scan(flat_colour(rgb))


def test_a_near_constant_picture_is_refused():
    faint = 0.5 + np.random.default_rng(0).normal(0, 1 / 255, (128, 128)).astype(np.float32)
    assert not_a_scan(faint) is not None
    assert "almost uniform" in not_a_scan(np.tile(np.linspace(0.40, 0.41, 128, dtype=np.float32), (128, 1)))


@pytest.mark.parametrize("size", [28, 64, 512])
@pytest.mark.parametrize("kind", ["uniform", "gaussian", "salt and pepper"])
def test_noise_of_any_kind_and_size_is_refused_as_noise(kind, size):
    rng = np.random.default_rng(size)
    noise = {"uniform": rng.random((size, size)), "gaussian": np.clip(rng.normal(0.5, 0.15, (size, size)), 0, 1),
             "salt and pepper": (rng.random((size, size)) < 0.5) * 1.0}[kind].astype(np.float32)
    for picture in (noise, as_file(noise), as_file(noise, "JPEG")):
        assert "random noise" in not_a_scan(picture)


@pytest.mark.parametrize("size", [28, 96, 512])
@pytest.mark.parametrize("kind", ["checkerboard", "stripes", "linear gradient"])
def test_patterns_saved_without_loss_are_refused(kind, size):
    for seed in range(4):
        picture = synthetic_picture(kind, np.random.default_rng(seed), size)
        if kind == "linear gradient" and size == 28:
            continue  # a 28-pixel ramp that wraps around has too few pixels to tell from a scan: the model's job
        assert not_a_scan(picture) is not None, (kind, size, seed)
        assert not_a_scan(as_file(picture)) is not None, (kind, size, seed)


def test_a_two_tone_drawing_says_so():
    assert "darkest or its lightest" in not_a_scan(read_image(png_bytes(np.kron(np.eye(4), np.ones((16, 16))).astype(np.uint8) * 255)))


def test_a_gradient_says_it_has_no_texture():
    ramp = np.tile(np.linspace(0, 1, 200, dtype=np.float32), (150, 1))
    assert "flat steps or smooth ramps" in not_a_scan(ramp)


def test_a_picture_a_few_pixels_wide_is_refused():
    assert not_a_scan(np.random.default_rng(0).random((5, 300), dtype=np.float32)).startswith("The picture is only 300 x 5")


def test_a_grainy_scan_is_not_mistaken_for_noise():
    """Noisy at the scale of a pixel, it still shows a body at the scale of a few pixels (a MedNIST chest CT can)."""
    assert not_a_scan(grainy_body()) is None


def test_every_reason_is_one_plain_sentence():
    pictures = [np.zeros((40, 40), np.float32), RNG.random((40, 40), dtype=np.float32), np.ones((3, 3), np.float32),
                synthetic_picture("checkerboard", RNG), synthetic_picture("linear gradient", RNG, 128)]
    for reason in map(not_a_scan, pictures):
        assert reason[:1].isupper() and reason.endswith(".") and reason.count(". ") == 0, reason


def test_real_scans_of_every_mednist_class_pass(mednist_images):
    for kind, images in mednist_images.items():
        for data in images:
            assert not_a_scan(read_image(data)) is None, kind


def test_real_brain_mri_slices_pass(brain_images):
    for kind, images in brain_images.items():
        for data in images:
            assert not_a_scan(read_image(data)) is None, kind


def test_the_check_takes_a_few_milliseconds_on_a_large_picture():
    picture = synthetic_picture("radial gradient", RNG, 1024) * 0.5 + RNG.random((1024, 1024), dtype=np.float32) * 0.2
    not_a_scan(picture)
    started = time.perf_counter()
    for _ in range(5):
        not_a_scan(picture)
    assert (time.perf_counter() - started) / 5 < 0.05  # 50 ms on a busy machine; a few ms on a quiet one
