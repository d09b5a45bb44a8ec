"""Evaluating a classifier on a labelled dataset: the numbers `evaluate` prints and records, and the lines that
report them (the metrics themselves are in metrics.py)."""
from __future__ import annotations

import numpy as np

from ..inference.metrics import classify, compute_metrics, open_set_metrics


def held_out_line(m: dict) -> str:
    """One line of open-set numbers: in-kind right and not flagged, foreign flagged, ECE."""
    parts = [f"{m['n']} images"]
    if m.get("in_kind"):
        parts.append(f"of their kind {m['in_kind']}: named right and not flagged {m['right_not_flagged']:.1%} "
                     f"(named right {m['accuracy']:.1%}), ECE {m['ece']:.4f}")
    if m.get("foreign"):
        parts.append(f"of other kinds {m['foreign']}: flagged {m['foreign_flagged']:.1%}")
    return "held-out datasets: " + "; ".join(parts)


def open_set_report(m: dict) -> str:
    """The open-set numbers as lines of text: overall, then one row per dataset when known."""
    lines = [held_out_line(m).replace("held-out datasets: ", "all: ")]
    rows = m.get("per_dataset", {})
    if rows:
        lines.append(f"{'dataset':<40} {'n':>5} {'right, not flagged':>19} {'named right':>12} {'other kinds flagged':>20}")
    for name, r in rows.items():
        inside = f"{r['right_not_flagged']:.1%} of {r['in_kind']}" if r.get("in_kind") else "-"
        named = f"{r['accuracy']:.1%}" if r.get("in_kind") else "-"
        outside = f"{r['foreign_flagged']:.1%} of {r['foreign']}" if r.get("foreign") else "-"
        lines.append(f"{name[:40]:<40} {r['n']:>5} {inside:>19} {named:>12} {outside:>20}")
    return "\n".join(lines)


def evaluate_classifier(clf, ds, tta: bool = False) -> dict:
    """What `evaluate` reports of a Classifier on a labelled Dataset (labels len(classes) = 'other').

    Returns: task, model, compute_metrics' numbers on the images of the task's classes, ood_flag_rate
    (their share flagged), tta, and open_set (see open_set_metrics) when there are images of other kinds
    or of several datasets. tta: average each image with its mirror (Classifier.infer).
    Raises: DataError when no image is of the task's classes.
    """
    from ..data.datasets import DataError
    from ..tasks import OTHER

    mine = ~ds.foreign
    if not mine.any():
        raise DataError(f"the data holds only images in {OTHER}/: evaluate needs images of at least one class "
                        f"of {clf.spec.name} ({', '.join(clf.classes)}) as well")
    out, pred, flagged = classify(clf, ds.images, tta)
    metrics = compute_metrics(out.probs[mine], ds.labels[mine], clf.classes, pred[mine])
    result = {"task": clf.spec.name, "model": str(clf.path), **metrics, "ood_flag_rate": float(flagged[mine].mean()),
              "tta": bool(tta and clf.can_flip)}
    several = len(np.unique(ds.origin)) > 1
    if ds.foreign.any() or several:
        result["open_set"] = open_set_metrics(out.probs, pred, flagged, ds.labels, clf.classes, ds.origin if several else None)
        result["open_set"].pop("in_kind_metrics", None)
    return result


def model_split_images(ds, card: dict, split: str):
    """The images of a task's own dataset that played `split` ("train" or "val") in a model's training,
    rebuilt from its card (explore.model_split). Raises DataError when none did, or when the validation
    images found are not as many as the card counted (not the data the model was trained on)."""
    from ..data.datasets import DataError
    from .explore import model_split

    chosen = np.flatnonzero(model_split(ds, card) == split)
    expected = card.get("data", {}).get({"train": "train", "val": "validation"}.get(split, ""))
    if not len(chosen) or (expected is not None and len(chosen) != expected):
        raise DataError(f"{len(chosen)} images of this data played '{split}' in the model's training, its card says "
                        f"{expected}: give the data it was trained on, or no --split to evaluate on all of it")
    return ds.subset(chosen)
