"""Metrics for a set of predictions: accuracy, macro-F1, AUC, calibration error, per class."""
from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support, roc_auc_score


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """ECE of the top-class confidence, equal-width bins."""
    conf, pred = probs.max(1), probs.argmax(1)
    correct = (pred == labels).astype(np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - conf[mask].mean())
    return float(ece)


def auc_score(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """One-vs-rest macro ROC AUC (plain ROC AUC for two classes); None if a class is absent."""
    k = probs.shape[1]
    if len(np.unique(labels)) < k:
        return None
    if k == 2:
        return float(roc_auc_score(labels, probs[:, 1]))
    return float(roc_auc_score(labels, probs, multi_class="ovr", average="macro", labels=list(range(k))))


def compute_metrics(probs: np.ndarray, labels: np.ndarray, classes: tuple[str, ...] | list[str],
                    pred: np.ndarray | None = None) -> dict:
    """All headline and per-class metrics for N x C probabilities against N integer labels.

    `pred` overrides the argmax decision (e.g. a two-class model's operating threshold).
    """
    k = len(classes)
    pred = probs.argmax(1) if pred is None else pred
    p, r, f, s = precision_recall_fscore_support(labels, pred, labels=list(range(k)), zero_division=0)
    return {
        "n": int(len(labels)),
        "accuracy": float(accuracy_score(labels, pred)),
        "macro_f1": float(f1_score(labels, pred, labels=list(range(k)), average="macro", zero_division=0)),
        "auc": auc_score(probs, labels),
        "ece": expected_calibration_error(probs, labels),
        "classes": list(classes),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(classes)
        },
        "confusion_matrix": confusion_matrix(labels, pred, labels=list(range(k))).tolist(),
    }


def screening_rates(confusion, positive: int) -> tuple[float | None, float | None]:
    """(sensitivity, specificity) of a two-class confusion matrix (rows: true class) for the positive class
    index; a rate is None when its class has no images."""
    cm = np.asarray(confusion, dtype=float)
    rates = [cm[c, c] / cm[c].sum() if cm[c].sum() else None for c in (positive, 1 - positive)]
    return rates[0], rates[1]


def classify(clf, images: np.ndarray, tta: bool = False):
    """A Classifier on N x S x S uint8 images: (its Outputs, the predicted class indices, the flags)."""
    import torch

    out = clf.infer(torch.from_numpy(images), tta=tta)
    return out, clf.label_indices(out.probs), out.scores > clf.ood.threshold


def open_set_metrics(probs: np.ndarray, pred: np.ndarray, flagged: np.ndarray, labels: np.ndarray,
                     classes: tuple[str, ...] | list[str], origins: np.ndarray | None = None) -> dict:
    """How a model does on images of its kinds and of other kinds (label len(classes) = 'other').

    Args:
        probs: N x K calibrated class probabilities; pred: N predicted class indices; flagged: N
            booleans (not recognised); labels: N labels in 0..K; origins: N dataset names, for a
            per-dataset table.
    Returns:
        in_kind (n, labelled right, right and not flagged, flagged, ECE), foreign (n, flagged) and,
        with origins, per_dataset rows of the same numbers.
    """
    k = len(classes)
    mine = labels < k

    def summary(rows: np.ndarray) -> dict:
        inside, outside = rows & mine, rows & ~mine
        right = pred[inside] == labels[inside]
        out = {"n": int(rows.sum()), "in_kind": int(inside.sum()), "foreign": int(outside.sum())}
        if inside.any():
            out.update(accuracy=float(right.mean()), right_not_flagged=float((right & ~flagged[inside]).mean()),
                       in_kind_flagged=float(flagged[inside].mean()),
                       ece=expected_calibration_error(probs[inside], labels[inside]))
        if outside.any():
            out["foreign_flagged"] = float(flagged[outside].mean())
        return out

    result = summary(np.ones(len(labels), bool))
    if mine.any():
        result["in_kind_metrics"] = compute_metrics(probs[mine], labels[mine], classes, pred[mine])
    if origins is not None:
        result["per_dataset"] = {str(o): summary(origins == o) for o in np.unique(origins)}
    return result


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
    from .data import DataError
    from .tasks import OTHER

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
    from .data import DataError
    from .explore import model_split

    chosen = np.flatnonzero(model_split(ds, card) == split)
    expected = card.get("data", {}).get({"train": "train", "val": "validation"}.get(split, ""))
    if not len(chosen) or (expected is not None and len(chosen) != expected):
        raise DataError(f"{len(chosen)} images of this data played '{split}' in the model's training, its card says "
                        f"{expected}: give the data it was trained on, or no --split to evaluate on all of it")
    return ds.subset(chosen)
