"""Cross-validation by dataset: how a task's model does on sources it never saw, and the rejection
thresholds and temperature chosen there.

Each fold holds out whole datasets (`sources.dataset_folds`); its model trains on the rest and
predicts the held-out images, so every dataset is judged by a model that never saw it. The
pooled held-out predictions choose the temperature, the 'other' threshold, the distance factor of
the rejection rule and (two-class tasks) the operating threshold; the numbers reported for each
fold use values chosen on the *other* folds only, so no dataset is scored with thresholds tuned
on itself. `train_with_crossval` then trains the shipped model on everything with those values.

With `own_cv` the task's own train+val images are split into the same number of stratified folds
(`splits.own_folds`), so every own image is also judged once by a model that never saw it: the
card's `crossval` section gives each metric's mean and spread over the folds, and `ensemble`
ships the fold models themselves as one model (`fold_ensemble.py`).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .calibration import choose_threshold, fit_temperature
from .baseline import pca_logistic_baseline
from ..inference.metrics import (compute_metrics, expected_calibration_error, open_set_metrics, operating_point,
                         screening_rates)
from ..models.architectures import build_model
from ..inference.ood import MahalanobisOOD
from ..data.sources import dataset_folds, own_origin
from ..data.acquisition import TRAITS, acquisition_traits, atypicality
from ..data.splits import kept_together, named_patients, split_groups
from .fit import logits_and_features, training_seed
from .train import (TrainConfig, architecture_args, check_init, fit, init_weights, resolve_device, task_spec, train,
                    training_data, training_parts, training_split)

OTHER_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99, None)  # None: P(other) does not flag (distance only)
DISTANCE_GRID = (1.0, 1.25, 1.5, 2.0, 3.0, 1000.0)  # 1000: in effect, the distance never flags
MAX_OWN_FLAGGED = 0.01  # the rejection rule may flag at most 1% of the task's own validation images


def fold_plan(ds, own: str, folds: int, cfg: TrainConfig) -> list[list[str]]:
    """The datasets each fold holds out; with cfg.own_cv exactly `folds` folds, some maybe without a dataset."""
    if not cfg.own_cv:
        return dataset_folds(ds, own, folds, cfg.seed)
    others = len(np.unique(ds.origin[ds.origin != own]))
    held = dataset_folds(ds, own, min(folds, others), cfg.seed) if others >= 2 else []
    return held + [[] for _ in range(folds - len(held))]


def cross_validate(cfg: TrainConfig, folds: int = 5, data_path: str | Path | None = None, paths: dict | None = None,
                   progress: bool = True, state_dir: Path | None = None, resume: bool = False,
                   deadline: float | None = None) -> dict:
    """Train one model per fold; returns the record (choices, tables, predictions) and, under "members",
    the fold models with their distances (not for the card). state_dir: each fold's training state is saved
    there (fold-<i>.pt) after every epoch; resume continues each fold from it (finished folds are not retrained)."""
    spec = task_spec(cfg)
    device = resolve_device(cfg.device)
    check_init(cfg, spec)
    ds, notes = training_data(spec, cfg, data_path, paths)
    own, k = own_origin(spec), spec.num_classes
    held = fold_plan(ds, own, folds, cfg)
    started, parts, members, baselines = time.perf_counter(), [], [], []
    for f, names in enumerate(held):
        if progress:
            own_part = f" and fold {f + 1} of the {own} images" if cfg.own_cv else ""
            print(f"fold {f + 1}/{len(held)}: holding out {', '.join(names) or 'no other dataset'}{own_part}", flush=True)
        fold_cfg = replace(cfg, held_out=names, fold=[f, len(held)] if cfg.own_cv else [])
        torch.manual_seed(training_seed(cfg) + f if cfg.own_cv else training_seed(cfg))
        kept, train_idx, val_idx = training_split(ds, spec, fold_cfg)
        model = build_model(num_classes=k, **architecture_args(cfg, reject=bool(ds.foreign[train_idx].any())))
        if cfg.init:
            init_weights(model, cfg.init)
        run = fit(model, fold_cfg, spec, ds, train_idx, val_idx, device, progress,
                  None if state_dir is None else Path(state_dir) / f"fold-{f}.pt", resume, deadline=deadline)
        logits, feats = logits_and_features(model, ds.images[val_idx])
        in_kind = train_idx[ds.labels[train_idx] < k]
        maha = MahalanobisOOD.fit(logits_and_features(model, ds.images[in_kind])[1].numpy(), ds.labels[in_kind])
        distance = maha.score(feats)
        own_val = ds.origin[val_idx] == own
        maha.threshold = float(np.quantile(distance[own_val], cfg.ood_quantile))
        parts.append({"fold": np.full(len(val_idx), f), "index": val_idx, "logits": logits.numpy(),
                      "distance": distance / maha.threshold})
        members.append({"model": model, "distance": maha, "history": run["history"], "kept": kept})
        if cfg.baseline and cfg.own_cv:
            mine = in_kind[ds.origin[in_kind] == own]
            baselines.append(pca_logistic_baseline(ds.images[mine], ds.labels[mine], ds.images[val_idx[own_val]],
                                                   ds.labels[val_idx[own_val]], spec.classes, seed=cfg.seed))
    pooled = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    pooled["labels"], pooled["origins"] = ds.labels[pooled["index"]], ds.origin[pooled["index"]]
    if state_dir is not None:  # the rule can be chosen again from these, without training the folds again
        np.savez_compressed(Path(state_dir) / "pooled.npz", **pooled)
    chosen = choose_rejection(pooled, spec, own)
    nested = nested_predictions(pooled, spec, own)
    flagged, probs, pred = nested
    outer = pooled["origins"] != own
    record = {
        "folds": held, "seconds": round(time.perf_counter() - started, 1), "device": device.type, "notes": notes,
        "parts": training_parts(spec, cfg, paths),
        "chosen": chosen,
        "held_out": open_set_metrics(probs[outer], pred[outer], flagged[outer], pooled["labels"][outer], spec.classes,
                                     pooled["origins"][outer]) if outer.any() else {},
        "own_validation": own_validation(pooled, nested, spec, own),
        "per_fold": [fold_summary(pooled, nested, spec, own, f) for f in range(len(held))],
        "own_cv": cfg.own_cv, "members": members, "dataset": ds,
    }
    if cfg.own_cv:
        record["own_pooled"] = own_pooled(pooled, nested, spec, own)
        record["shift"] = atypical_numbers(pooled, nested, spec, own, ds)
        if spec.positive_class:
            record["operating_point"] = pooled_operating_point(pooled, chosen, spec, own)
        if baselines:
            record["baseline"] = spread([{key: b[key] for key in ("accuracy", "auc", "macro_f1")} for b in baselines])
            record["baseline"]["model"] = baselines[0]["model"]
    return record


def calibrated(logits: np.ndarray, k: int, temperature: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(N x K class probabilities, N P(other) or None) at a temperature."""
    t = torch.from_numpy(logits).float() / temperature
    probs = torch.softmax(t[:, :k], 1).numpy()
    return probs, (torch.softmax(t, 1)[:, k].numpy() if logits.shape[1] > k else None)


def predicted(probs: np.ndarray, spec, operating_threshold: float | None) -> np.ndarray:
    """Class indices: argmax, or the two-class operating threshold on the positive class."""
    if operating_threshold is None or not spec.positive_class:
        return probs.argmax(1)
    pos = spec.classes.index(spec.positive_class)
    return np.where(probs[:, pos] >= operating_threshold, pos, 1 - pos)


def is_flagged(distance: np.ndarray, p_other: np.ndarray | None, chosen: dict) -> np.ndarray:
    """The rejection rule (ood.RejectionRule) on pooled held-out values."""
    flags = distance > chosen["distance_factor"]
    if p_other is not None and chosen["other_threshold"] is not None:
        flags |= p_other > chosen["other_threshold"]
    return flags


def choose_rejection(pooled: dict, spec, own: str, weighting: str = "datasets") -> dict:
    """Temperature, thresholds and distance factor from pooled held-out predictions (see module docstring).

    weighting: "datasets" maximises the mean success over every held-out dataset's images of the task's kinds and
    every dataset's images of other kinds alike; "sides" weighs the two sides equally (each the mean over its
    datasets), so many datasets of other kinds do not outvote the fewer datasets of the task's own kinds.
    """
    k, labels, origins = spec.num_classes, pooled["labels"], pooled["origins"]
    in_kind = labels < k
    temperature = fit_temperature(torch.from_numpy(pooled["logits"][in_kind][:, :k]), torch.from_numpy(labels[in_kind]))
    probs, p_other = calibrated(pooled["logits"], k, temperature)
    chosen = {"temperature": round(temperature, 4)}
    if spec.positive_class:
        pos, mine = spec.classes.index(spec.positive_class), origins == own
        chosen["operating_threshold"] = round(choose_threshold(probs[mine, pos], labels[mine] == pos, spec.min_sensitivity), 5)
    right = predicted(probs, spec, chosen.get("operating_threshold")) == labels
    units = [(origins == o) & (in_kind == side) for o in np.unique(origins) for side in (True, False)]
    units = [u for u in units if u.any()]
    unit_in_kind = [bool(in_kind[u][0]) for u in units]  # each unit's side, the same for every rule tried
    best = None
    for other in OTHER_GRID if p_other is not None else (None,):
        for factor in DISTANCE_GRID:
            trial = {"other_threshold": other, "distance_factor": factor}
            flags = is_flagged(pooled["distance"], p_other, trial)
            if flags[origins == own].mean() > MAX_OWN_FLAGGED:
                continue
            success = np.where(in_kind, right & ~flags, flags)
            score = rule_score([success[u].mean() for u in units], unit_in_kind, weighting)
            if best is None or score > best[0]:
                best = (score, trial)
    if best is None:  # nothing keeps the own images: the plain validation quantile of the distance, no P(other)
        best = (float("nan"), {"other_threshold": None, "distance_factor": 1.0})
    chosen.update(best[1])
    chosen["balanced_success"] = round(best[0], 5)
    return chosen


def rule_score(successes: list[float], in_kind: list[bool], weighting: str) -> float:
    """What choose_rejection maximises: the mean success per (dataset, side) unit, or (weighting "sides") the mean
    of the two sides' means."""
    if weighting == "datasets":
        return float(np.mean(successes))
    if weighting != "sides":
        raise ValueError(f"weighting must be 'datasets' or 'sides', not {weighting!r}")
    sides = [[s for s, k in zip(successes, in_kind) if k == side] for side in (True, False)]
    return float(np.mean([np.mean(side) for side in sides if side]))


def nested_predictions(pooled: dict, spec, own: str,
                       weighting: str = "datasets") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(flagged, probabilities, predicted class) of every pooled image, with each fold's values chosen on the others."""
    k = spec.num_classes
    n = len(pooled["labels"])
    flagged, probs, pred = np.zeros(n, bool), np.zeros((n, k), np.float32), np.zeros(n, np.int64)
    for f in np.unique(pooled["fold"]):
        mine, rest = pooled["fold"] == f, pooled["fold"] != f
        chosen = choose_rejection({key: v[rest] for key, v in pooled.items()}, spec, own, weighting)
        p, other = calibrated(pooled["logits"][mine], k, chosen["temperature"])
        probs[mine], pred[mine] = p, predicted(p, spec, chosen.get("operating_threshold"))
        flagged[mine] = is_flagged(pooled["distance"][mine], other, chosen)
    return flagged, probs, pred


def own_validation(pooled: dict, nested: tuple, spec, own: str) -> dict:
    """The fold models on the task's own validation images: mean and spread over the folds."""
    return spread([fold_summary(pooled, nested, spec, own, f)["own"] for f in np.unique(pooled["fold"])])


def spread(rows: list[dict]) -> dict:
    """Mean and sample standard deviation over folds of every number the rows share."""
    out = {}
    for key in ("accuracy", "auc", "sensitivity", "specificity", "macro_f1", "in_kind_flagged", "ece"):
        values = np.array([r[key] for r in rows if isinstance(r.get(key), (int, float))], dtype=float)
        if len(values) == len(rows) and len(values):
            out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def screening_numbers(metrics: dict, spec) -> dict:
    """AUC, and for a two-class task the sensitivity and specificity, from compute_metrics' output."""
    out = {"auc": metrics.get("auc"), "macro_f1": metrics.get("macro_f1")}
    if spec.positive_class:
        sensitivity, specificity = screening_rates(metrics["confusion_matrix"], spec.classes.index(spec.positive_class))
        out.update(sensitivity=sensitivity, specificity=specificity)
    return out


def fold_summary(pooled: dict, nested: tuple, spec, own: str, fold: int) -> dict:
    """One fold's numbers: its held-out datasets (in kind and foreign) and its own validation images."""
    flagged, probs, pred = nested
    mine = pooled["fold"] == fold
    summary = {}
    for name, rows in (("held_out", mine & (pooled["origins"] != own)), ("own", mine & (pooled["origins"] == own))):
        summary[name] = open_set_metrics(probs[rows], pred[rows], flagged[rows], pooled["labels"][rows], spec.classes)
        metrics = summary[name].pop("in_kind_metrics", None)
        if name == "own" and metrics:
            summary[name].update(screening_numbers(metrics, spec))
    return summary


def own_pooled(pooled: dict, nested: tuple, spec, own: str) -> dict:
    """Every own train+val image, judged by the fold model that did not train on it (thresholds nested)."""
    flagged, probs, pred = nested
    mine = pooled["origins"] == own
    metrics = compute_metrics(probs[mine], pooled["labels"][mine], spec.classes, pred[mine])
    raw = torch.softmax(torch.from_numpy(pooled["logits"][mine][:, :spec.num_classes]).float(), 1).numpy()
    metrics.update(screening_numbers(metrics, spec), flagged=float(flagged[mine].mean()),
                   ece_before=expected_calibration_error(raw, pooled["labels"][mine]))
    return metrics


def atypical_numbers(pooled: dict, nested: tuple, spec, own: str, ds, share: float = 0.2) -> dict:
    """The out-of-fold numbers on the `share` of own images whose patients look least typical by acquisition
    traits (acquisition.atypicality), against the rest: a shift the folds themselves contain."""
    flagged, probs, pred = nested
    mine = np.flatnonzero(pooled["origins"] == own)
    index = pooled["index"][mine]
    patients = named_patients([ds.files[i] for i in index], spec)
    groups = split_groups(ds.images[index], spec.near_duplicate_distance, patients)
    score = atypicality(acquisition_traits(ds.images[index]), groups)
    least = score >= np.quantile(score, 1 - share)
    out = {"method": f"out-of-fold predictions of the {least.mean():.0%} of own images whose patients are least typical "
                     f"by {', '.join(TRAITS)} (robust z-scores), against the rest; thresholds nested"}
    for name, rows in (("least_typical", mine[least]), ("rest", mine[~least])):
        metrics = compute_metrics(probs[rows], pooled["labels"][rows], spec.classes, pred[rows])
        out[name] = {"n": metrics["n"], "accuracy": metrics["accuracy"], **screening_numbers(metrics, spec),
                     "flagged": float(flagged[rows].mean())}
    return out


def pooled_operating_point(pooled: dict, chosen: dict, spec, own: str) -> dict:
    """The chosen operating threshold on every pooled out-of-fold own image (the ROC and where the point sits on
    it); its sensitivity here is on the predictions it was chosen on, so the nested numbers are the estimate."""
    mine = pooled["origins"] == own
    probs, _ = calibrated(pooled["logits"][mine], spec.num_classes, chosen["temperature"])
    pos = spec.classes.index(spec.positive_class)
    return operating_point(probs[:, pos], pooled["labels"][mine] == pos, chosen["operating_threshold"])


def train_with_crossval(cfg: TrainConfig, folds: int = 5, data_path: str | Path | None = None,
                        out: Path | None = None, command: str = "", progress: bool = True, paths: dict | None = None,
                        state_dir: Path | None = None, resume: bool = False, deadline: float | None = None):
    """Cross-validate, then ship a model with the values chosen there: one more model trained on
    everything, or (cfg.ensemble) the fold models themselves as one ensemble (state_dir, resume: see cross_validate)."""
    if cfg.ensemble and not cfg.own_cv:
        raise ValueError("--ensemble ships the fold models, which must not share validation images: add --own-cv")
    record = cross_validate(cfg, folds, data_path, paths, progress, state_dir, resume, deadline)
    spec = task_spec(cfg)
    external = {key: record[key] for key in ("folds", "held_out", "own_validation", "per_fold", "seconds", "device")}
    external["method"] = (f"{len(record['folds'])}-fold cross-validation by dataset: each dataset other than "
                          f"{own_origin(spec)} is held out once; each fold's thresholds chosen on the other folds")
    extra = {"rejection": record["chosen"], "external": external}
    if cfg.own_cv:
        extra["crossval"] = {key: record[key] for key in ("own_validation", "own_pooled", "baseline", "operating_point",
                                                          "shift") if key in record}
        extra["crossval"]["method"] = (f"{len(record['folds'])}-fold stratified cross-validation over the "
                                       f"{own_origin(spec)} train+val images ({kept_together(spec)} kept together, "
                                       f"seed {cfg.seed}); mean and standard deviation over the folds, each fold's "
                                       "thresholds chosen on the other folds")
    if not cfg.ensemble:
        return train(cfg, data_path, out, command, progress, paths, rejection=record["chosen"], card_extra=extra,
                     state_dir=state_dir, resume=resume, deadline=deadline)
    from .fold_ensemble import ensemble_card, ensemble_classifier
    from .train import save_classifier

    clf = ensemble_classifier(record, spec)
    model_args = architecture_args(cfg, clf.rejects) | {"members": len(record["members"])}
    clf.card = ensemble_card(clf, record, cfg, model_args, command, resolve_device(cfg.device), cfg.ood_quantile)
    clf.card.update(extra)
    if out is not None:
        save_classifier(clf, Path(out), model_args)
    return clf, clf.card
