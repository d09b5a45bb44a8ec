"""Tiny images generated in code, for tests (no files taken from the datasets)."""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def png_bytes(array: np.ndarray, mode: str | None = None, **save) -> bytes:
    """Encode an array as PNG in memory."""
    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="PNG", **save)
    return buf.getvalue()


def encode(image: Image.Image, fmt: str, **save) -> bytes:
    """Encode a Pillow image in memory."""
    buf = io.BytesIO()
    image.save(buf, format=fmt, **save)
    return buf.getvalue()


def gradient(h: int = 48, w: int = 64) -> np.ndarray:
    """A left-to-right uint8 ramp, so orientation and scaling are checkable."""
    return np.tile(np.linspace(0, 255, w).astype(np.uint8), (h, 1))


def nifti_bytes(version: int = 1) -> bytes:
    """The start of an empty 64 x 64 NIfTI volume: its header size field and magic string (what a .nii file begins
    with), NIfTI-1 or NIfTI-2."""
    if version == 1:
        return struct.pack("<i", 348) + bytes(340) + b"n+1\0" + bytes(4) + bytes(64 * 64)
    return struct.pack("<i", 540) + b"n+2\0\r\n\x1a\n" + bytes(532) + bytes(64 * 64)


def make_class_folders(root: Path, classes: tuple[str, ...], per_class: int = 4, size: int = 64) -> Path:
    """Write <root>/<class>/<i>.png with a distinct simple pattern per class."""
    rng = np.random.default_rng(0)
    for c, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            img = np.zeros((size, size), np.uint8)
            img[:, c * size // len(classes): (c + 1) * size // len(classes)] = 200
            img = np.clip(img + rng.integers(0, 30, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{i}.png")
    return root


def dicom_bytes(pixels: np.ndarray, photometric: str = "MONOCHROME2", slope: float = 1.0, intercept: float = 0.0,
                window: tuple[float, float] | None = None, frames: int = 1, with_pixels: bool = True,
                transfer_syntax: str | None = None, encapsulated: list[bytes] | None = None,
                modality: str = "OT", tags: dict | None = None) -> bytes:
    """A minimal valid DICOM file in memory (uint16/int16 pixels, optional multi-frame; modality OT = other).

    tags: further elements by keyword, e.g. {"BodyPartExamined": "CHEST", "PatientName": "Doe^Jane"}.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.encaps import encapsulate
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = transfer_syntax or ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    ds.Rows, ds.Columns = pixels.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = (8, 8, 7) if pixels.dtype == np.uint8 else (16, 16, 15)
    ds.PixelRepresentation = 1 if pixels.dtype == np.int16 else 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if frames > 1:
        ds.NumberOfFrames = frames
    for keyword, value in (tags or {}).items():
        setattr(ds, keyword, value)
    if encapsulated is not None:
        ds.PixelData = encapsulate(encapsulated)
    elif with_pixels:
        ds.PixelData = pixels.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def bare_dicom(data: bytes, implicit_vr: bool = True, little_endian: bool = True) -> bytes:
    """The same DICOM written as older software writes it: no preamble, no 'DICM', no file meta."""
    import pydicom
    from pydicom.filewriter import dcmwrite

    ds = pydicom.dcmread(io.BytesIO(data))
    ds.preamble = None
    del ds.file_meta
    if not little_endian and ds.BitsAllocated == 16:  # pydicom writes pixel bytes as they are: swap them here
        ds.PixelData = np.frombuffer(ds.PixelData, "<u2").astype(">u2").tobytes()
    buf = io.BytesIO()
    dcmwrite(buf, ds, implicit_vr=implicit_vr, little_endian=little_endian, enforce_file_format=False)
    return buf.getvalue()


def dicom_of(image: bytes, modality: str = "OT", tags: dict | None = None) -> bytes:
    """A DICOM of an 8-bit image file's pixels (as 12-bit values, with a stored window that shows them unchanged)."""
    pixels = np.asarray(Image.open(io.BytesIO(image)).convert("L")).astype(np.uint16) * 16
    return dicom_bytes(pixels, window=(2040.0, 4080.0), modality=modality, tags=tags)
