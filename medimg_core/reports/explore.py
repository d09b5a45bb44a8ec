"""Dataset summaries for the explorer: counts, intensity histograms, mean images, outcome filters.

Everything here works on the preprocessed dataset (`Dataset.images`, N x S x S uint8 at the
model's input size), so the numbers describe what the model sees, not the original files.
Outcome filters work on per-image predictions (labels, predicted labels, confidence, OOD flag)
as stored in an `Embedding`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

from ..data.datasets import Dataset

OUTCOMES = ("all", "correct", "wrong", "low confidence", "out-of-distribution")
SPLIT_NAMES = ("unused", "train", "val", "test")  # per-image split codes 0..3 (see model_split)


def model_split(ds: Dataset, card: dict, own: str | None = None) -> np.ndarray:
    """Which split each image played in the model's training, recomputed from its card.

    Re-runs the training's subset (`max_per_class`) and split (`sources.pool_split`) with the card's
    seed, validation fraction and held-out datasets, so "val" is exactly the validation set the
    card's metrics were computed on. Works on the task's own dataset and on its whole pool.

    Args:
        ds: the dataset (N images): the task's own, or its pool (`sources.task_pool`).
        card: the model card (`training.config` holds seed, val_fraction, max_per_class, held_out, sources;
            `data.near_duplicates.max_distance`, when there, the pHash distance its split kept together).
        own: the name of the task's own dataset (default: from the card's task, see `own_name`).
    Returns:
        N strings: "train", "val", the dataset's own split name (e.g. "test") for images the
        training never saw, or "unused" (left out by `max_per_class`, images of other datasets when
        the model trained on its own dataset only, or no card). Images of other datasets are
        "train" unless the card holds their dataset out ("val").
    """
    cfg = card.get("training", {}).get("config")
    if not cfg:
        return np.where(ds.split == "", "unused", ds.split).astype("<U6")
    from ..data.sources import pool_split

    out = np.where(np.isin(ds.split, ["", "train", "val"]), "unused", ds.split).astype("<U6")  # e.g. "test" stays
    own = own_name(ds, own if own is not None else task_origin(card.get("task")))
    present = set(np.unique(ds.origin).tolist())
    held_out = [d for d in cfg.get("held_out") or card.get("data", {}).get("held_out") or [] if d in present]
    near = card.get("data", {}).get("near_duplicates", {}).get("max_distance")  # None: exact duplicates only
    from ..tasks import TASKS

    _, train_idx, val_idx = pool_split(ds, own, cfg.get("max_per_class"), float(cfg.get("val_fraction", 0.1)),
                                       int(cfg.get("seed", 0)), held_out, max_distance=near, spec=TASKS.get(card.get("task")),
                                       strategy=cfg.get("validation", "random"))
    out[train_idx] = "train"
    out[val_idx] = "val"
    if cfg.get("sources") is False:  # trained on its own dataset only: the other datasets' images were never seen
        out[ds.origin != own] = "unused"
    return out


def task_origin(task: str | None) -> str | None:
    """The name of a registered task's own dataset (None for an unknown task)."""
    from ..data.sources import own_origin
    from ..tasks import get_task

    try:
        return own_origin(get_task(task)) if task else None
    except KeyError:
        return None


def own_name(ds: Dataset, own: str | None) -> str:
    """The name the task's own images carry in ds: `own`, or a single-dataset set's one name when it lacks `own`."""
    names = np.unique(ds.origin).tolist()
    if own is not None and (own in names or len(names) != 1):
        return own
    return str(names[0]) if names else own or ""


def class_split_counts(labels: np.ndarray, splits: np.ndarray, classes: Sequence[str]) -> pd.DataFrame:
    """Images per class and split.

    Args:
        labels: N class indices; splits: N split names.
    Returns:
        long table with columns class, split, images (every class, every split present).
    """
    df = pd.DataFrame({"class": np.asarray(classes, dtype=object)[labels], "split": splits})
    table = df.groupby(["class", "split"]).size().unstack(fill_value=0).reindex(list(classes), fill_value=0)
    known = ("train", "val", "test", "unused")
    order = [s for s in known if s in table.columns] + [s for s in table.columns if s not in known]
    return table[order].reset_index().melt(id_vars="class", var_name="split", value_name="images")


def pixel_histograms(images: np.ndarray, labels: np.ndarray, num_classes: int, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Per-class histogram of pixel intensities (fraction of the class's pixels per bin).

    Args:
        images: N x S x S uint8; labels: N class indices.
    Returns:
        (edges: bins+1 intensities in [0, 255+1], hist: C x bins, each row summing to 1, or 0 for an empty class)
    """
    width = 256 // bins
    hist = np.zeros((num_classes, bins), np.float64)
    for c in range(num_classes):
        members = np.flatnonzero(labels == c)
        for start in range(0, len(members), 4096):  # chunks keep the temporary small
            block = images[members[start : start + 4096]].reshape(-1) // width
            hist[c] += np.bincount(block, minlength=bins)[:bins]
    totals = hist.sum(1, keepdims=True)
    return np.arange(bins + 1) * width, np.divide(hist, totals, out=np.zeros_like(hist), where=totals > 0)


def mean_intensity(images: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Mean pixel value of each image in [0, 1] (N float32), over the whole stored square."""
    out = np.empty(len(images), np.float32)
    for start in range(0, len(images), chunk):
        out[start : start + chunk] = images[start : start + chunk].reshape(len(images[start : start + chunk]), -1).mean(1) / 255
    return out


def mean_images(images: np.ndarray, labels: np.ndarray, num_classes: int, chunk: int = 8192) -> np.ndarray:
    """Average image of each class.

    Returns:
        C x S x S float32 in [0, 1] (zeros for a class with no images).
    """
    sums = np.zeros((num_classes, *images.shape[1:]), np.float64)
    for start in range(0, len(images), chunk):
        block, lab = images[start : start + chunk], labels[start : start + chunk]
        for c in np.unique(lab):
            sums[c] += block[lab == c].sum(0, dtype=np.float64)
    counts = np.bincount(labels, minlength=num_classes).reshape(-1, 1, 1)
    return (sums / np.maximum(counts, 1) / 255).astype(np.float32)


def outcome_mask(outcome: str, labels: np.ndarray, preds: np.ndarray, confidence: np.ndarray, ood: np.ndarray,
                 low_confidence: float = 0.8) -> np.ndarray:
    """Images with one outcome of the model (see OUTCOMES).

    Args:
        labels, preds: N true and predicted class indices; confidence: N probabilities of the
        predicted class; ood: N out-of-distribution flags; low_confidence: the "low confidence" cut.
    Returns:
        N booleans.
    """
    masks = {
        "all": lambda: np.ones(len(labels), bool),
        "correct": lambda: preds == labels,
        "wrong": lambda: preds != labels,
        "low confidence": lambda: confidence < low_confidence,
        "out-of-distribution": lambda: np.asarray(ood, bool),
    }
    if outcome not in masks:
        raise ValueError(f"unknown outcome {outcome!r}; choose one of {', '.join(OUTCOMES)}")
    return masks[outcome]()


def sample_indices(mask: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """Up to n random positions where mask is true, in random order (same seed, same pick)."""
    candidates = np.flatnonzero(mask)
    rng = np.random.default_rng(seed)
    return rng.choice(candidates, min(n, len(candidates)), replace=False) if len(candidates) else candidates


def confusion_summary(labels: np.ndarray, preds: np.ndarray, classes: Sequence[str]) -> tuple[np.ndarray, pd.DataFrame]:
    """Confusion matrix and per-class precision, recall, F1 and support of a set of predictions.

    Returns:
        (C x C counts, rows = true class, columns = predicted; table indexed by class)
    """
    k = len(classes)
    cm = confusion_matrix(labels, preds, labels=list(range(k)))
    p, r, f, s = precision_recall_fscore_support(labels, preds, labels=list(range(k)), zero_division=0)
    table = pd.DataFrame({"precision": p, "recall": r, "f1": f, "support": s}, index=pd.Index(list(classes), name="class"))
    return cm, table
