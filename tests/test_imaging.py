"""read_image: every format a person may drag in, and a clear error for every broken file."""
from __future__ import annotations

import gzip
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from medimg_core.io.imaging import MAX_BYTES, ImageReadError, read_image, to_model_input
from tests.imagegen import encode, gradient, nifti_bytes, png_bytes


def test_grayscale_png_maps_8_bit_to_unit_range():
    img = read_image(png_bytes(gradient()))
    assert img.dtype == np.float32 and img.shape == (48, 64)
    assert img[0, 0] == 0.0 and img[0, -1] == 1.0


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "TIFF", "WEBP", "GIF"])
def test_common_raster_formats_decode_to_the_same_picture(fmt):
    rgb = Image.fromarray(gradient()).convert("RGB")
    img = read_image(encode(rgb, fmt))
    assert img.shape == (48, 64)
    assert abs(float(img[:, :8].mean())) < 0.1 and float(img[:, -8:].mean()) > 0.9


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA", "P", "CMYK", "1", "I", "F"])
def test_every_pillow_mode_becomes_grayscale(mode):
    im = Image.fromarray(gradient()).convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I", "F") else "PNG"
    img = read_image(encode(im, fmt))
    assert img.shape == (48, 64) and 0.0 <= img.min() and img.max() <= 1.0
    assert img[:, -4:].mean() > img[:, :4].mean()


def test_transparent_pixels_become_black():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., :3] = 255
    rgba[:, 5:, 3] = 255  # left half transparent
    img = read_image(png_bytes(rgba, "RGBA"))
    assert img[:, :5].max() == 0.0 and img[:, 5:].min() == 1.0


def test_16_bit_png_is_windowed_to_its_own_range():
    twelve_bit = (np.linspace(0, 4095, 64)[None].repeat(8, 0)).astype(np.uint16)
    img = read_image(png_bytes(twelve_bit))
    assert img.min() == 0.0 and img.max() == 1.0  # a 12-bit scan is not left dark


def test_float_tiff_is_read():
    data = np.linspace(-1000.0, 3000.0, 64 * 8, dtype=np.float32).reshape(8, 64)
    img = read_image(encode(Image.fromarray(data, mode="F"), "TIFF"))
    assert img.shape == (8, 64) and img[0, 0] == 0.0 and img[-1, -1] == 1.0


def test_only_the_first_gif_frame_is_used():
    frames = [Image.fromarray(np.full((8, 8), v, np.uint8)).convert("P") for v in (255, 0)]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    assert read_image(buf.getvalue()).mean() > 0.9


def test_exif_orientation_is_applied():
    im = Image.fromarray(gradient(20, 40))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    img = read_image(encode(im.convert("RGB"), "JPEG", exif=exif))
    assert img.shape == (40, 20)


def test_format_is_sniffed_from_content_not_name(tmp_path):
    path = tmp_path / "scan.jpg"  # really a PNG
    path.write_bytes(png_bytes(gradient()))
    assert read_image(path).shape == (48, 64)


def test_file_objects_are_read():
    assert read_image(io.BytesIO(png_bytes(gradient()))).shape == (48, 64)


def test_letterbox_keeps_aspect_ratio_with_black_bars():
    wide = np.ones((32, 128), np.float32)
    out = to_model_input(wide, 64)
    assert out.shape == (64, 64)
    assert out[:20].max() == 0.0 and out[-20:].max() == 0.0  # bars top and bottom
    assert out[32, :].min() > 0.99  # the picture itself is not squashed


def test_model_sized_input_is_unchanged():
    img = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    assert np.array_equal(to_model_input(img, 64), img)


# --- broken and hostile files -------------------------------------------------------------

def _png_with_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims another size (a decompression bomb's trick)."""
    raw = png_bytes(np.zeros((1, 1), np.uint8))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return raw[:8] + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + raw[33:]


@pytest.mark.parametrize("data", [nifti_bytes(1), nifti_bytes(2), gzip.compress(nifti_bytes(1))], ids=["nii", "nifti2", "nii.gz"])
def test_a_nifti_volume_is_named_and_not_called_an_archive(data):
    with pytest.raises(ImageReadError, match=r"^NIfTI volumes \(\.nii, \.nii\.gz\) are not supported"):
        read_image(data)


def test_a_plain_gzip_file_is_still_called_an_archive():
    with pytest.raises(ImageReadError, match="compressed \\(gzip\\) archive"):
        read_image(gzip.compress(b"a text file, not a volume" * 20))


def test_a_jpeg_2000_file_reads_as_the_same_picture():
    picture = gradient(64)
    assert np.array_equal(read_image(encode(Image.fromarray(picture), "JPEG2000")), picture.astype(np.float32) / 255)


@pytest.mark.parametrize(
    "data, words",
    [
        (b"", "empty"),
        (bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)), "not an image"),
        (b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\n", "PDF"),
        (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"<svg width='10' height='10'></svg>", "SVG"),
        (b"<!DOCTYPE html><html></html>", "web page"),
        (b"PK\x03\x04" + b"\0" * 40, "zip"),
        (_png_with_size(40000, 40000), "megapixel"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", "EPS drawings are not supported"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\0" * 64, "HEIC photos"),
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\0" * 64, "AVIF images"),
    ],
)
def test_broken_or_hostile_input_gets_a_specific_message(data, words):
    with pytest.raises(ImageReadError, match=words):
        read_image(data)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_truncated_images_are_reported_as_damaged(fmt):
    rng = np.random.default_rng(1)
    data = encode(Image.fromarray(rng.integers(0, 255, (256, 256), dtype=np.uint8)), fmt)
    with pytest.raises(ImageReadError, match=r"^The image file is damaged or truncated and cannot be decoded\.$"):
        read_image(data[: len(data) // 2])


def test_oversized_files_are_refused_before_decoding():
    with pytest.raises(ImageReadError, match="limit"):
        read_image(b"\0" * (MAX_BYTES + 1))


def test_a_missing_path_is_named(tmp_path):
    with pytest.raises(ImageReadError, match="no file"):
        read_image(tmp_path / "nope.png")
