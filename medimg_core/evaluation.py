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
