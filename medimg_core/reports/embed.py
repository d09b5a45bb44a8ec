"""Embedding map: a classifier's penultimate features for a whole dataset, projected to 2-D.

`embedding_for(clf, ds)` runs the model over every image (predictions, confidence, OOD flag and
features), projects the features with PCA and t-SNE (openTSNE), and caches the result on disk,
keyed by the fingerprints of the checkpoint file and of the dataset: a second call with the same
model and data is read back in well under a second; another model or dataset gets its own file.

The dataset may be a task's whole pool (`sources.task_pool`): its own images plus supplements and
foreign images (label K = 'other'); every point keeps the name of the dataset it came from, so the
map can show other hospitals' scans beside the task's own.

The same arrays, numbers only (float16 coordinates, int8 labels and predictions, float16
confidence, OOD flags, the model's split, each point's dataset as an index into a list of names,
and the file names; no pixels), are shipped in `assets/embeddings/<task>.npz`, so the map draws
on a fresh install before any download.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.datasets import Dataset, cache_dir, fingerprint
from .explore import SPLIT_NAMES, model_split, own_name, task_origin
from ..io.shipped import assets_root
from ..data.sources import own_origin
from ..tasks import OTHER

EMBED_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1: one dataset, no 'other' points (read with every point of the task's own)
METHODS = ("pca", "tsne")
ASSETS_DIR = assets_root() / "embeddings"  # the checkout's assets/embeddings, or the installed package's
Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)


@dataclass
class Embedding:
    """Per-image predictions and 2-D coordinates of one model on one dataset (or a task's pool).

    coords: method -> N x 2 float32; labels: N int64 (0..K-1 the task's classes, K = 'other', an image of
    another kind); preds: N int64 class named by the model (0..K-1); confidence: N float32 (probability of
    the predicted class, calibrated); ood: N bool (flagged: not recognised); split: N strings ("train",
    "val", "test", "unused"); files: N source names, in dataset order; origin: N dataset names (`own` for
    the task's own images); own_fingerprint: the fingerprint of the own images alone (the dataset the
    explorer loads), equal to data_fingerprint when the map holds nothing else.
    """

    task: str
    classes: tuple[str, ...]
    coords: dict[str, np.ndarray]
    labels: np.ndarray
    preds: np.ndarray
    confidence: np.ndarray
    ood: np.ndarray
    split: np.ndarray
    files: list[str]
    model_fingerprint: str
    data_fingerprint: str
    meta: dict = field(default_factory=dict)  # timings and settings, for the record
    features: np.ndarray | None = None  # N x D float16, only in the disk cache
    loaded_from: str = "computed"  # "computed", "cache" or "shipped" (not saved)
    origin: np.ndarray | None = None  # N dataset names; None: every point is of `own`
    own: str = ""  # the name of the task's own dataset
    own_fingerprint: str = ""  # "": same as data_fingerprint

    def __post_init__(self) -> None:
        if self.origin is None:
            self.origin = np.full(len(self.labels), self.own)
        self.own_fingerprint = self.own_fingerprint or self.data_fingerprint

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def names(self) -> tuple[str, ...]:
        """Label names: the task's classes, then 'other' (label K)."""
        return (*self.classes, OTHER)

    @property
    def foreign(self) -> np.ndarray:
        """N booleans: images of another kind (label 'other')."""
        return self.labels == len(self.classes)

    @property
    def mine(self) -> np.ndarray:
        """N booleans: images of the task's own dataset."""
        return self.origin == self.own

    @property
    def answers(self) -> np.ndarray:
        """N label indices: the class the model names, or K ('other') for a foreign image it flags."""
        return np.where(self.foreign & self.ood, len(self.classes), self.preds)

    @property
    def wrong(self) -> np.ndarray:
        """N booleans: an image of the task's kinds named wrongly, or a foreign image not flagged."""
        return self.answers != self.labels


def file_fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    """SHA-256 (first 16 hex digits) of a file's bytes: the identity of a checkpoint."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()[:16]


def model_fingerprint(clf) -> str:
    """Fingerprint of a Classifier's checkpoint file (the file's bytes)."""
    if clf.path is None:
        raise ValueError("the classifier has no checkpoint file to fingerprint; save it first")
    return file_fingerprint(clf.path)


def run_model(clf, images: np.ndarray, batch_size: int = 1024,
              progress: Progress | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Predictions and penultimate features of preprocessed images, in chunks.

    Args:
        clf: a Classifier; images: N x S x S uint8 at the model's input size.
    Returns:
        (preds: N int64, confidence: N float32, ood: N bool, features: N x D float32)
    """
    preds, conf, ood, feats = [], [], [], []
    for start in range(0, len(images), batch_size):
        out = clf.infer(torch.from_numpy(np.array(images[start : start + batch_size])))  # copy: may be read-only
        p = clf.label_indices(out.probs)
        preds.append(p.astype(np.int64))
        conf.append(out.probs[np.arange(len(p)), p].astype(np.float32))
        ood.append(out.scores > clf.ood.threshold)
        feats.append(out.features.astype(np.float32))
        if progress:
            done = min(start + batch_size, len(images))
            progress(done / len(images), f"Running the model: {done:,} / {len(images):,} images")
    return np.concatenate(preds), np.concatenate(conf), np.concatenate(ood), np.concatenate(feats)


def project_pca(features: np.ndarray, dims: int = 2, seed: int = 0) -> np.ndarray:
    """Principal components of N x D features -> N x dims float32 (fewer when N or D is smaller)."""
    from sklearn.decomposition import PCA

    dims = max(1, min(dims, features.shape[0], features.shape[1]))
    return PCA(dims, random_state=seed).fit_transform(features.astype(np.float32)).astype(np.float32)


def project_tsne(features: np.ndarray, seed: int = 0, n_jobs: int = 2, perplexity: float = 30.0,
                 progress: Progress | None = None) -> np.ndarray:
    """t-SNE (openTSNE, FFT-accelerated) of N x D features -> N x 2 float32.

    The features are reduced to 50 principal components first; perplexity shrinks for tiny sets;
    sets under 10,000 points run on one thread with Barnes-Hut below 2,000 points.
    """
    from openTSNE import TSNE

    n = len(features)
    if n < 5:
        return np.zeros((n, 2), np.float32)
    x = project_pca(features, 50, seed) if features.shape[1] > 50 else features.astype(np.float32)
    perplexity = min(perplexity, (n - 1) / 3)
    every, total = 25, 250 + 500
    calls = [0]

    def callback(iteration: int, error: float, embedding: np.ndarray) -> bool:
        calls[0] += 1
        if progress:
            progress(min(1.0, calls[0] * every / total), f"t-SNE: iteration {min(calls[0] * every, total)} / {total}")
        return False

    if progress:
        progress(0.0, f"t-SNE: nearest neighbours of {n:,} points")
    # threads cost more than they bring on small sets (each iteration starts them anew)
    tsne = TSNE(perplexity=perplexity, n_jobs=n_jobs if n >= 10_000 else 1, random_state=seed, initialization="pca",
                negative_gradient_method="fft" if n > 2000 else "bh", callbacks=callback,
                callbacks_every_iters=every, verbose=False)
    return np.asarray(tsne.fit(x), dtype=np.float32)


def compute_embedding(clf, ds: Dataset, methods: Sequence[str] = METHODS, seed: int = 0, n_jobs: int = 2,
                      progress: Progress | None = None, model_fp: str | None = None) -> Embedding:
    """Run the model over a dataset and project its features (see module docstring).

    Args:
        clf: a Classifier saved to a file (its bytes are the model fingerprint).
        ds: the dataset (N images); methods: projections to compute, from METHODS.
        progress: called with (fraction of the whole job, message).
        model_fp: the checkpoint's fingerprint, if already known (taken before the long run, so a
            file replaced meanwhile is not mistaken for the one that was run).
    Returns:
        an Embedding with full-precision features (N x D float16) attached.
    """
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown projection {sorted(unknown)}; choose from {', '.join(METHODS)}")
    model_fp = model_fp or model_fingerprint(clf)
    # rough shares of the wall time, so one bar moves steadily through the stages
    share = {"model": 0.25 if "tsne" in methods else 0.9, "tsne": 0.7}
    report = progress or (lambda fraction, message: None)
    meta = {"n": len(ds), "methods": list(methods), "seed": seed, "n_jobs": n_jobs, "torch_threads": torch.get_num_threads(),
            "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "model_file": Path(clf.path).name, "seconds": {}}
    t0 = time.perf_counter()
    preds, conf, ood, feats = run_model(clf, ds.images, progress=lambda f, m: report(share["model"] * f, m))
    meta["seconds"]["model"] = round(time.perf_counter() - t0, 2)
    meta["feature_dim"] = int(feats.shape[1])
    coords = {}
    if "pca" in methods:
        t0 = time.perf_counter()
        report(share["model"], "PCA")
        coords["pca"] = project_pca(feats, 2, seed)
        meta["seconds"]["pca"] = round(time.perf_counter() - t0, 2)
    if "tsne" in methods:
        t0 = time.perf_counter()
        base = share["model"] + 0.05
        coords["tsne"] = project_tsne(feats, seed, n_jobs, progress=lambda f, m: report(base + share["tsne"] * f, m))
        meta["seconds"]["tsne"] = round(time.perf_counter() - t0, 2)
    report(1.0, "Done")
    named = own_name(ds, own_origin(clf.spec))  # what the own images are called in ds ("" in an unnamed set)
    own = named or own_origin(clf.spec)
    origin = np.where(ds.origin == named, own, ds.origin.astype(str))
    return Embedding(clf.spec.name, tuple(clf.classes), coords, ds.labels.astype(np.int64), preds, conf, ood,
                     model_split(ds, clf.card, named), list(ds.files), model_fp, ds.fingerprint, meta,
                     features=feats.astype(np.float16), origin=origin, own=own,
                     own_fingerprint=own_fingerprint(ds, origin == own))


def own_fingerprint(ds: Dataset, mine: np.ndarray) -> str:
    """Fingerprint of the own images of a pool in their order (= the own dataset's, as load_dataset reads it)."""
    if mine.all():
        return ds.fingerprint
    idx = np.flatnonzero(mine)
    contiguous = len(idx) and idx[-1] - idx[0] == len(idx) - 1
    images = ds.images[idx[0] : idx[-1] + 1] if contiguous else ds.images[idx]  # a slice: no copy of the pixels
    return fingerprint(images, ds.labels[idx])


def data_key(ds: Dataset) -> str:
    """What a cached map of ds is keyed by: its fingerprint, plus its images' dataset names when it has several."""
    names = np.unique(ds.origin)
    if len(names) <= 1:
        return ds.fingerprint
    codes = np.searchsorted(names, ds.origin).astype(np.int32)
    digest = hashlib.sha1("\n".join(names.tolist()).encode() + codes.tobytes()).hexdigest()[:8]
    return f"{ds.fingerprint}+{digest}"


def cache_path(task: str, model_fp: str, data_fp: str, methods: Sequence[str] = METHODS) -> Path:
    """Disk-cache file of one (model, dataset, projections) combination (data_fp: a fingerprint or `data_key`)."""
    safe_data = hashlib.sha1(data_fp.encode()).hexdigest()[:16]  # subset fingerprints contain brackets
    return cache_dir() / "embeddings" / f"{task}-{model_fp}-{safe_data}-{'+'.join(sorted(methods))}-v{EMBED_VERSION}.npz"


def embedding_for(clf, ds: Dataset, methods: Sequence[str] = METHODS, progress: Progress | None = None,
                  use_cache: bool = True, **kwargs) -> Embedding:
    """The model's embedding of a dataset: from the disk cache, or computed once and cached.

    Args:
        clf, ds, methods, progress: as in compute_embedding (kwargs go there too).
        use_cache: False recomputes and overwrites the cached file.
    Returns:
        an Embedding whose `loaded_from` is "cache" or "computed".
    """
    model_fp = model_fingerprint(clf)
    path = cache_path(clf.spec.name, model_fp, data_key(ds), methods)
    if use_cache and path.is_file():
        return load_embedding(path, loaded_from="cache")
    emb = compute_embedding(clf, ds, methods, progress=progress, model_fp=model_fp, **kwargs)
    save_embedding(emb, path, with_features=True)
    return emb


def save_embedding(emb: Embedding, path: str | Path, with_features: bool = False) -> Path:
    """Write an embedding as a compressed npz, numbers and names only (atomic).

    Each point's dataset is stored as an index into `origin_names` (int8, or int16 past 127 names).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"coords_{m}": c.astype(np.float16) for m, c in emb.coords.items()}
    small = np.int8 if len(emb.names) < 128 else np.int16
    origin_names, origin_codes = np.unique(emb.origin.astype(str), return_inverse=True)
    arrays.update(
        labels=emb.labels.astype(small), preds=emb.preds.astype(small),
        confidence=emb.confidence.astype(np.float16), ood=np.asarray(emb.ood, bool),
        split=np.array([SPLIT_NAMES.index(s) for s in emb.split], np.int8),
        files=text_bytes(emb.files), origin_names=text_bytes(origin_names.tolist()),
        origin=origin_codes.astype(np.int8 if len(origin_names) < 128 else np.int16),
        info=np.array(json.dumps({"task": emb.task, "classes": list(emb.classes), "model_fingerprint": emb.model_fingerprint,
                                  "data_fingerprint": emb.data_fingerprint, "own": emb.own,
                                  "own_fingerprint": emb.own_fingerprint, "version": EMBED_VERSION, "meta": emb.meta})),
    )
    if with_features and emb.features is not None:
        arrays["features"] = emb.features.astype(np.float16)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def text_bytes(lines: Sequence[str]) -> np.ndarray:
    """Names as one uint8 array of newline-separated UTF-8 (no pickled objects in the file)."""
    return np.frombuffer("\n".join(lines).encode(), np.uint8)


def text_lines(array: np.ndarray) -> list[str]:
    """The names written by text_bytes."""
    text = array.tobytes().decode()
    return text.split("\n") if text else []


def read_info(path: str | Path) -> dict:
    """The description of a saved embedding (task, classes, fingerprints, version, meta), without its arrays."""
    with np.load(path, allow_pickle=False) as z:
        return json.loads(str(z["info"]))


def load_embedding(path: str | Path, loaded_from: str = "computed", with_features: bool = False) -> Embedding:
    """Read an embedding written by save_embedding (coordinates come back as float32).

    A version-1 file (one dataset, written before points carried their dataset) reads with every
    point of the task's own dataset.
    """
    with np.load(path, allow_pickle=False) as z:
        info = json.loads(str(z["info"]))
        if info.get("version") not in READABLE_VERSIONS:
            raise ValueError(f"{path} is an embedding of format {info.get('version')}, not {EMBED_VERSION}.")
        labels = z["labels"].astype(np.int64)
        own = info.get("own") or task_origin(info["task"]) or info["task"]
        origin = np.asarray(text_lines(z["origin_names"]))[z["origin"]] if "origin" in z.files else np.full(len(labels), own)
        return Embedding(
            task=info["task"], classes=tuple(info["classes"]),
            coords={k.removeprefix("coords_"): z[k].astype(np.float32) for k in z.files if k.startswith("coords_")},
            labels=labels, preds=z["preds"].astype(np.int64),
            confidence=z["confidence"].astype(np.float32), ood=z["ood"].astype(bool),
            split=np.asarray(SPLIT_NAMES, dtype="<U6")[z["split"]], files=text_lines(z["files"]),
            model_fingerprint=info["model_fingerprint"], data_fingerprint=info["data_fingerprint"], meta=info.get("meta", {}),
            features=z["features"] if with_features and "features" in z.files else None, loaded_from=loaded_from,
            origin=origin, own=own, own_fingerprint=info.get("own_fingerprint", ""),
        )


def shipped_embedding_path(task: str) -> Path:
    """Where a task's precomputed embedding is shipped: $MEDIMG_EMBEDDINGS_DIR or assets/embeddings, /<task>.npz."""
    return Path(os.environ.get("MEDIMG_EMBEDDINGS_DIR") or ASSETS_DIR) / f"{task}.npz"


def find_embedding(task: str, model_fp: str, data_fp: str | None = None,
                   methods: Sequence[str] = METHODS) -> Embedding | None:
    """An embedding that needs no computing: the shipped file, else the disk cache, else None.

    Only maps made with the same model count, so a retrained model never shows a stale map. With a
    dataset fingerprint given, a map counts when it was made of that dataset, or of a pool whose
    own images are that dataset (the shipped pool map of the task). A cached pool map comes before
    a cached map of the own dataset alone.
    """
    shipped = shipped_embedding_path(task)
    if shipped.is_file() and fits(read_info(shipped), model_fp, data_fp):
        emb = load_embedding(shipped, loaded_from="shipped")
        if set(methods) <= set(emb.coords):
            return emb
    if data_fp is None:
        return None
    pool = cached_pool(task, model_fp, data_fp, methods)
    if pool is not None:
        return load_embedding(pool, loaded_from="cache")
    cached = cache_path(task, model_fp, data_fp, methods)
    return load_embedding(cached, loaded_from="cache") if cached.is_file() else None


def fits(info: dict, model_fp: str, data_fp: str | None) -> bool:
    """Whether a saved map (its info) is of this model, and of this dataset or of a pool around it."""
    if info.get("version") not in READABLE_VERSIONS or info.get("model_fingerprint") != model_fp:
        return False
    return data_fp is None or data_fp in (info.get("data_fingerprint"), info.get("own_fingerprint"))


def cached_pool(task: str, model_fp: str, own_fp: str, methods: Sequence[str] = METHODS) -> Path | None:
    """A disk-cached map of this model on a pool whose own images have fingerprint own_fp, if any."""
    pattern = f"{task}-{model_fp}-*-{'+'.join(sorted(methods))}-v{EMBED_VERSION}.npz"
    for path in sorted((cache_dir() / "embeddings").glob(pattern)):
        info = read_info(path)
        if info.get("own_fingerprint") == own_fp != info.get("data_fingerprint"):
            return path
    return None


def align(files: Sequence[str], dataset_files: Sequence[str]) -> np.ndarray:
    """Dataset row of each embedding file name (-1 where the dataset lacks it), N int64."""
    if list(files) == list(dataset_files):
        return np.arange(len(files))
    where = {name: i for i, name in enumerate(dataset_files)}
    return np.array([where.get(name, -1) for name in files], np.int64)
