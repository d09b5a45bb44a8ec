"""Compare a task's models from their model cards: the shipped one and the recorded alternatives.

Comparison cards live in `<models_dir>/comparisons/<task>-<name>.json` (cards of models whose
weights are not shipped); the hyperparameter search record in `<models_dir>/search/<task>.json`.
Everything here reads JSON only, so the Models page works without data or weights.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ..models.checkpoint import default_model_path, models_dir, read_card
from ..inference.metrics import screening_rates
from ..tasks import TASKS
from ..training.fit import teacher_paths
from .story import mean_sd


def model_name(card: dict) -> str:
    """A short human name: architecture, width, initialisation and the settings that differ from the defaults."""
    cfg = card.get("training", {}).get("config", {})
    model = card.get("model", {})
    arch = model.get("architecture", cfg.get("architecture", "?"))
    width = model.get("width")
    parts = [f"{arch} (width {width})" if arch == "compact-cnn" or (arch == "resnet18" and width not in (None, 64)) else arch]
    if model.get("members", 1) > 1:
        parts[0] += f" x{model['members']} (ensemble of the fold models)"
    parts.append(f"fine-tuned from {Path(cfg['init']).stem}" if cfg.get("init") else "from scratch")
    teachers = [Path(t) for t in teacher_paths(cfg.get("teacher"))]
    if teachers:  # a run folder's model is named for its task: name the run instead
        names = [t.parent.name if t.stem == card.get("task") else t.stem for t in teachers]
        parts.append(f"distilled from {names[0]}" if len(names) == 1 else
                     f"distilled from an ensemble of {len(names)} ({', '.join(names)})")
    if cfg.get("sources") is False or "sources" not in card.get("data", {"sources": None}):
        parts.append("own dataset only")  # no supplements and no images of other kinds (older cards name none)
    if cfg.get("without"):
        parts.append(f"without {', '.join(cfg['without'])}")
    if cfg.get("augment") is False:
        parts.append("no augmentation")
    elif cfg.get("augment_strength", 1.0) != 1.0:
        parts.append(f"augmentation x{cfg['augment_strength']:g}")
    if cfg.get("balance"):
        parts.append("class-weighted loss")
    if cfg.get("label_smoothing"):
        parts.append(f"label smoothing {cfg['label_smoothing']:g}")
    if cfg.get("image_size"):
        parts.append(f"{cfg['image_size']} px")
    if cfg.get("progressive_from"):
        parts.append(f"progressive from {cfg['progressive_from']} px")
    if cfg.get("input_norm", "none") != "none":
        parts.append({"equalize": "input equalised", "clahe": "input CLAHE"}.get(cfg["input_norm"], cfg["input_norm"]))
    if cfg.get("precision") == "bf16" and card.get("training", {}).get("device") == "cpu":
        parts.append("bf16 on the CPU")  # apart from the same recipe run on a GPU
    if cfg.get("max_per_class"):
        parts.append(f"subset of {cfg['max_per_class']}/class")
    if cfg.get("epoch_size"):
        parts.append(f"{cfg['epoch_size']:,} images an epoch")
    if cfg.get("validation", "random") != "random":
        parts.append(f"{cfg['validation']} validation")
    source, task = card.get("data", {}).get("source"), TASKS.get(card.get("task"))
    if source and task is not None and source != task.source.filename:
        parts.append(f"on {source}")
    return ", ".join(parts)


def compared_cards(task: str) -> list[dict]:
    """The shipped card first, then the comparison cards; each gets 'name', 'file' and 'shipped' keys."""
    cards = []
    shipped = default_model_path(task)
    card = read_card(shipped)
    if card:
        cards.append({**card, "name": model_name(card), "file": shipped.name, "shipped": True})
    for path in sorted((models_dir() / "comparisons").glob(f"{task}-*.json")):
        card = json.loads(path.read_text())
        if card.get("task") == task:
            cards.append({**card, "name": model_name(card), "file": path.name, "shipped": False})
    return cards


def comparison_table(cards: list[dict]) -> pd.DataFrame:
    """One row per model: validation metrics, size, CPU latency and training time."""
    rows = []
    for c in cards:
        v, t, cfg = c.get("validation", {}), c.get("training", {}), c.get("training", {}).get("config", {})
        sensitivity, specificity = sensitivity_specificity(c)
        held = c.get("external", {}).get("held_out", {})
        test = c.get("test") or {}
        rows.append({
            "model": c["name"], "shipped": c["shipped"], "numbers on": evaluated_on(c),
            "accuracy": v.get("accuracy"), "macro-F1": v.get("macro_f1"), "AUC": v.get("auc"),
            "sensitivity": sensitivity, "specificity": specificity,
            "unseen datasets: right, not flagged": held.get("right_not_flagged"),
            "unseen other kinds: flagged": held.get("foreign_flagged"), "unseen datasets: ECE": held.get("ece"),
            "test accuracy": test.get("accuracy"), "test AUC": test.get("auc"),
            "input px": (c.get("input", {}).get("size") or [None])[0],
            "parameters": c.get("model", {}).get("parameters"), "CPU ms/image": c.get("speed", {}).get("predict_ms_median"),
            "training s": t.get("seconds"), "trained on": trained_on(t), "validation images": v.get("n"),
            "epochs": cfg.get("epochs"),
            "best epoch": t.get("best_epoch"),
            "lr": cfg.get("lr"), "augment": cfg.get("augment"), "card": c["file"],
        })
    table = pd.DataFrame(rows)
    return table.dropna(axis=1, how="all") if len(table) else table


def trained_on(training: dict) -> str | None:
    """The hardware a card's model trained on, in a few words ("NVIDIA H200", "CPU, 2 cores")."""
    hardware = training.get("hardware") or ""
    if training.get("device") == "cuda" or "NVIDIA" in hardware:
        return hardware.rsplit(", ", 1)[-1] if ", " in hardware else "GPU"
    cores = next((part.split()[0] for part in hardware.split(", ") if part.endswith("CPU cores")), None)
    return f"CPU, {cores} cores" if cores else ("CPU" if hardware else None)


def evaluated_on(card: dict) -> str:
    """What a card's validation numbers were measured on, in a few words."""
    v = card.get("validation", {})
    if v.get("what", "").startswith("out-of-fold"):
        return f"out-of-fold, {v['n']:,} train+val images"
    return f"validation split, {v['n']:,} images" if v.get("n") else "validation split"


def sensitivity_specificity(card: dict) -> tuple[float | None, float | None]:
    """Sensitivity and specificity of a two-class card's positive class at its operating threshold."""
    positive = card.get("operating_threshold", {}).get("class")
    v = card.get("validation", {})
    if not positive or "confusion_matrix" not in v:
        return None, None
    return screening_rates(v["confusion_matrix"], list(card["classes"]).index(positive))


def external_table(card: dict) -> pd.DataFrame:
    """One row per dataset held out in the card's cross-validation by dataset (empty when it has none)."""
    rows = [{"dataset": name, "images": r["n"], "of the task's kinds": r["in_kind"],
             "right, not flagged": r.get("right_not_flagged"), "named right": r.get("accuracy"),
             "of other kinds": r["foreign"], "other kinds flagged": r.get("foreign_flagged")}
            for name, r in card.get("external", {}).get("held_out", {}).get("per_dataset", {}).items()]
    return pd.DataFrame(rows, columns=["dataset", "images", "of the task's kinds", "right, not flagged", "named right",
                                       "of other kinds", "other kinds flagged"])


def training_curves(cards: list[dict]) -> pd.DataFrame:
    """Long table of per-epoch history: model, epoch, metric, value (empty when none was recorded)."""
    rows = [{"model": c["name"], "epoch": h["epoch"], "metric": metric, "value": h[metric]}
            for c in cards for h in c.get("training", {}).get("history", [])
            for metric in ("train_loss", "val_loss", "val_accuracy", "val_auc") if h.get(metric) is not None]
    return pd.DataFrame(rows, columns=["model", "epoch", "metric", "value"])


def search_table(record: dict) -> pd.DataFrame:
    """The hyperparameter search runs, best first, one row each."""
    rows = [{"change from base": r["label"], "accuracy": r["accuracy"], "macro-F1": r["macro_f1"], "AUC": r["auc"],
             "best val loss": r["val_loss"], "best epoch": r["best_epoch"], "parameters": r["parameters"],
             "training s": r["seconds"]} for r in record.get("runs", [])]
    return pd.DataFrame(rows).dropna(axis=1, how="all")


CV_METRICS = (("auc", "AUC"), ("accuracy", "accuracy"), ("sensitivity", "sensitivity"), ("specificity", "specificity"),
              ("macro_f1", "macro-F1"), ("ece", "ECE"))


def crossval_table(card: dict) -> pd.DataFrame:
    """The card's cross-validation over the task's own train+val: per metric, the fold models' mean ± SD,
    every out-of-fold image pooled, and the scikit-learn baseline's mean ± SD (empty without one)."""
    cv = card.get("crossval") or {}
    folds, pooled, base = cv.get("own_validation", {}), cv.get("own_pooled", {}), cv.get("baseline", {})
    least = (cv.get("shift") or {}).get("least_typical", {})
    rows = []
    for key, name in CV_METRICS:
        percent = key in ("accuracy", "sensitivity", "specificity")
        value, shifted = pooled.get(key), least.get(key)
        rows.append({"metric": name, "fold models, mean ± SD": mean_sd(folds.get(key), percent),
                     "all out-of-fold images": None if value is None else (f"{value:.1%}" if percent else f"{value:.3f}"),
                     "least typical 20%": None if shifted is None else (f"{shifted:.1%}" if percent else f"{shifted:.3f}"),
                     "baseline, mean ± SD": mean_sd(base.get(key), percent)})
    table = pd.DataFrame(rows)
    table = table.dropna(axis=1, how="all")  # e.g. no shift numbers on a card from before they existed
    return table[table.iloc[:, 1:].notna().any(axis=1)].reset_index(drop=True) if cv else table.iloc[0:0]


def crossval_line(card: dict) -> str:
    """One line of the card's cross-validation over the own train+val (mean ± SD over folds)."""
    cv = card.get("crossval") or {}
    folds, n = cv.get("own_validation", {}), (cv.get("own_pooled") or {}).get("n")
    parts = [f"{name} {mean_sd(folds[key], key in ('accuracy', 'sensitivity', 'specificity'))}"
             for key, name in CV_METRICS if key in folds]
    line = f"cross-validation over {n:,} train+val images, mean ± SD over folds: " + ", ".join(parts)
    base = cv.get("baseline", {})
    return line + (f"; baseline AUC {mean_sd(base['auc'], False)}" if base.get("auc") else "")
