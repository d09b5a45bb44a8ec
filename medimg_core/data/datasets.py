"""Datasets: download with progress and checksum, read archives/folders/npz, cache, split.

A dataset is held in memory as already-preprocessed uint8 images (N x S x S, the model's
input size), produced by the same `read_image` + `to_model_input` that prediction uses.
Decoded arrays are cached on disk, keyed by the source file and the input size.
"""
from __future__ import annotations

import hashlib
import io
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io.folders import FolderError, Progress, SourceImages, iter_entries, read_folder_images
from ..io.imaging import to_model_input, to_uint8
from ..tasks import OTHER, DataSource, TaskSpec

CACHE_VERSION = 2


class DataError(Exception):
    """A dataset that cannot be found, fetched or read; the message says what to do."""


@dataclass
class Dataset:
    """Preprocessed images with integer labels.

    images: N x S x S uint8 (model input size); labels: N int64 indices into classes, where
    len(classes) marks a foreign image (of another kind: the 'other' label); files: N source names;
    split: N strings ("train", "val", "test" or "" when unsplit); origin: N names of the dataset each
    image came from (one name for a single-source set), so validation can hold out whole datasets.
    """

    images: np.ndarray
    labels: np.ndarray
    files: list[str]
    split: np.ndarray
    classes: tuple[str, ...]
    fingerprint: str
    origin: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.origin is None:
            self.origin = np.full(len(self.labels), "", dtype="<U1")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def foreign(self) -> np.ndarray:
        """N booleans: images of another kind (label 'other')."""
        return self.labels == len(self.classes)

    def subset(self, index: np.ndarray) -> "Dataset":
        """The images at `index`, as a new Dataset."""
        index = np.asarray(index, dtype=np.int64)
        images, labels = self.images[index], self.labels[index]
        return Dataset(images, labels, [self.files[i] for i in index], self.split[index], self.classes,
                       fingerprint(images, labels), self.origin[index])


def data_dir() -> Path:
    """Folder holding the downloaded archives: $MEDIMG_DATA_DIR or ~/.cache/medimg."""
    return Path(os.environ.get("MEDIMG_DATA_DIR") or Path.home() / ".cache" / "medimg").expanduser()


def cache_dir() -> Path:
    """Writable folder for derived data: $MEDIMG_CACHE_DIR or ~/.cache/medimg/derived."""
    return Path(os.environ.get("MEDIMG_CACHE_DIR") or Path.home() / ".cache" / "medimg" / "derived").expanduser()


def source_of(what: TaskSpec | DataSource) -> DataSource:
    """The data source of a task (its own dataset), or the source itself."""
    return what.source if isinstance(what, TaskSpec) else what


def source_name(what: TaskSpec | DataSource) -> str:
    """The name `download` takes for it: the task's name, or the source's."""
    return what.name if isinstance(what, TaskSpec) else (what.name or what.filename)


def dataset_path(what: TaskSpec | DataSource, folder: Path | None = None) -> Path | None:
    """The downloaded archive of a task (or of a data source), or None when it is not there yet."""
    path = (folder or data_dir()) / source_of(what).filename
    return path if path.is_file() else None


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(
    spec: TaskSpec | DataSource,
    source: str | Path | None = None,
    folder: Path | None = None,
    md5: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Fetch a task's (or a data source's) archive into the data folder and return its path.

    Args:
        spec: the task whose dataset to fetch, or a DataSource (e.g. the scan-kinds supplement).
        source: None for the public URL; a URL; or a local archive, npz or folder of the same data.
        md5: checksum to enforce; defaults to the official one for the public URL. A local copy
            is checked only when md5 is given (the development copies differ from the public files).
    Raises:
        DataError: no network, bad checksum, missing file, a source that needs manual download, or a file that
            is not the dataset (archive_check.check_download); the data already there is then left as it was.
    """
    folder = folder or data_dir()
    data_source, name = source_of(spec), source_name(spec)
    dest = folder / data_source.filename
    src = str(source) if source is not None else None
    if src is None:
        if not data_source.url:
            raise DataError(data_source.how_to_get or f"{name} has no public download; use --from PATH.")
        src, md5 = data_source.url, md5 or data_source.md5
    folder.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        if src.startswith(("http://", "https://")):
            _fetch_url(src, part, progress, data_source, name)
        else:
            _copy_local(Path(src).expanduser(), part, data_source, progress)
        if md5 and (actual := md5_file(part)) != md5:
            raise DataError(f"Checksum mismatch for {data_source.filename}: expected md5 {md5}, got {actual}. The file was not kept.")
        check_new_data(part, data_source, spec, src, dest)
        os.replace(part, dest)  # atomic: a half-written file is never taken for complete
    finally:
        part.unlink(missing_ok=True)
    if not src.startswith(("http://", "https://")):
        copy_parts(data_source, Path(src).expanduser(), folder)
    return dest


def copy_parts(data_source: DataSource, src: Path, folder: Path) -> None:
    """Copy the source's further archives (DataSource.parts) that lie beside a local copy into the data folder."""
    for name in data_source.parts:
        sibling, dest = src.parent / name, folder / name
        if sibling.is_file() and sibling.resolve() != dest.resolve():
            part = dest.with_name(dest.name + ".part")
            shutil.copyfile(sibling, part)
            os.replace(part, dest)


def check_new_data(part: Path, data_source: DataSource, spec: TaskSpec | DataSource, given: str, dest: Path) -> None:
    """Refuse a new file that is not the source's dataset (archive_check.check_download); the data there stays."""
    from .archive_check import DownloadCheckError, check_download

    try:
        check_download(part, data_source, spec if isinstance(spec, TaskSpec) else None, given)
    except DownloadCheckError as err:
        kept = f"{dest} was not changed" if dest.is_file() else "nothing was written"
        raise DataError(f"{err}. {kept}.") from None


def _fetch_url(url: str, part: Path, progress: Progress | None, data_source: DataSource, name: str) -> None:
    """Stream a URL into `part`, reporting bytes as they arrive."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            done = 0
            while block := response.read(1 << 20):
                out.write(block)
                done += len(block)
                if progress:
                    progress(done, total)
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as err:
        raise DataError(
            f"Could not download {url} ({getattr(err, 'reason', err)}). Without network access, get "
            f"{data_source.filename} on another machine and run: medimg download {name} --from PATH"
        ) from err


def _copy_local(src: Path, part: Path, data_source: DataSource, progress: Progress | None) -> None:
    """Copy a local archive, or pack a local folder or zip into the source's archive format."""
    if not src.exists():
        raise DataError(f"There is nothing at {src}.")
    wants_tar = data_source.filename.endswith((".tar.gz", ".tgz", ".tar"))
    if src.is_dir() or (wants_tar and src.suffix.lower() == ".zip"):
        _pack_as_tar(src, part, progress)
        return
    total, done = src.stat().st_size, 0
    with open(src, "rb") as f, open(part, "wb") as out:
        while block := f.read(1 << 20):
            out.write(block)
            done += len(block)
            if progress:
                progress(done, total)


def _pack_as_tar(src: Path, part: Path, progress: Progress | None) -> None:
    """Write the images of a folder or zip into a gzip tar with the same relative paths (one copy of a folder nested
    in itself, as in Kaggle's chest X-ray zip; no __MACOSX or hidden files, see folders.is_entry)."""
    from .archive_check import drop_nested_copies

    try:  # two passes: the names first (a zip's readers only work while it is open, so nothing is held in memory)
        keep = set(drop_nested_copies([name for name, _ in iter_entries(src)]))
        done = 0
        with tarfile.open(part, "w:gz") as tar:
            for name, read in iter_entries(src):
                if name not in keep:
                    continue
                done += 1
                data = read()
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
                if progress:
                    progress(done, len(keep))
    except (FolderError, zipfile.BadZipFile) as err:
        raise DataError(f"{src} cannot be read as a folder or zip of images ({err})") from None


def load_dataset(
    spec: TaskSpec, path: str | Path | None = None, split: str | None = None, progress: Progress | None = None,
    other: bool = False,
) -> Dataset:
    """Read a task's data (archive, folder of <class>/<image>, or MedMNIST npz), via the disk cache.

    Args:
        path: the data; default: the task's archive in the data folder.
        split: for npz files, "train", "val" or "test" (default: every split in the file).
        other: accept an `other/` folder of images of other kinds (label len(classes)), as evaluate does.
    Raises:
        DataError: missing data, a class folder the task does not know, or unreadable files.
    """
    path = Path(path).expanduser() if path else dataset_path(spec)
    if path is None:
        raise DataError(
            f"The {spec.name} dataset is not downloaded. Run: medimg download {spec.name}"
            + (" --from PATH" if not spec.source.url else "")
        )
    raw = read_source(path, spec.image_size, spec.source.name or spec.name, spec.source.image_kind, split, progress,
                      spec.native_size, spec.fit)
    return labelled(spec, raw, path, other)


def read_source(path: Path, size: int, origin: str, image_kind: str = "", split: str | None = None,
                progress: Progress | None = None, native: int | None = None, fit: str = "letterbox") -> SourceImages:
    """Every image of an archive, folder or npz at size x size (through `native` resolution, if given; squashed
    or letterboxed as `fit` says), with class names, datasets, kinds and official splits (cached)."""
    if not path.exists():
        raise DataError(f"There is no dataset at {path}.")
    cached = _cache_file(path, size, split, origin, image_kind, native, fit)
    if cached and cached.is_file():
        return _read_cache(cached)
    try:
        if path.suffix.lower() == ".npz":
            raw = _read_npz(path, size, split, origin, image_kind, native, fit)
        else:
            raw = read_folder_images(path, size, origin, image_kind, progress, native, fit)
    except FolderError as err:
        raise DataError(str(err)) from None
    if raw.broken:
        n = len(raw.broken)
        raise DataError(f"{n} image{'s' if n > 1 else ''} in {path} cannot be read, e.g. {raw.broken[0]}")
    if cached:
        _write_cache(cached, raw)
    return raw


def labelled(spec: TaskSpec, raw: SourceImages, path: Path, other: bool = False) -> Dataset:
    """The task's Dataset from a source's images: class names mapped to the task's label indices."""
    if path.suffix.lower() == ".npz":  # the labels are already numbers
        labels = raw.folders.astype(np.int64)
        if labels.min() < 0 or labels.max() >= spec.num_classes:
            raise DataError(f"{path.name} has labels outside 0..{spec.num_classes - 1} for task {spec.name}.")
    else:
        index = {c.lower(): i for i, c in enumerate(spec.classes)} | ({OTHER: spec.num_classes} if other else {})
        labels = np.array([index.get(f.lower(), -1) for f in raw.folders], np.int64)
        unknown = sorted({f or "(top level)" for f, lab in zip(raw.folders, labels) if lab < 0})
        if unknown:
            expected = ", ".join(spec.classes) + (f" (and {OTHER} for images of other kinds)" if other else "")
            raise DataError(f"{path} has image folders that are not classes of task {spec.name}: {', '.join(unknown)}. "
                            f"Expected folders named: {expected}.")
    if not len(labels):
        raise DataError(f"No images found in {path} (expected <class>/<image> with classes {', '.join(spec.classes)}).")
    return Dataset(raw.images, labels, list(raw.files), raw.split, spec.classes, fingerprint(raw.images, labels),
                   raw.origins)


def _cache_file(path: Path, size: int, split: str | None, origin: str, image_kind: str,
                native: int | None, fit: str = "letterbox") -> Path | None:
    """Cache location keyed by the source's identity and the preprocessing (None for folders)."""
    if path.is_dir():
        return None
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{size}|{native}|{split}|{origin}|{image_kind}|{CACHE_VERSION}"
    key += "" if fit == "letterbox" else f"|{fit}"  # letterboxed caches keep their earlier keys
    return cache_dir() / "datasets" / f"{path.name.split('.')[0]}-{size}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _read_cache(file: Path) -> SourceImages:
    with np.load(file, allow_pickle=False) as z:
        return SourceImages(z["images"], z["folders"], z["files"].tolist(), z["origins"], z["kinds"], z["split"], [])


def _write_cache(file: Path, raw: SourceImages) -> None:
    """Write atomically so a crash never leaves a half-written cache behind."""
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, images=raw.images, folders=raw.folders, files=np.array(raw.files), origins=raw.origins,
             kinds=raw.kinds, split=raw.split)
    os.replace(tmp, file)


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """Content hash of a dataset: same pixels and labels give the same fingerprint."""
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _read_npz(path: Path, size: int, split: str | None, origin: str, image_kind: str,
              native: int | None = None, fit: str = "letterbox") -> SourceImages:
    """Read a MedMNIST npz (`<split>_images`, `<split>_labels`), resized to size x size."""
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is not a readable .npz file ({err}).") from err
    with z:
        splits = [s for s in ("train", "val", "test") if f"{s}_images" in z.files]
        if split is not None and split not in splits:
            raise DataError(f"{path.name} has no '{split}' split; it has: {', '.join(splits) or 'none'}.")
        chosen = [split] if split else splits
        if not chosen:
            raise DataError(f"{path.name} is not a MedMNIST file (no train_images/val_images/test_images arrays).")
        images, labels, files, names = [], [], [], []
        for s in chosen:
            raw, lab = z[f"{s}_images"], z[f"{s}_labels"].reshape(-1).astype(np.int64)
            images.append(_resize_stack(raw, size, native, fit))
            labels.append(lab)
            files += [f"{path.name}:{s}/{i}" for i in range(len(lab))]
            names += [s] * len(lab)
    labs = np.concatenate(labels)
    n = len(labs)
    return SourceImages(np.concatenate(images), labs.astype(str), files, np.full(n, origin), np.full(n, image_kind or ""),
                        np.array(names, dtype="<U5"), [])


def default_npz_split(path: Path) -> str:
    """The split to evaluate a MedMNIST npz on: "test" when it has one, else "val"."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "test" if "test_images" in z.files else "val"
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is not a readable .npz file ({err}).") from err


def _resize_stack(raw: np.ndarray, size: int, native: int | None = None, fit: str = "letterbox") -> np.ndarray:
    """N x H x W (or N x H x W x 3) uint8 -> N x size x size uint8 through the shared preprocessing."""
    if raw.ndim == 4:
        raw = (raw.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
    if raw.shape[1:] == (size, size):
        return raw.astype(np.uint8)
    return np.stack([to_uint8(to_model_input(im.astype(np.float32) / 255.0, size, native, fit)) for im in raw])
