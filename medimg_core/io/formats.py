"""What a file is, named from its first bytes rather than its name: DICOM, an image Pillow decodes ("raster"),
or one of the documents, archives and volumes that get their own sentence (UNSUPPORTED)."""
from __future__ import annotations

import zlib

from .dicom_file import HEAD_BYTES, is_dicom


def sniff_format(data: bytes) -> str:
    """Name the file's format from its first bytes, not from its name."""
    head = data[:1024].lstrip()
    if is_dicom(data[:HEAD_BYTES]):
        return "dicom"
    if head.startswith(b"%PDF"):
        return "pdf"
    low = head[:512].lower()
    if low.startswith(b"<svg") or (low.startswith(b"<?xml") and b"<svg" in data[:4096].lower()):
        return "svg"
    if low.startswith((b"<!doctype html", b"<html")):
        return "html"
    if data[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "zip"
    if is_nifti(data):
        return "nifti"
    if data[:3] == b"\x1f\x8b\x08":
        return "nifti" if is_nifti(_gunzip_head(data)) else "gzip"
    if head.startswith(b"%!PS") or data[:4] == b"\xc5\xd0\xd3\xc6":  # PostScript / EPS (DOS binary EPS header)
        return "eps"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return HEIF_BRANDS[data[8:12]]
    return "raster"


def is_nifti(data: bytes) -> bool:
    """Whether the bytes start a NIfTI-1 or NIfTI-2 volume: the header's size (348 or 540) and its magic string."""
    sizes = {data[:4], data[:4][::-1]}
    nifti1 = (348).to_bytes(4, "little") in sizes and data[344:348] in (b"n+1\0", b"ni1\0")
    return nifti1 or ((540).to_bytes(4, "little") in sizes and data[4:8] in (b"n+2\0", b"ni2\0"))


def _gunzip_head(data: bytes, size: int = 352) -> bytes:
    """The first `size` bytes of a gzip stream (empty if it cannot be unpacked)."""
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:65536], size)
    except zlib.error:
        return b""


HEIF_BRANDS = {b"heic": "heic", b"heix": "heic", b"hevc": "heic", b"heim": "heic", b"heis": "heic", b"mif1": "heic",
               b"msf1": "heic", b"avif": "avif", b"avis": "avif"}  # the ISO base media file's major brand


UNSUPPORTED = {
    "pdf": "PDF documents are not supported: export the page as a PNG or JPEG image first.",
    "svg": "SVG vector drawings are not supported: upload a PNG, JPEG or DICOM scan instead.",
    "html": "This is a web page (HTML), not an image.",
    "zip": "This is a zip archive, not an image: unpack it and upload the images inside.",
    "gzip": "This is a compressed (gzip) archive, not an image: unpack it first.",
    "nifti": "NIfTI volumes (.nii, .nii.gz) are not supported: export the slice to classify as PNG or DICOM first.",
    "eps": "PostScript and EPS drawings are not supported: export it as a PNG or JPEG image first.",
    "heic": "HEIC photos (as iPhones take them) are not supported: export or share the photo as JPEG first.",
    "avif": "AVIF images are not supported: save it as PNG or JPEG first.",
}
