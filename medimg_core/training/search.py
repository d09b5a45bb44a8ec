"""Basic hyperparameter search: train a few configurations and compare them on validation.

`search(base, space)` trains the base configuration and, one factor at a time, each other
value in `space` (or every combination with `grid=True`), on the same split. The results
are a table for the Models page; weights are not kept. `medimg search` writes the record into a
run folder (`runs/<task>/<date>-<time>-search/search.json`); `medimg ship` makes it the one the page
reads (`search_path`, in the models folder).
Search on a per-class subset (`max_per_class`) to keep it cheap, then train the chosen
configuration on all the data with `train`.
"""
from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from ..models.checkpoint import models_dir
from ..tasks import get_task
from .train import TrainConfig, train



def parse_bool(value: str) -> bool:
    """true/false, yes/no, on/off, 1/0."""
    if value.lower() in ("true", "yes", "on", "1"):
        return True
    if value.lower() in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{value!r} is not true or false")


# the TrainConfig fields a search may vary, with how to read each from the command line
SEARCHABLE: dict[str, Callable[[str], object]] = {
    "lr": float, "width": int, "augment": parse_bool, "augment_strength": float,
    "init": lambda v: None if v.lower() == "none" else v, "dropout": float, "weight_decay": float,
    "balance": parse_bool, "architecture": str,
}


def parse_space(items: list[str]) -> dict[str, list]:
    """NAME=V1,V2 strings (the CLI's --vary) -> {name: [typed values]}."""
    space = {}
    for item in items:
        name, _, values = item.partition("=")
        name = name.strip().replace("-", "_")
        if name not in SEARCHABLE or not values:
            raise ValueError(f"--vary {item!r}: expected NAME=V1,V2 with NAME one of {', '.join(SEARCHABLE)}")
        try:
            space[name] = [SEARCHABLE[name](v.strip()) for v in values.split(",")]
        except ValueError as err:
            raise ValueError(f"--vary {item!r}: {err}") from None
    return space


def configurations(base: TrainConfig, space: dict[str, list], grid: bool = False) -> list[TrainConfig]:
    """The configurations to train: base plus one change at a time, or the full grid."""
    unknown = set(space) - set(SEARCHABLE)
    if unknown:
        raise ValueError(f"cannot search over {', '.join(sorted(unknown))}; searchable: {', '.join(SEARCHABLE)}")
    if grid:
        keys = list(space)
        return [replace(base, **dict(zip(keys, values))) for values in itertools.product(*(space[k] for k in keys))]
    configs = [base]
    for key, values in space.items():
        configs += [replace(base, **{key: v}) for v in values if v != getattr(base, key)]
    return configs


def changed(cfg: TrainConfig, base: TrainConfig) -> dict:
    """The settings in which cfg differs from base."""
    return {k: getattr(cfg, k) for k in SEARCHABLE if getattr(cfg, k) != getattr(base, k)}


def search(base: TrainConfig, space: dict[str, list], data_path: str | Path | None = None, grid: bool = False,
           command: str = "", progress: bool = True) -> dict:
    """Train each configuration; returns the search record (rows sorted best first)."""
    rows = []
    for i, cfg in enumerate(configurations(base, space, grid), 1):
        label = ", ".join(f"{k}={v}" for k, v in changed(cfg, base).items()) or "base"
        if progress:
            print(f"[{i}] {label}", flush=True)
        _, card = train(replace(cfg, baseline=False), data_path, out=None, progress=progress)
        v = card["validation"]
        rows.append({"changed": changed(cfg, base), "label": label, "accuracy": v["accuracy"], "macro_f1": v["macro_f1"],
                     "auc": v["auc"], "val_loss": min(h["val_loss"] for h in card["training"]["history"]),
                     "best_epoch": card["training"]["best_epoch"], "seconds": card["training"]["seconds"],
                     "parameters": card["model"]["parameters"], "history": card["training"]["history"],
                     "config": asdict(cfg)})
    binary = get_task(base.task).positive_class is not None  # two-class tasks are ranked by AUC, like their epochs
    rows.sort(key=lambda r: (-(r["auc"] or 0) if binary else 0, -r["accuracy"], r["val_loss"]))
    return {"task": base.task, "command": command, "strategy": "grid" if grid else "one factor at a time",
            "base": asdict(base), "space": space, "images": card["data"]["images"], "validation": v["n"],
            "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "runs": rows}


def search_path(task: str) -> Path:
    """Where a task's shipped search record lives (the Models page reads it): <models_dir>/search/<task>.json."""
    return models_dir() / "search" / f"{task}.json"


def write_search(record: dict, path: Path) -> Path:
    """Write the search record as JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def read_search(task: str) -> dict | None:
    """A task's search record, or None when there is none."""
    path = search_path(task)
    return json.loads(path.read_text()) if path.is_file() else None
