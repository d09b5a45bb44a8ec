"""Ship the fold models of a cross-validation as one model: an ensemble that averages their logits.

Every member trained on all but one fold of the task's own train+val images (and on the other
sources), so no image is left to validate the ensemble itself. Its numbers are therefore the
cross-validation's: each own image judged by the member that never saw it, at a temperature and
thresholds chosen on pooled out-of-fold predictions (nested: each fold's values chosen on the
other folds). The averaged logits of several members are a little less extreme than one
member's, so the ensemble is, if anything, slightly under-confident at that temperature.
"""
from __future__ import annotations

import numpy as np
import torch

from .calibration import threshold_rule
from ..models.architectures import Ensemble
from ..inference.ood import MemberDistances, RejectionRule
from ..inference.predict import Classifier
from ..inference.speed import predict_latency
from ..data.splits import kept_together
from ..tasks import TaskSpec
from .train import TrainConfig, build_card


def ensemble_classifier(record: dict, spec: TaskSpec) -> Classifier:
    """The fold models as one Classifier, with the temperature and thresholds chosen by the cross-validation."""
    members = record["members"]
    chosen = record["chosen"]
    model = Ensemble([m["model"] for m in members]).eval()
    rule = RejectionRule(MemberDistances([m["distance"] for m in members]), float(chosen["distance_factor"]),
                         chosen["other_threshold"] if model.head.out_features > spec.num_classes else None)
    return Classifier(model, spec, chosen["temperature"], rule, operating_threshold=chosen.get("operating_threshold"))


def ensemble_card(clf: Classifier, record: dict, cfg: TrainConfig, model_args: dict, command: str,
                  device: torch.device, quantile: float) -> dict:
    """The model card of a fold ensemble: its data and members, and the cross-validation's numbers as its validation."""
    ds, members = record["dataset"], record["members"]
    kept = np.unique(np.concatenate([m["kept"] for m in members]))
    run = {"history": members[0]["history"], "best_epoch": cfg.epochs, "seconds": record["seconds"],
           "selection": f"last epoch of each of the {len(members)} fold models (one-cycle schedule)"}
    card = build_card(cfg, clf.spec, ds, kept, np.array([], np.int64), clf.model, model_args, run, command, device,
                      record["notes"], record["parts"])
    card["training"]["fold_histories"] = [m["history"] for m in members]
    card["data"]["split"] = (f"{len(members)} stratified folds over train+val ({kept_together(clf.spec)} kept together, "
                             f"seed {cfg.seed}); every image trains {len(members) - 1} of the members and validates one")
    pooled = record["own_pooled"]
    card["validation"] = {**pooled, "what": f"out-of-fold: each of the {pooled['n']:,} train+val images judged by the "
                                            "fold model that did not train on it, thresholds nested"}
    chosen = record["chosen"]
    card["calibration"] = {"method": "temperature scaling on pooled out-of-fold predictions",
                           "temperature": round(clf.temperature, 4),
                           "ece_before": round(pooled["ece_before"], 5), "ece_after": round(pooled["ece"], 5)}
    card["ood"] = {"method": "mean over the members of each one's Mahalanobis distance on L2-normalised penultimate "
                             "features over its reference" + (", or P(other) of the rejection output"
                                                              if clf.ood.other_threshold is not None else ""),
                   "threshold": 1.0, "quantile": quantile, "distance_factor": round(clf.ood.distance_factor, 4),
                   "other_threshold": clf.ood.other_threshold, "chosen_by": "cross-validation",
                   "validation_flag_rate": round(pooled["flagged"], 5)}
    if clf.operating_threshold is not None:
        card["operating_threshold"] = {"class": clf.spec.positive_class, "threshold": chosen["operating_threshold"],
                                       "chosen_by": f"{threshold_rule(clf.spec)} on pooled out-of-fold predictions of all "
                                                    f"{pooled['n']:,} train+val images",
                                       "out_of_fold": record.get("operating_point")}
    card["speed"] = predict_latency(clf)
    return card
