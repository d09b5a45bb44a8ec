"""Reading a folder or archive of `<class>/<image>` files, with an optional manifest of sources.

`read_folder_images(path, size)` decodes every image through the same `read_image` +
`to_model_input` that prediction uses and keeps, per image, its class folder, the dataset it
came from and its kind. Those two come from a `manifest.csv` beside the class folders when
there is one (columns `file`, `dataset`, and for images of other kinds a `note` holding
`kind=...`), as in the scan-kinds supplement; otherwise every image's dataset is the source's
name and its kind is its class folder (or the source's fixed kind).
"""
from __future__ import annotations

import csv
import io
import re
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from .dicom_file import HEAD_BYTES
from .formats import sniff_format
from .imaging import ImageReadError, read_image, to_model_input, to_uint8

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".jp2", ".j2k", ".dcm"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
MANIFEST = "manifest.csv"
Progress = Callable[[int, int], None]  # (done, total) in bytes or items; total 0 = unknown


class FolderError(ValueError):
    """A folder or archive that cannot be read as <class>/<image> files; the message says why."""


@dataclass
class SourceImages:
    """Every image of a source at one input size, with where each came from, before any task's labels.

    images: N x S x S uint8; folders: N class names (the class folder, or the label number of an
    npz); files: N names inside the source; origins: N dataset names; kinds: N image kinds (e.g.
    "ChestCT", "brain MRI"); split: N official split names ("" when the source has none); broken:
    the files that could not be read, each with the reason.
    """

    images: np.ndarray
    folders: np.ndarray
    files: list[str]
    origins: np.ndarray
    kinds: np.ndarray
    split: np.ndarray
    broken: list[str]


def is_hidden(name: str) -> bool:
    """Whether a path inside a folder or archive is hidden or macOS metadata (.DS_Store, __MACOSX/...)."""
    return any(part.startswith((".", "__MACOSX")) for part in PurePosixPath(name).parts)


def is_entry(name: str, suffixes: set[str] | frozenset[str] = frozenset(IMAGE_SUFFIXES)) -> bool:
    """Whether an archive member is an image (or a manifest) worth reading: no hidden or macOS files."""
    p = PurePosixPath(name)
    return (p.suffix.lower() in suffixes or p.name == MANIFEST) and not is_hidden(name)


def may_be_unnamed_dicom(name: str) -> bool:
    """Whether a file's name leaves open that it is a DICOM file without a .dcm suffix, as in the DICOM trees of
    PACS exports and CDs (`IM000001`, or a UID such as `1.2.840.113619.2.55.3.6044.234`); not DICOMDIR, the
    tree's index, which holds no image."""
    p = PurePosixPath(name)
    return not is_hidden(name) and p.name.upper() != "DICOMDIR" and (not p.suffix or p.suffix[1:].isdigit())


def is_unnamed_dicom(name: str, head: Callable[[], bytes]) -> bool:
    """Whether a file without an image suffix is a DICOM file after all, from its first bytes (dicom_file.is_dicom)."""
    return may_be_unnamed_dicom(name) and sniff_format(head()) == "dicom"


def _file_head(path: Path) -> bytes:
    """The first bytes of a file: enough to see the DICOM preamble's 'DICM' or a bare dataset's first elements."""
    with path.open("rb") as f:
        return f.read(HEAD_BYTES)


def iter_entries(path: Path, skipped: list[str] | None = None) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(relative name, reader) for each image or manifest in a folder, tar or zip, in a stable order; a file
    without a suffix is read when its first bytes say DICOM (is_unnamed_dicom). skipped: collects the names of the
    other files (hidden and macOS files aside)."""
    skipped = [] if skipped is None else skipped
    if path.is_dir():
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path).as_posix()
            if f.is_file() and (is_entry(rel) or is_unnamed_dicom(rel, lambda f=f: _file_head(f))):
                yield rel, f.read_bytes
            elif f.is_file() and not is_hidden(rel):
                skipped.append(rel)
    elif path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            def head(n: str) -> bytes:
                with zf.open(n) as member:
                    return member.read(132)
            names = [n for n in zf.namelist() if not n.endswith("/")]
            for name in sorted(names):
                if is_entry(name) or is_unnamed_dicom(name, lambda n=name: head(n)):
                    yield name, lambda n=name: zf.read(n)
                elif not is_hidden(name):
                    skipped.append(name)
    elif path.name.lower().endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tar:  # sequential read: fast for .tar.gz
            for member in tar:
                if not member.isfile() or is_hidden(member.name):
                    continue
                data = tar.extractfile(member).read() if may_be_unnamed_dicom(member.name) or is_entry(member.name) \
                    else b""
                if is_entry(member.name) or sniff_format(data) == "dicom":
                    yield member.name, lambda d=data: d
                else:
                    skipped.append(member.name)
    else:
        raise FolderError(f"{path} is not a folder or an archive ({', '.join(ARCHIVE_SUFFIXES)}).")


def predict_inputs(path: Path, skipped: list[str] | None = None) -> Iterator[tuple[str, Path | Callable[[], bytes]]]:
    """(name, file or reader) for each image to predict: a file as it is, or every image in a folder
    (recursively) or a zip archive, read lazily; skipped collects the folder's or archive's other files (their
    full names). A folder or archive without images is a FolderError."""
    if not (path.is_dir() or (path.is_file() and path.name.lower().endswith(".zip"))):
        yield str(path), path
        return
    found = False
    try:
        others = []
        for name, read in iter_entries(path, others):
            if PurePosixPath(name).name != MANIFEST:
                found = True
                yield f"{path}/{name}", read
        if skipped is not None:
            skipped += [f"{path}/{name}" for name in others]
    except zipfile.BadZipFile:
        raise FolderError(f"{path} is not a zip archive we can open.") from None
    if not found:
        raise FolderError(f"{path} holds no images ({', '.join(sorted(IMAGE_SUFFIXES))}, or DICOM files without "
                          "a suffix).")


def manifest_rows(data: bytes, folder: str) -> dict[str, dict]:
    """A manifest's rows keyed by the full name of their file (the manifest's folder + its `file` column)."""
    prefix = f"{folder}/" if folder not in ("", ".") else ""
    rows = csv.DictReader(io.StringIO(data.decode("utf-8-sig")))
    return {prefix + row["file"]: row for row in rows if row.get("file")}


def kind_from_note(note: str) -> str:
    """The image kind a manifest note names ('kind=brain MRI (axial ...)' -> 'brain MRI'), or ''."""
    found = re.search(r"kind=([^(;]+)", note or "")
    return found.group(1).strip() if found else ""


SPLIT_FOLDERS = {"train": "train", "training": "train", "val": "val", "validation": "val", "test": "test",
                 "testing": "test"}  # a folder above the class folders that names an official split (Kaggle layouts)


def split_of(name: str) -> str:
    """The official split an image's path names (train/<class>/<file>, Testing/<class>/<file>), or ""."""
    parts = PurePosixPath(name).parts
    return SPLIT_FOLDERS.get(parts[-3].lower(), "") if len(parts) >= 3 else ""


def read_folder_images(path: Path, size: int, origin: str, image_kind: str = "",
                       progress: Progress | None = None, native: int | None = None,
                       fit: str = "letterbox") -> SourceImages:
    """Decode every image under <...>/<class>/<image> at size x size (see the module docstring).

    Args:
        path: a folder, .tar.gz/.tgz/.tar or .zip.
        size: side of the square model input.
        origin: the dataset name of images the manifest does not name.
        image_kind: the kind of every image ("" = its class folder, or the manifest's kind=).
        native: bring every image through this resolution first (see imaging.to_model_input).
        fit: "letterbox" or "squash" (imaging.to_model_input).
    """
    images, folders, files, broken, manifest = [], [], [], [], {}
    for name, read in iter_entries(path):
        p = PurePosixPath(name)
        if p.name == MANIFEST:
            manifest.update(manifest_rows(read(), str(p.parent)))
            continue
        try:
            images.append(to_uint8(to_model_input(read_image(read()), size, native, fit)))
        except ImageReadError as err:
            broken.append(f"{name}: {err}")
            continue
        folders.append(p.parts[-2] if len(p.parts) >= 2 else "")  # "" = an image outside any class folder
        files.append(name)
        if progress and len(files) % 500 == 0:
            progress(len(files), 0)
    stack = np.stack(images) if images else np.zeros((0, size, size), np.uint8)
    origins = [manifest.get(f, {}).get("dataset") or origin for f in files]
    kinds = [image_kind or kind_from_note(manifest.get(f, {}).get("note", "")) or folder
             for f, folder in zip(files, folders)]
    return SourceImages(stack, np.array(folders, dtype=str), files, np.array(origins, dtype=str),
                        np.array(kinds, dtype=str), np.array([split_of(f) for f in files], dtype="<U5"), broken)
