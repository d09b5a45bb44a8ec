"""The one place that saves and loads weights and model cards.

A checkpoint (`<task>.pt`) holds only plain types and tensors, so it loads with
`torch.load(path, weights_only=True)`: the task definition, the architecture arguments, the
weights, the calibration temperature and the out-of-distribution statistics. The model card
(`<task>.json` beside it) holds everything a person wants to read: metrics, settings, timing.
Paths and cards need no torch, so torch is imported only where weights are saved or loaded: the
app's home page reads the cards without paying for it.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from ..io.shipped import assets_root
from ..tasks import TaskSpec

if TYPE_CHECKING:
    from torch import nn

FORMAT_VERSION = 1
ASSETS_DIR = assets_root() / "models"  # the checkout's assets/models, or the installed package's


def models_dir() -> Path:
    """Folder of the task models: $MEDIMG_MODELS_DIR, or the shipped assets/models."""
    return Path(os.environ.get("MEDIMG_MODELS_DIR") or ASSETS_DIR)


def default_model_path(task: str) -> Path:
    """Where a task's model lives: <models_dir>/<task>.pt."""
    return models_dir() / f"{task}.pt"


HALF_ABOVE = 1_000_000  # models with more parameters store their weights in float16 (half the file)


def save_checkpoint(path: Path, model: nn.Module, spec: TaskSpec, model_args: dict, extras: dict) -> None:
    """Write the checkpoint atomically (plain types + tensors only).

    A model over HALF_ABOVE parameters stores its floating-point weights in float16; loading casts them
    back to float32 (load_state_dict copies into the model's float32 tensors).
    """
    import torch

    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if sum(v.numel() for v in weights.values() if v.is_floating_point()) > HALF_ABOVE:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
    state = {
        "format": FORMAT_VERSION,
        "task": spec.to_dict(),
        "model_args": dict(model_args),
        "state_dict": weights,
        **extras,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> tuple[nn.Module, TaskSpec, dict]:
    """Rebuild the model in eval mode from a checkpoint; returns (model, spec, raw state)."""
    import torch

    from .architectures import build_model

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}. Train one with: medimg train --task <task>")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a damaged or foreign file
        raise ValueError(f"{path} is not a medimg checkpoint ({type(err).__name__}: {err}).") from err
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise ValueError(f"{path} is not a medimg checkpoint of format {FORMAT_VERSION}.")
    spec = TaskSpec.from_dict(state["task"])
    model = build_model(num_classes=spec.num_classes, **state["model_args"])
    model.load_state_dict(state["state_dict"])
    model.eval()
    return model, spec, state


def card_path(model_path: Path) -> Path:
    """The model card beside a checkpoint."""
    return Path(model_path).with_suffix(".json")


def write_card(model_path: Path, card: dict) -> Path:
    """Write the model card JSON beside the checkpoint."""
    path = card_path(model_path)
    path.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    return path


def read_card(model_path: Path) -> dict:
    """The model card of a checkpoint ({} when there is none)."""
    path = card_path(model_path)
    return json.loads(path.read_text()) if path.is_file() else {}


def record_test(model_path: Path, result: dict, data: str, command: str, independence: str = "") -> dict:
    """Write an evaluation on data the model never saw into its card's 'test' section; returns the section.

    The caller checks that the data is independent of the training (overlap.training_overlap) and passes what the
    check found as `independence`; the evaluated data's fingerprint comes with the result (`data_fingerprint`).
    """
    import time

    keep = ("n", "accuracy", "macro_f1", "auc", "ece", "per_class", "confusion_matrix", "ood_flag_rate", "data_fingerprint")
    section = {"data": data, **{k: result[k] for k in keep if k in result}, "command": command,
               "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **({"independence": independence} if independence else {})}
    card = read_card(model_path)
    card["test"] = section
    write_card(model_path, card)
    return section
