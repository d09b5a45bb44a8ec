"""Checks that a downloaded (or copied, or packed) dataset file is what its source should be, before it is kept.

`check_download` reads the new file once: a MedMNIST npz must hold `<split>_images` (N x H x W uint8) with
N matching `<split>_labels` in the task's label range; an archive must be a readable tar whose images sit
in `<class>/<image>` folders, every class of the task among them and no other, a manifest where the
source has one, and the first image of each class must decode. `data.download` calls it on the `.part`
file, so a wrong file never replaces the data already there. `drop_nested_copies` removes the second
copy of a folder nested in itself (Kaggle's chest X-ray zip holds `chest_xray/chest_xray/...`).
Not here: the checksum (data.download) or reading the images for training (folders.py).
"""
from __future__ import annotations

import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np

from ..io.folders import MANIFEST, is_entry
from ..io.imaging import ImageReadError, read_image
from ..tasks import TASKS, DataSource, TaskSpec


class DownloadCheckError(ValueError):
    """A file that is not the dataset it was given as; the message says what is wrong with it."""


def task_of(source: DataSource, spec: TaskSpec | None = None) -> TaskSpec | None:
    """The task whose own dataset the source is (the given task, or the registry's), or None for a supplement."""
    if spec is not None:
        return spec
    return next((t for t in TASKS.values() if t.source.filename == source.filename), None)


def check_download(path: Path, source: DataSource, spec: TaskSpec | None = None, given: str = "") -> None:
    """Raise DownloadCheckError when the file at `path` is not a usable copy of `source` (see the module).

    Args:
        path: the new file (e.g. the `.part` beside the data); given: how the user named it, for the message.
    """
    given = given or str(path)
    task = task_of(source, spec)
    if source.filename.endswith(".npz"):
        check_npz(path, given, task)
    else:
        check_archive(path, given, source, task)


def check_npz(path: Path, given: str, task: TaskSpec | None) -> None:
    """A MedMNIST npz: image and label arrays of the same length for at least one split, labels of the task."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as err:
        raise DownloadCheckError(f"{given} is not an .npz file ({type(err).__name__}: {err})") from None
    with z:
        splits = [s for s in ("train", "val", "test") if f"{s}_images" in z.files and f"{s}_labels" in z.files]
        if not splits:
            raise DownloadCheckError(f"{given} is not a MedMNIST file: it has no train_images/train_labels (or val_, "
                                     f"test_) arrays, only: {', '.join(z.files) or 'nothing'}")
        for s in splits:
            images, labels = z[f"{s}_images"], z[f"{s}_labels"].reshape(-1)
            if images.dtype != np.uint8 or images.ndim not in (3, 4) or len(images) != len(labels):
                raise DownloadCheckError(f"{given}: {s}_images should be N x H x W uint8 with one label each; it is "
                                         f"{images.dtype} {images.shape} with {len(labels)} labels")
            if task is not None and len(labels) and not 0 <= labels.min() <= labels.max() < task.num_classes:
                raise DownloadCheckError(f"{given}: {s}_labels run from {labels.min()} to {labels.max()}; task "
                                         f"{task.name} has labels 0..{task.num_classes - 1}")


def check_archive(path: Path, given: str, source: DataSource, task: TaskSpec | None) -> None:
    """A tar of <class>/<image> files: the task's classes and no other, a manifest where needed, decodable images."""
    try:
        folders, manifest = archive_folders(path)
    except (tarfile.TarError, OSError, EOFError):  # tarfile's own message lists every compression it tried
        raise DownloadCheckError(f"{given} is not a .tar.gz archive, a zip or a folder of images "
                                 f"(the {source.filename} it should replace is one)") from None
    if not folders:
        raise DownloadCheckError(f"{given} holds no images in <class>/<image> folders")
    if source.manifest and not manifest:
        raise DownloadCheckError(f"{given} has no {source.manifest} (the {source.name} archive names each file's dataset there)")
    for folder, sample in folders.items():
        try:
            read_image(sample)
        except ImageReadError as err:
            raise DownloadCheckError(f"{given}: an image in its {folder}/ folder cannot be read ({err})") from None
    if task is None:
        return
    expected = {c.lower(): c for c in task.classes}
    unknown = sorted(f for f in folders if f.lower() not in expected)
    missing = [c for low, c in expected.items() if low not in {f.lower() for f in folders}]
    if unknown or missing:
        raise DownloadCheckError(
            f"{given} is not the {task.name} dataset: its images sit in folders "
            f"{', '.join(sorted(folders))}; the {task.name} task needs one folder per class: {', '.join(task.classes)}"
            + (f" (no images of {', '.join(missing)})" if missing else ""))


def archive_folders(path: Path) -> tuple[dict[str, bytes], bool]:
    """({class folder: the bytes of its first image}, whether a manifest is there) of a tar, in one pass."""
    folders: dict[str, bytes] = {}
    manifest = False
    with tarfile.open(path) as tar:
        for member in tar:
            if not member.isfile() or not is_entry(member.name):
                continue
            p = PurePosixPath(member.name)
            if p.name == MANIFEST:
                manifest = True
            elif len(p.parts) >= 2 and p.parts[-2] not in folders:
                folders[p.parts[-2]] = tar.extractfile(member).read()
    return folders, manifest


def drop_nested_copies(names: Sequence[str]) -> list[str]:
    """The names without those of a folder's copy nested inside itself (`a/a/x` when `a/x` is there too)."""
    present = set(names)

    def copy(name: str) -> bool:
        parts = PurePosixPath(name).parts
        return any(parts[i] == parts[i + 1] and "/".join(parts[:i] + parts[i + 1:]) in present
                   for i in range(len(parts) - 1))

    return [n for n in names if not copy(n)]
