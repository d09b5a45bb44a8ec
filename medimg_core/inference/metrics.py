"""Metrics of a set of predictions: accuracy, macro-F1, AUC, calibration error, screening rates, the operating
point of a two-class model, and open-set numbers (named right, flagged) of a classifier on images of any kind.

Pure functions of arrays (and `classify`, which runs a Classifier over uint8 images); what the CLI prints and
the card sections built from them are in reports/evaluation.py.
"""
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


PREVALENCES = (0.25, 0.5, 0.625, 0.74, 0.9)  # shares of the positive class to show an operating point at


def operating_point(pos_probs: np.ndarray, is_pos: np.ndarray, threshold: float, points: int = 101,
                    prevalences: tuple[float, ...] = PREVALENCES) -> dict:
    """A two-class model's operating point: its sensitivity and specificity at `threshold`, the ROC curve
    (about `points` points), and the accuracy, PPV and NPV the same point gives where the positive class
    makes up each share in `prevalences` (sensitivity and specificity do not depend on it; these do)."""
    from sklearn.metrics import roc_curve

    is_pos = np.asarray(is_pos, bool)
    sensitivity = float((pos_probs[is_pos] >= threshold).mean())
    specificity = float((pos_probs[~is_pos] < threshold).mean())
    fpr, tpr, _ = roc_curve(is_pos, pos_probs)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(points, len(fpr))).round().astype(int))
    rows = []
    for p in prevalences:
        tp, fp = p * sensitivity, (1 - p) * (1 - specificity)
        tn, fn = (1 - p) * specificity, p * (1 - sensitivity)
        rows.append({"prevalence": p, "accuracy": round(tp + tn, 5), "ppv": round(tp / (tp + fp), 5) if tp + fp else None,
                     "npv": round(tn / (tn + fn), 5) if tn + fn else None})
    return {"threshold": round(float(threshold), 5), "sensitivity": round(sensitivity, 5),
            "specificity": round(specificity, 5), "n": int(len(is_pos)), "positives": int(is_pos.sum()),
            "roc": {"fpr": fpr[keep].round(5).tolist(), "tpr": tpr[keep].round(5).tolist()},
            "by_prevalence": rows}


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
