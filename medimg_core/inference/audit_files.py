"""What an audit reads: every file under its paths (zip members one by one), each file's bytes, and its format
named from its first bytes; a file that cannot be read says why in words (see audit.py for the pipeline)."""
from __future__ import annotations

import zipfile
from functools import lru_cache
from pathlib import Path

from .audit_summary import AuditError
from ..io.folders import is_hidden
from ..io.formats import sniff_format
from ..io.imaging import MAX_BYTES, ImageReadError, _read_bytes

MAGIC = ((b"\xff\xd8\xff", "JPEG"), (b"\x89PNG", "PNG"), (b"GIF8", "GIF"), (b"BM", "BMP"), (b"II*\x00", "TIFF"),
         (b"MM\x00*", "TIFF"), (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"\xffO\xffQ", "JPEG 2000"))
SNIFFED = {"dicom": "DICOM", "pdf": "PDF", "svg": "SVG", "html": "HTML", "zip": "zip", "gzip": "gzip", "eps": "EPS",
           "heic": "HEIC", "avif": "AVIF", "nifti": "NIfTI"}  # a name for every kind formats.sniff_format tells apart
IMAGE_FORMATS = {"DICOM", "JPEG", "PNG", "GIF", "BMP", "TIFF", "WebP", "JPEG 2000", "HEIC", "AVIF",
                 "NIfTI"}  # formats of images: one that cannot be read is "unreadable", not "not an image"


def discover(paths: list[Path]) -> list[dict]:
    """One item per input file: every file of a folder (recursively, hidden ones skipped), every member of a zip
    archive, a file as it is; each {"path": name shown, "archive": zip file or None, "member": name inside or None}.

    Raises:
        AuditError: a path that does not exist, or no file at all.
    """
    items = []
    for path in map(Path, paths):
        if path.is_dir():
            for f in sorted(path.rglob("*")):
                if f.is_file() and not is_hidden(f.relative_to(path).as_posix()):
                    items += file_items(f)
        elif path.is_file():
            items += file_items(path)
        else:
            raise AuditError(f"There is no file or folder at {path}.")
    if not items:
        raise AuditError(f"No files found in {', '.join(map(str, paths))}.")
    return items


def file_items(path: Path) -> list[dict]:
    """The items of one file: the members of a zip archive, else the file itself (a damaged zip is one item)."""
    if path.suffix.lower() == ".zip":
        try:
            with zipfile.ZipFile(path) as zf:
                names = sorted(n for n in zf.namelist() if not n.endswith("/") and not is_hidden(n))
            return [{"path": f"{path}/{n}", "archive": str(path), "member": n} for n in names]
        except (zipfile.BadZipFile, OSError):
            pass
    return [{"path": str(path), "archive": None, "member": None}]


@lru_cache(maxsize=8)
def open_zip(path: str) -> zipfile.ZipFile:
    """A zip archive kept open in this worker process, so its directory is read once, not once per member."""
    return zipfile.ZipFile(path)


ZIP_MEMBER_ERRORS = {  # what each failure of zipfile means for one member, in words
    RuntimeError: "This member of the zip archive is encrypted (password-protected), so it cannot be read.",
    NotImplementedError: "This member of the zip archive is compressed in a way that cannot be unpacked here.",
    KeyError: "This member is no longer in the zip archive (the archive changed during the audit).",
}


def item_bytes(item: dict) -> bytes:
    """The bytes of one input file (a zip member read from its archive), at most MAX_BYTES."""
    if not item["archive"]:
        data = _read_bytes(Path(item["path"]))
        if item["path"].lower().endswith(".zip") and sniff_format(data) == "zip":  # file_items could not open it
            raise ImageReadError("This zip archive is damaged and cannot be opened, so none of its files were read.")
        return data
    try:
        zf = open_zip(item["archive"])
        info = zf.getinfo(item["member"])
        if info.file_size > MAX_BYTES:
            raise ImageReadError(f"The file is {info.file_size / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB.")
        data = zf.read(info)
    except (zipfile.BadZipFile, OSError, KeyError, RuntimeError, NotImplementedError) as err:
        raise ImageReadError(ZIP_MEMBER_ERRORS.get(type(err), "This member of the zip archive cannot be read: the "
                                                          "archive is damaged.")) from err
    if not data:
        raise ImageReadError("The file is empty (0 bytes).")
    return data


def file_format(data: bytes) -> str:
    """The file's format named from its first bytes ("DICOM", "JPEG", "PNG", "PDF", "zip", ...; else "unknown")."""
    kind = sniff_format(data)
    if kind != "raster":
        return SNIFFED[kind]
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WebP"
    return next((name for magic, name in MAGIC if data.startswith(magic)), "unknown")
