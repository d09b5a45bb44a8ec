"""Calibration: temperature scaling (Guo et al., 2017), the rejection rule and the operating threshold.

`calibrate` turns a trained model into a Classifier: a temperature for its probabilities, the
Mahalanobis statistics of its features and the rule that says 'not recognised', and (two-class
tasks) the decision threshold. Values chosen by cross-validation on held-out datasets
(`crossval.py`) are passed in as `rejection`; otherwise they are fitted on the task's own
validation split.
"""
from __future__ import annotations


import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_curve

from ..data.datasets import Dataset
from .fit import logits_and_features
from ..inference.metrics import compute_metrics, expected_calibration_error, operating_point
from ..inference.ood import MahalanobisOOD, RejectionRule
from ..inference.predict import Classifier, outputs
from ..tasks import TaskSpec

DEFAULT_OTHER_THRESHOLD = 0.5  # P(other) above which an image is not recognised, until cross-validation chooses


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor, max_iter: int = 200) -> float:
    """The temperature T > 0 that minimises the NLL of softmax(logits / T) on validation data."""
    log_t = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([log_t], lr=0.1, max_iter=max_iter)
    logits, labels = logits.detach().float().clone(), labels.long().clone()

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    opt.step(closure)
    t = float(log_t.detach().exp())
    return min(20.0, max(0.05, t)) if np.isfinite(t) else 1.0  # a tiny, separable split can send L-BFGS off to NaN


def choose_threshold(pos_probs: np.ndarray, is_pos: np.ndarray, min_sensitivity: float | None = None) -> float:
    """Operating threshold on the positive-class probability: the highest one whose sensitivity is at least
    min_sensitivity (a screening task's TaskSpec.min_sensitivity), else the one maximising Youden's J."""
    fpr, tpr, thresholds = roc_curve(is_pos, pos_probs)
    best = int(np.argmax(tpr >= min_sensitivity)) if min_sensitivity else int(np.argmax(tpr - fpr))
    return float(min(1.0, thresholds[best]))


def threshold_rule(spec: TaskSpec) -> str:
    """How choose_threshold picks a task's operating point, in words (for the model card)."""
    if spec.min_sensitivity:
        return f"the highest threshold with sensitivity at least {spec.min_sensitivity:.0%}"
    return "Youden's J"


def calibrate(model, spec: TaskSpec, ds: Dataset, train_idx: np.ndarray, val_idx: np.ndarray, ood_quantile: float,
              rejection: dict | None = None) -> tuple[Classifier, dict]:
    """Fit (or take from `rejection`) the temperature, the rejection rule and the operating threshold.

    Args:
        train_idx: the training images (their in-kind features fit the Mahalanobis statistics).
        val_idx: the task's own validation images (the reference distance; the temperature and the
            threshold when `rejection` does not give them).
        rejection: {"temperature", "other_threshold", "distance_factor", "operating_threshold"}, any subset.
    """
    rejection = rejection or {}
    k = spec.num_classes
    val_logits, val_feats = logits_and_features(model, ds.images[val_idx])
    val_y = ds.labels[val_idx]
    in_kind = train_idx[ds.labels[train_idx] < k]
    _, train_feats = logits_and_features(model, ds.images[in_kind])
    maha = MahalanobisOOD.fit(train_feats.numpy(), ds.labels[in_kind])
    maha.set_threshold(maha.score(val_feats), ood_quantile)
    temperature = rejection.get("temperature") or fit_temperature(val_logits[:, :k], torch.from_numpy(val_y))
    reject_output = val_logits.shape[1] > k
    other = rejection.get("other_threshold", DEFAULT_OTHER_THRESHOLD) if reject_output else None
    rule = RejectionRule(maha, float(rejection.get("distance_factor", 1.0)), other)
    out = outputs(val_logits, val_feats, k, temperature, rule)
    threshold = None
    if spec.positive_class:
        pos = spec.classes.index(spec.positive_class)
        threshold = rejection.get("operating_threshold") or choose_threshold(out.probs[:, pos], val_y == pos, spec.min_sensitivity)
    clf = Classifier(model, spec, temperature, rule, operating_threshold=threshold)
    raw = torch.softmax(val_logits[:, :k], 1).numpy()
    return clf, {"val_probs": out.probs, "raw_val_probs": raw, "val_scores": out.scores, "val_y": val_y,
                 "chosen": sorted(rejection)}


def calibration_sections(clf: Classifier, fitted: dict, ood_quantile: float) -> dict:
    """The card's validation metrics, calibration, OOD and operating-threshold sections."""
    probs, val_y = fitted["val_probs"], fitted["val_y"]
    metrics = compute_metrics(probs, val_y, clf.classes, clf.label_indices(probs))
    chosen = fitted["chosen"]
    where = "pooled held-out predictions of the cross-validation" if "temperature" in chosen else "validation"
    sections = {
        "validation": metrics,
        "calibration": {"method": f"temperature scaling on {where}", "temperature": round(clf.temperature, 4),
                        "ece_before": round(expected_calibration_error(fitted["raw_val_probs"], val_y), 5),
                        "ece_after": round(metrics["ece"], 5)},
        "ood": {"method": "Mahalanobis distance on L2-normalised penultimate features (shared covariance)"
                          + (", or P(other) of the rejection output" if clf.ood.other_threshold is not None else ""),
                "threshold": round(clf.ood.mahalanobis.threshold, 4), "quantile": ood_quantile,
                "distance_factor": round(clf.ood.distance_factor, 4),
                "other_threshold": None if clf.ood.other_threshold is None else round(clf.ood.other_threshold, 4),
                "chosen_by": "cross-validation by dataset" if "distance_factor" in chosen else "validation quantile",
                "validation_flag_rate": round(float((fitted["val_scores"] > clf.ood.threshold).mean()), 5)},
    }
    if clf.operating_threshold is not None:
        how = "pooled out-of-fold" if "operating_threshold" in chosen else "the validation split"
        pos = clf.classes.index(clf.spec.positive_class)
        sections["operating_threshold"] = {"class": clf.spec.positive_class, "threshold": round(clf.operating_threshold, 5),
                                           "chosen_by": f"{threshold_rule(clf.spec)} on {how}",
                                           "on_validation": operating_point(probs[:, pos], val_y == pos,
                                                                            clf.operating_threshold)}
    return sections
