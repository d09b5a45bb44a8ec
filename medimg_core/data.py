"""Datasets: download with progress and checksum, read archives/folders/npz, cache, split.

A dataset is held in memory as already-preprocessed uint8 images (N x S x S, the model's
input size), produced by the same `read_image` + `to_model_input` that prediction uses.
Decoded arrays are cached on disk, keyed by the source file and the input size.
"""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from .imaging import ImageReadError, read_image, to_model_input, to_uint8
from .tasks import TaskSpec

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".dcm"}
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")
CACHE_VERSION = 1
Progress = Callable[[int, int], None]  # (done, total) in bytes or items; total 0 = unknown


class DataError(Exception):
    """A dataset that cannot be found, fetched or read; the message says what to do."""


@dataclass
class Dataset:
    """Preprocessed images with integer labels.

    images: N x S x S uint8 (model input size); labels: N int64 indices into classes;
    files: N source names; split: N strings ("train", "val", "test" or "" when unsplit).
    """

    images: np.ndarray
    labels: np.ndarray
    files: list[str]
    split: np.ndarray
    classes: tuple[str, ...]
    fingerprint: str

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> "Dataset":
        """The images at `index`, as a new Dataset."""
        index = np.asarray(index)
        images, labels = self.images[index], self.labels[index]
        return Dataset(images, labels, [self.files[i] for i in index], self.split[index], self.classes,
                       fingerprint(images, labels))


def data_dir() -> Path:
    """Folder holding the downloaded archives: $MEDIMG_DATA_DIR or ~/.cache/medimg."""
    return Path(os.environ.get("MEDIMG_DATA_DIR") or Path.home() / ".cache" / "medimg").expanduser()


def cache_dir() -> Path:
    """Writable folder for derived data: $MEDIMG_CACHE_DIR or ~/.cache/medimg/derived."""
    return Path(os.environ.get("MEDIMG_CACHE_DIR") or Path.home() / ".cache" / "medimg" / "derived").expanduser()


def dataset_path(spec: TaskSpec, folder: Path | None = None) -> Path | None:
    """The task's downloaded archive, or None when it is not there yet."""
    path = (folder or data_dir()) / spec.source.filename
    return path if path.is_file() else None


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    """MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(
    spec: TaskSpec,
    source: str | Path | None = None,
    folder: Path | None = None,
    md5: str | None = None,
    progress: Progress | None = None,
) -> Path:
    """Fetch the task's archive into the data folder and return its path.

    Args:
        source: None for the public URL; a URL; or a local archive, npz or folder of the same data.
        md5: checksum to enforce; defaults to the official one for the public URL. A local copy
            is checked only when md5 is given (the development copies differ from the public files).
    Raises:
        DataError: no network, bad checksum, missing file, or a source that needs manual download.
    """
    folder = folder or data_dir()
    dest = folder / spec.source.filename
    src = str(source) if source is not None else None
    if src is None:
        if not spec.source.url:
            raise DataError(spec.source.how_to_get or f"Task {spec.name} has no public download; use --from PATH.")
        src, md5 = spec.source.url, md5 or spec.source.md5
    folder.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        if src.startswith(("http://", "https://")):
            _fetch_url(src, part, progress, spec)
        else:
            _copy_local(Path(src).expanduser(), part, spec, progress)
        if md5 and (actual := md5_file(part)) != md5:
            raise DataError(f"Checksum mismatch for {spec.source.filename}: expected md5 {md5}, got {actual}. The file was not kept.")
        os.replace(part, dest)  # atomic: a half-written file is never taken for complete
    finally:
        part.unlink(missing_ok=True)
    return dest


def _fetch_url(url: str, part: Path, progress: Progress | None, spec: TaskSpec) -> None:
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
            f"{spec.source.filename} on another machine and run: python -m medimg_core download {spec.name} --from PATH"
        ) from err


def _copy_local(src: Path, part: Path, spec: TaskSpec, progress: Progress | None) -> None:
    """Copy a local archive, or pack a local folder or zip into the task's archive format."""
    if not src.exists():
        raise DataError(f"There is nothing at {src}.")
    wants_tar = spec.source.filename.endswith((".tar.gz", ".tgz", ".tar"))
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
    """Write the images of a folder or zip into a gzip tar with the same relative paths."""
    entries = list(_iter_image_files(src))
    with tarfile.open(part, "w:gz") as tar:
        for i, (name, read) in enumerate(entries):
            data = read()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            if progress:
                progress(i + 1, len(entries))


def _iter_image_files(path: Path) -> Iterator[tuple[str, Callable[[], bytes]]]:
    """(relative name, reader) for each image file in a folder, tar or zip, in a stable order."""
    def keep(name: str) -> bool:
        p = PurePosixPath(name)
        return p.suffix.lower() in IMAGE_SUFFIXES and not any(part.startswith((".", "__MACOSX")) for part in p.parts)

    if path.is_dir():
        for f in sorted(path.rglob("*")):
            rel = f.relative_to(path).as_posix()
            if f.is_file() and keep(rel):
                yield rel, f.read_bytes
    elif path.name.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            for name in sorted(n for n in zf.namelist() if not n.endswith("/") and keep(n)):
                yield name, lambda n=name: zf.read(n)
    elif path.name.lower().endswith((".tar.gz", ".tgz", ".tar")):
        with tarfile.open(path) as tar:  # sequential read: fast for .tar.gz
            for member in tar:
                if member.isfile() and keep(member.name):
                    data = tar.extractfile(member).read()
                    yield member.name, lambda d=data: d
    else:
        raise DataError(f"{path} is not a folder or an archive ({', '.join(ARCHIVE_SUFFIXES)}).")


def load_dataset(
    spec: TaskSpec, path: str | Path | None = None, split: str | None = None, progress: Progress | None = None
) -> Dataset:
    """Read a task's data (archive, folder of <class>/<image>, or MedMNIST npz), via the disk cache.

    Args:
        path: the data; default: the task's archive in the data folder.
        split: for npz files, "train", "val" or "test" (default: every split in the file).
    Raises:
        DataError: missing data, a class folder the task does not know, or unreadable files.
    """
    path = Path(path).expanduser() if path else dataset_path(spec)
    if path is None:
        raise DataError(
            f"The {spec.name} dataset is not downloaded. Run: python -m medimg_core download {spec.name}"
            + (" --from PATH" if not spec.source.url else "")
        )
    if not path.exists():
        raise DataError(f"There is no dataset at {path}.")
    cached = _cache_file(spec, path, split)
    if cached and cached.is_file():
        return _read_cache(cached, spec)
    if path.suffix.lower() == ".npz":
        ds = _read_npz(spec, path, split)
    else:
        ds = _read_image_folders(spec, path, progress)
    if cached:
        _write_cache(cached, ds)
    return ds


def _cache_file(spec: TaskSpec, path: Path, split: str | None) -> Path | None:
    """Cache location keyed by the source's identity and the preprocessing (None for folders)."""
    if path.is_dir():
        return None
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{spec.image_size}|{split}|{CACHE_VERSION}"
    return cache_dir() / "datasets" / f"{spec.name}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"


def _read_cache(file: Path, spec: TaskSpec) -> Dataset:
    with np.load(file, allow_pickle=False) as z:
        return Dataset(z["images"], z["labels"], z["files"].tolist(), z["split"], spec.classes, str(z["fingerprint"]))


def _write_cache(file: Path, ds: Dataset) -> None:
    """Write atomically so a crash never leaves a half-written cache behind."""
    file.parent.mkdir(parents=True, exist_ok=True)
    tmp = file.with_name(file.name + f".{os.getpid()}.tmp.npz")
    np.savez(tmp, images=ds.images, labels=ds.labels, files=np.array(ds.files), split=ds.split, fingerprint=ds.fingerprint)
    os.replace(tmp, file)


def fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
    """Content hash of a dataset: same pixels and labels give the same fingerprint."""
    digest = hashlib.sha256(np.ascontiguousarray(images).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest.hexdigest()[:16]


def _class_index(spec: TaskSpec) -> dict[str, int]:
    return {c.lower(): i for i, c in enumerate(spec.classes)}


def _read_image_folders(spec: TaskSpec, path: Path, progress: Progress | None) -> Dataset:
    """Read <...>/<class>/<image> entries; the class is the image's parent folder."""
    index = _class_index(spec)
    images, labels, files, unknown, broken = [], [], [], set(), []
    for name, read in _iter_image_files(path):
        parts = PurePosixPath(name).parts
        label = index.get(parts[-2].lower()) if len(parts) >= 2 else None
        if label is None:
            unknown.add(parts[-2] if len(parts) >= 2 else "(top level)")
            continue
        try:
            images.append(to_uint8(to_model_input(read_image(read()), spec.image_size)))
        except ImageReadError as err:
            broken.append(f"{name}: {err}")
            continue
        labels.append(label)
        files.append(name)
        if progress and len(files) % 500 == 0:
            progress(len(files), 0)
    if unknown:
        raise DataError(
            f"{path} has image folders that are not classes of task {spec.name}: {', '.join(sorted(unknown))}. "
            f"Expected folders named: {', '.join(spec.classes)}."
        )
    if broken:
        raise DataError(f"{len(broken)} images in {path} cannot be read, e.g. {broken[0]}")
    if not files:
        raise DataError(f"No images found in {path} (expected <class>/<image> with classes {', '.join(spec.classes)}).")
    imgs, labs = np.stack(images), np.array(labels, np.int64)
    return Dataset(imgs, labs, files, np.full(len(files), "", dtype="<U5"), spec.classes, fingerprint(imgs, labs))


def _read_npz(spec: TaskSpec, path: Path, split: str | None) -> Dataset:
    """Read a MedMNIST npz (`<split>_images`, `<split>_labels`), resized to the task's input."""
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
            if lab.size and (lab.min() < 0 or lab.max() >= spec.num_classes):
                raise DataError(f"{path.name} has labels outside 0..{spec.num_classes - 1} for task {spec.name}.")
            images.append(_resize_stack(raw, spec.image_size))
            labels.append(lab)
            files += [f"{path.name}:{s}/{i}" for i in range(len(lab))]
            names += [s] * len(lab)
    imgs, labs = np.concatenate(images), np.concatenate(labels)
    return Dataset(imgs, labs, files, np.array(names, dtype="<U5"), spec.classes, fingerprint(imgs, labs))


def default_npz_split(path: Path) -> str:
    """The split to evaluate a MedMNIST npz on: "test" when it has one, else "val"."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return "test" if "test_images" in z.files else "val"
    except (OSError, ValueError) as err:
        raise DataError(f"{path} is not a readable .npz file ({err}).") from err


def _resize_stack(raw: np.ndarray, size: int) -> np.ndarray:
    """N x H x W (or N x H x W x 3) uint8 -> N x size x size uint8 through the shared preprocessing."""
    if raw.ndim == 4:
        raw = (raw.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)).round().astype(np.uint8)
    if raw.shape[1:] == (size, size):
        return raw.astype(np.uint8)
    return np.stack([to_uint8(to_model_input(im.astype(np.float32) / 255.0, size)) for im in raw])


def split_train_val(ds: Dataset, val_fraction: float = 0.1, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Indices of a stratified train/validation split that keeps exact duplicates on one side.

    A dataset that carries an official split ("train"/"val") uses it as given.
    """
    if {"train", "val"} <= set(ds.split.tolist()):
        return np.flatnonzero(ds.split == "train"), np.flatnonzero(ds.split == "val")
    groups = duplicate_groups(ds.images)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in range(len(ds.classes)):
        ids = np.unique(groups[ds.labels == c])
        rng.shuffle(ids)
        n_val = int(round(len(ids) * val_fraction))
        val_groups = set(ids[:n_val].tolist())
        members = np.flatnonzero(ds.labels == c)
        in_val = np.array([g in val_groups for g in groups[members]], dtype=bool)
        val.append(members[in_val])
        train.append(members[~in_val])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def duplicate_groups(images: np.ndarray) -> np.ndarray:
    """Group id per image; images with identical pixels share one id."""
    seen: dict[bytes, int] = {}
    return np.array([seen.setdefault(hashlib.md5(im.tobytes()).digest(), len(seen)) for im in images], np.int64)


def stratified_sample(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A fixed, class-balanced sample of about n indices (sorted)."""
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    per = max(1, n // len(classes))
    picks = [rng.choice(np.flatnonzero(labels == c), min(per, int((labels == c).sum())), replace=False) for c in classes]
    return np.sort(np.concatenate(picks))
