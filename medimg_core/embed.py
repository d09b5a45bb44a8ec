"""Embedding map: a classifier's penultimate features for a whole dataset, projected to 2-D.

`embedding_for(clf, ds)` runs the model over every image (predictions, confidence, OOD flag and
features), projects the features with PCA and t-SNE (openTSNE), and caches the result on disk,
keyed by the fingerprints of the checkpoint file and of the dataset: a second call with the same
model and data is read back in well under a second; another model or dataset gets its own file.

The same arrays, numbers only (float16 coordinates, int8 labels and predictions, float16
confidence, OOD flags, the model's split and the file names; no pixels), are shipped in
`assets/embeddings/<task>.npz`, so the map draws on a fresh install before any download.
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

from .data import Dataset, cache_dir
from .explore import SPLIT_NAMES, model_split

EMBED_VERSION = 1
METHODS = ("pca", "tsne")
ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets" / "embeddings"
Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)


@dataclass
class Embedding:
    """Per-image predictions and 2-D coordinates of one model on one dataset.

    coords: method -> N x 2 float32; labels, preds: N int64; confidence: N float32 (probability of
    the predicted class, calibrated); ood: N bool; split: N strings ("train", "val", "test", "unused");
    files: N source names, in dataset order.
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
    origin: str = "computed"  # "computed", "cache" or "shipped" (not saved)

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def wrong(self) -> np.ndarray:
        """N booleans: misclassified images."""
        return self.preds != self.labels


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
        probs, scores, f = clf.infer(torch.from_numpy(np.array(images[start : start + batch_size])))  # copy: may be read-only
        p = clf.label_indices(probs)
        preds.append(p.astype(np.int64))
        conf.append(probs[np.arange(len(p)), p].astype(np.float32))
        ood.append(scores > clf.ood.threshold)
        feats.append(f.astype(np.float32))
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
    return Embedding(clf.spec.name, tuple(clf.classes), coords, ds.labels.astype(np.int64), preds, conf, ood,
                     model_split(ds, clf.card), list(ds.files), model_fp, ds.fingerprint, meta,
                     features=feats.astype(np.float16))


def cache_path(task: str, model_fp: str, data_fp: str, methods: Sequence[str] = METHODS) -> Path:
    """Disk-cache file of one (model, dataset, projections) combination."""
    safe_data = hashlib.sha1(data_fp.encode()).hexdigest()[:16]  # subset fingerprints contain brackets
    return cache_dir() / "embeddings" / f"{task}-{model_fp}-{safe_data}-{'+'.join(sorted(methods))}-v{EMBED_VERSION}.npz"


def embedding_for(clf, ds: Dataset, methods: Sequence[str] = METHODS, progress: Progress | None = None,
                  use_cache: bool = True, **kwargs) -> Embedding:
    """The model's embedding of a dataset: from the disk cache, or computed once and cached.

    Args:
        clf, ds, methods, progress: as in compute_embedding (kwargs go there too).
        use_cache: False recomputes and overwrites the cached file.
    Returns:
        an Embedding whose `origin` is "cache" or "computed".
    """
    model_fp = model_fingerprint(clf)
    path = cache_path(clf.spec.name, model_fp, ds.fingerprint, methods)
    if use_cache and path.is_file():
        return load_embedding(path, origin="cache")
    emb = compute_embedding(clf, ds, methods, progress=progress, model_fp=model_fp, **kwargs)
    save_embedding(emb, path, with_features=True)
    return emb


def save_embedding(emb: Embedding, path: str | Path, with_features: bool = False) -> Path:
    """Write an embedding as a compressed npz, numbers and file names only (atomic)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {f"coords_{m}": c.astype(np.float16) for m, c in emb.coords.items()}
    small = np.int8 if len(emb.classes) < 128 else np.int16
    arrays.update(
        labels=emb.labels.astype(small), preds=emb.preds.astype(small),
        confidence=emb.confidence.astype(np.float16), ood=np.asarray(emb.ood, bool),
        split=np.array([SPLIT_NAMES.index(s) for s in emb.split], np.int8),
        files=np.frombuffer("\n".join(emb.files).encode(), np.uint8),
        info=np.array(json.dumps({"task": emb.task, "classes": list(emb.classes), "model_fingerprint": emb.model_fingerprint,
                                  "data_fingerprint": emb.data_fingerprint, "version": EMBED_VERSION, "meta": emb.meta})),
    )
    if with_features and emb.features is not None:
        arrays["features"] = emb.features.astype(np.float16)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)
    return path


def load_embedding(path: str | Path, origin: str = "computed", with_features: bool = False) -> Embedding:
    """Read an embedding written by save_embedding (coordinates come back as float32)."""
    with np.load(path, allow_pickle=False) as z:
        info = json.loads(str(z["info"]))
        if info.get("version") != EMBED_VERSION:
            raise ValueError(f"{path} is an embedding of format {info.get('version')}, not {EMBED_VERSION}.")
        files = z["files"].tobytes().decode()
        return Embedding(
            task=info["task"], classes=tuple(info["classes"]),
            coords={k.removeprefix("coords_"): z[k].astype(np.float32) for k in z.files if k.startswith("coords_")},
            labels=z["labels"].astype(np.int64), preds=z["preds"].astype(np.int64),
            confidence=z["confidence"].astype(np.float32), ood=z["ood"].astype(bool),
            split=np.asarray(SPLIT_NAMES, dtype="<U6")[z["split"]], files=files.split("\n") if files else [],
            model_fingerprint=info["model_fingerprint"], data_fingerprint=info["data_fingerprint"], meta=info.get("meta", {}),
            features=z["features"] if with_features and "features" in z.files else None, origin=origin,
        )


def shipped_embedding_path(task: str) -> Path:
    """Where a task's precomputed embedding is shipped: $MEDIMG_EMBEDDINGS_DIR or assets/embeddings, /<task>.npz."""
    return Path(os.environ.get("MEDIMG_EMBEDDINGS_DIR") or ASSETS_DIR) / f"{task}.npz"


def find_embedding(task: str, model_fp: str, data_fp: str | None = None,
                   methods: Sequence[str] = METHODS) -> Embedding | None:
    """An embedding that needs no computing: the disk cache, else the shipped file, else None.

    The shipped file is used only when it was made with the same model (and, when a dataset is
    given, the same dataset), so a retrained model never shows a stale map.
    """
    if data_fp is not None:
        cached = cache_path(task, model_fp, data_fp, methods)
        if cached.is_file():
            return load_embedding(cached, origin="cache")
    shipped = shipped_embedding_path(task)
    if not shipped.is_file():
        return None
    emb = load_embedding(shipped, origin="shipped")
    if emb.model_fingerprint != model_fp or (data_fp is not None and emb.data_fingerprint != data_fp):
        return None
    if not set(methods) <= set(emb.coords):
        return None
    return emb


def align(files: Sequence[str], dataset_files: Sequence[str]) -> np.ndarray:
    """Dataset row of each embedding file name (-1 where the dataset lacks it), N int64."""
    if list(files) == list(dataset_files):
        return np.arange(len(files))
    where = {name: i for i, name in enumerate(dataset_files)}
    return np.array([where.get(name, -1) for name in files], np.int64)
