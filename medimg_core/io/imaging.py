"""Reading any image a person might drag in, and turning it into the model's input.

`read_image` takes a path, bytes or a binary file object and returns the picture as a 2-D
float32 array in [0, 1] (grayscale, native resolution). `to_model_input` brings that array to
the model's square input (letterbox: no distortion; or squashed, for a task trained on squashed images). Training reads its data through the same
two functions, so what the model sees in the app is what it saw in training.

Every failure is an `ImageReadError` whose message is one plain sentence for the user. Sizes
are checked before pixels are decoded, so hostile files cannot make us allocate gigabytes.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO, NamedTuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .dicom_errors import element_sentence, malformed_element, pixel_data_problem, undecodable
from .dicom_file import read_dataset
from .formats import UNSUPPORTED, sniff_format

MAX_BYTES = 64 * 1024 * 1024  # largest file we read
MAX_PIXELS = 50_000_000  # largest decoded frame (e.g. 7000 x 7000)

SUPPORTED = "JPEG, PNG, BMP, TIFF, WebP, GIF, JPEG 2000 or DICOM"
ImageSource = str | Path | bytes | bytearray | BinaryIO


class ImageReadError(ValueError):
    """A file that cannot be turned into an image; the message is meant for the user."""


def read_image(source: ImageSource) -> np.ndarray:
    """Decode a file into a grayscale HxW float32 array in [0, 1].

    Args:
        source: a path, the file's bytes, or a binary file-like object.
    Returns:
        HxW float32 in [0, 1], 0 = black, EXIF orientation applied.
    Raises:
        ImageReadError: with one plain sentence naming the problem.
    """
    data = _read_bytes(source)
    kind = sniff_format(data)
    if kind == "dicom":
        return _decode_dicom(data)
    if kind in UNSUPPORTED:
        raise ImageReadError(UNSUPPORTED[kind])
    try:
        return _decode_pillow(data)
    except ImageReadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageReadError(
            f"The image is larger than the {MAX_PIXELS / 1e6:.0f} megapixel limit; scale it down before uploading."
        ) from err
    except UnidentifiedImageError as err:
        raise ImageReadError(f"This file is not an image we can read ({SUPPORTED}).") from err
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError) as err:
        raise ImageReadError("The image file is damaged or truncated and cannot be decoded.") from err


FITS = ("letterbox", "squash")  # how a picture of any shape becomes the square model input


def to_model_input(image: np.ndarray, size: int, native: int | None = None, fit: str = "letterbox") -> np.ndarray:
    """Bring a [0, 1] image to the model's size x size square input.

    Args:
        image: HxW float array in [0, 1].
        size: side of the square model input.
        native: the resolution of the task's own images when it is lower than `size` (PneumoniaMNIST:
            28): the image is brought to native x native first, so every input carries the detail the
            model was trained on, and sharpness alone never tells a source apart.
        fit: "letterbox" keeps the aspect ratio on a black square; "squash" stretches the image to the
            square, for a task whose training images were squashed so (TaskSpec.fit).
    Returns:
        size x size float32 in [0, 1].
    """
    if fit not in FITS:
        raise ValueError(f"fit must be one of {', '.join(FITS)}, not {fit!r}")
    if native and native < size:
        image = to_model_input(image, native, fit=fit)
    h, w = image.shape
    if (h, w) == (size, size):
        return image.astype(np.float32, copy=False)
    if fit == "squash":
        return resize(image, size, size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    out = np.zeros((size, size), np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = resize(image, nw, nh, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return out


def resize(image: np.ndarray, width: int, height: int, resample: Image.Resampling,
           reducing_gap: float | None = None) -> np.ndarray:
    """A [0, 1] float image resized to height x width (float32 in [0, 1])."""
    out = Image.fromarray(image.astype(np.float32), mode="F").resize((width, height), resample, reducing_gap=reducing_gap)
    return np.clip(np.asarray(out, dtype=np.float32), 0.0, 1.0)


def resize_square(image: np.ndarray, size: int, resample: Image.Resampling = Image.Resampling.BICUBIC) -> np.ndarray:
    """A square [0, 1] float image resized to size x size, for display (NEAREST shows the pixels)."""
    return resize(image, size, size, resample)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Quantise a [0, 1] image to uint8 (for display and compact storage)."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)


ACCEPTED_ARRAYS = ("HxW or HxWxC (C = 1, 3 or 4) arrays of uint8 (0..255), uint16 (0..65535) or floats in [0, 1] "
                   "(as read_image returns)")
GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # ITU-R 601 luma, as Pillow's RGB -> L


def as_unit_gray(array: np.ndarray) -> np.ndarray:
    """Any picture array a caller may hold -> the HxW float32 in [0, 1] that read_image returns.

    Args:
        array: HxW or HxWxC (C = 1 gray, 3 RGB, 4 RGBA: composited onto black, as read_image does) of uint8
            (0..255), uint16 (0..65535, full range) or float in [0, 1]. The same picture gives the same result
            in each of these forms (np.asarray(Image.open(f)), its / 255 floats, its * 257 uint16).
    Returns:
        HxW float32 in [0, 1].
    Raises:
        ValueError: naming what the array is and what is accepted (bool, signed or 64-bit integers, floats
            outside [0, 1], NaN, other shapes).
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (1, 3, 4):
        pass
    elif array.ndim != 2:
        raise ValueError(f"a picture array of shape {array.shape} is not accepted: give {ACCEPTED_ARRAYS}.")
    if array.size == 0:
        raise ValueError(f"the picture array of shape {array.shape} holds no pixels: give {ACCEPTED_ARRAYS}.")
    if array.dtype == np.uint8 or array.dtype == np.uint16:
        unit = array.astype(np.float32) / np.float32(np.iinfo(array.dtype).max)
    elif array.dtype.kind == "f":
        unit = _unit_floats(array)
    else:
        raise ValueError(f"a picture array of {array.dtype} values is not accepted: give {ACCEPTED_ARRAYS}.")
    if unit.ndim == 2:
        return unit
    if unit.shape[-1] == 1:
        return unit[..., 0]
    gray = unit[..., :3] @ GRAY_WEIGHTS
    if unit.shape[-1] == 4:
        gray = gray * unit[..., 3]
    return np.clip(gray, 0.0, 1.0).astype(np.float32, copy=False)


def _unit_floats(array: np.ndarray) -> np.ndarray:
    """A float array as float32, checked to lie in [0, 1] (a rounding error's worth outside is clipped)."""
    low, high = float(np.min(array)), float(np.max(array))
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"the picture array holds NaN or infinite values: give {ACCEPTED_ARRAYS}.")
    if low < -1e-6 or high > 1 + 1e-6:
        hint = " (divide 0..255 values by 255, or pass them as uint8)" if high > 1 and low >= 0 else ""
        raise ValueError(f"float picture values must lie in [0, 1]; this array holds values from {low:g} to {high:g}"
                         f"{hint}. Accepted: {ACCEPTED_ARRAYS}.")
    if low < 0 or high > 1:
        array = np.clip(array, 0.0, 1.0)
    return array.astype(np.float32, copy=False)


def _read_bytes(source: ImageSource) -> bytes:
    """Get at most MAX_BYTES of the source's bytes, with a clear error for empty or huge files."""
    if isinstance(source, (bytes, bytearray)):
        data = bytes(source)
    elif isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise ImageReadError(f"There is no file at {path}.")
        if path.stat().st_size > MAX_BYTES:
            raise ImageReadError(_too_big(path.stat().st_size))
        data = path.read_bytes()
    else:
        data = source.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ImageReadError(_too_big(len(data)))
    if not data:
        raise ImageReadError("The file is empty (0 bytes).")
    return data


def _too_big(n: int) -> str:
    return f"The file is {n / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB."


def _check_pixels(width: int, height: int) -> None:
    """Refuse frames too large to decode safely (decompression bombs)."""
    if width <= 0 or height <= 0:
        raise ImageReadError(f"The image has no pixels ({width} x {height}).")
    if width * height > MAX_PIXELS:
        raise ImageReadError(
            f"The image is {width} x {height} pixels, larger than the {MAX_PIXELS / 1e6:.0f} megapixel "
            "limit; scale it down before uploading."
        )


def _decode_pillow(data: bytes) -> np.ndarray:
    """Decode a raster image with Pillow: first frame, EXIF orientation, any mode or bit depth."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with Image.open(io.BytesIO(data)) as im:
            _check_pixels(*im.size)
            im.seek(0)
            im.load()
            im = ImageOps.exif_transpose(im)
            return _pil_to_gray(im)


def _pil_to_gray(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> HxW float32 in [0, 1]; transparency composited onto black."""
    if im.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        return _window(np.asarray(im, dtype=np.float32))
    if im.mode == "P" or im.mode == "PA":
        im = im.convert("RGBA")
    if im.mode in ("LA", "RGBA", "La", "RGBa"):
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        im = Image.alpha_composite(black, rgba)
    if im.mode not in ("L", "RGB"):
        im = im.convert("RGB")  # CMYK, YCbCr, 1, LAB, HSV ...
    return np.asarray(im.convert("L"), dtype=np.float32) / 255.0


def _window(pixels: np.ndarray, low_pct: float = 0.5, high_pct: float = 99.5) -> np.ndarray:
    """Map high-bit-depth or float data to [0, 1] with a robust percentile window."""
    finite = np.isfinite(pixels)
    if not finite.any():
        raise ImageReadError("The image holds no finite pixel values.")
    pixels = np.where(finite, pixels, 0.0)
    lo, hi = np.percentile(pixels, [low_pct, high_pct])
    if hi <= lo:
        lo, hi = float(pixels.min()), float(pixels.max())
    if hi <= lo:
        return np.zeros(pixels.shape, np.float32)
    return np.clip((pixels - lo) / (hi - lo), 0.0, 1.0).astype(np.float32)


def _decode_dicom(data: bytes) -> np.ndarray:
    """DICOM -> [0, 1]: middle frame, rescale slope/intercept, window, MONOCHROME1 inverted."""
    with warnings.catch_warnings():  # pydicom's warnings quote the file's values: nothing from the file is printed
        warnings.simplefilter("ignore")
        return _decode_dicom_dataset(data)


def _decode_dicom_dataset(data: bytes) -> np.ndarray:
    """_decode_dicom without its warning filter."""
    try:
        ds = read_dataset(data)
    except Exception as err:  # noqa: BLE001 - a damaged file raises many kinds (struct.error, EOFError, ...)
        raise ImageReadError("The DICOM file is damaged or cut short in its header, so it cannot be read.") from err
    if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
        raise ImageReadError("This DICOM file holds no image (no pixel data); it may be a report or a structured document.")
    try:
        return _dicom_pixels(ds)
    except ImageReadError:
        raise
    except Exception as err:  # pydicom parses element values lazily: a malformed one (e.g. IS '1A') fails on first use
        raise ImageReadError(malformed_element(ds) or "The DICOM file has a malformed element, so its image cannot be "
                             "read.") from err


def _dicom_pixels(ds) -> np.ndarray:
    """A parsed DICOM dataset's middle frame, rescaled and windowed into [0, 1]."""
    from pydicom.pixels import apply_modality_lut, pixel_array

    rows, cols = dicom_count(ds, "Rows", 0), dicom_count(ds, "Columns", 0)
    if not rows or not cols:
        raise ImageReadError("This DICOM file holds pixel data but does not say the image's size (its Rows and "
                             "Columns elements are missing or zero), so its image cannot be read.")
    _check_pixels(cols, rows)
    frames = dicom_count(ds, "NumberOfFrames", 1) or 1
    try:  # warnings are already silenced by _decode_dicom
        arr = pixel_array(ds, index=frames // 2 if frames > 1 else None)
    except (NotImplementedError, RuntimeError, ImportError) as err:
        raise ImageReadError(undecodable(ds)) from err
    except (ValueError, AttributeError, KeyError, TypeError, IndexError, OSError, EOFError) as err:
        raise ImageReadError(malformed_element(ds) or pixel_data_problem(str(err))) from err
    if arr.ndim == 3 and arr.shape[-1] in (3, 4):  # colour DICOM (already RGB)
        rgb = arr[..., :3].astype(np.float32)
        arr = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
        return _window(arr, 0.0, 100.0)
    if arr.ndim != 2:
        raise ImageReadError(f"This DICOM image has an unexpected shape {arr.shape}.")
    arr = apply_modality_lut(arr, ds).astype(np.float32)
    image = _dicom_window(arr, ds)
    if str(ds.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        image = 1.0 - image
    return image


def dicom_count(ds, keyword: str, default: int) -> int:
    """A whole-number element of a DICOM dataset (Rows, NumberOfFrames ...), or default when it is absent.

    Raises:
        ImageReadError: naming the element, its tag and its value when the value is not a whole number.
    """
    elem = ds.data_element(keyword) if keyword in ds else None
    if elem is None or elem.value in (None, ""):
        return default
    try:
        return int(elem.value)
    except (TypeError, ValueError):
        raise ImageReadError(element_sentence(elem.tag, keyword, elem.value, "a whole number")) from None


# window (centre, width) for a modality whose pixel values have a fixed meaning, when the file names none
DEFAULT_WINDOWS = {"CT": (40.0, 400.0)}  # Hounsfield units: the soft-tissue window of abdomen, chest and head CT


class Window(NamedTuple):
    """A display window: values center +- width / 2 map to black..white; source is "file" (the first VOI
    window stored in the DICOM) or "default" (DEFAULT_WINDOWS for its modality)."""

    center: float
    width: float
    source: str


def dicom_window(ds) -> Window | None:
    """The window read_image applies to a DICOM dataset: the file's first VOI window, else the modality's
    default (CT: soft tissue); None = a robust percentile window of the image's own values (MR, X-ray,
    colour and anything else without a fixed scale)."""
    from pydicom.multival import MultiValue

    if int(ds.get("SamplesPerPixel", 1) or 1) > 1:  # colour: windowed on its own range
        return None
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    try:
        window = Window(float(center[0] if isinstance(center, MultiValue) else center),
                        float(width[0] if isinstance(width, MultiValue) else width), "file")
    except (TypeError, ValueError, IndexError):
        default = DEFAULT_WINDOWS.get(str(ds.get("Modality", "")).upper())
        window = Window(*default, "default") if default else None
    return window if window is not None and window.width > 1 else None


def _dicom_window(arr: np.ndarray, ds) -> np.ndarray:
    """Apply dicom_window(ds), or a percentile window when it names none or misses this frame entirely."""
    window = dicom_window(ds)
    if window is None:
        return _window(arr)
    lo = window.center - window.width / 2
    out = np.clip((arr - lo) / window.width, 0.0, 1.0).astype(np.float32)
    if out.max() - out.min() < 1e-3:  # the stored window misses this frame entirely
        return _window(arr)
    return out
