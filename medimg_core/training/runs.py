"""Run folders: where experiments write, so that no command but `medimg ship` changes the shipped files.

`train` writes `runs/<task>/<date>-<time>/` (cli.run_paths); `search`, `calibrate`, `benchmark` and
`evaluate --record` write there too when they would otherwise change a shipped model or record: they work
on a copy (`writable_model`) and say how to ship it. A run's own model (one outside the shipped folders)
is theirs to update in place. Not here: shipping (ship.py).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from ..models.checkpoint import card_path, models_dir
from ..io.shipped import is_shipped


def new_run_dir(task: str, what: str = "") -> Path:
    """A new run folder `runs/<task>/<date>-<time>[-what]` (relative to the working folder; not created)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return Path("runs") / task / (f"{stamp}-{what}" if what else stamp)


def protected(path: Path) -> bool:
    """Whether a file is one of the shipped ones (assets/, or the models folder in use), which runs never change."""
    return is_shipped(path, (models_dir(),))


def output_path(model: Path, task: str, out: Path | None, what: str) -> Path:
    """Where a command that changes a model (or its card) writes: `out` (a folder, or a .pt file), a new run folder
    `runs/<task>/<date>-<time>-<what>/` when the model is a shipped one, else the model itself (a run's own file)."""
    model = Path(model)
    if out is None and not protected(model):
        return model
    folder = Path(out) if out is not None else new_run_dir(task, what)
    target = folder if folder.suffix == ".pt" else folder / model.name
    if protected(target):
        raise ValueError(f"{target} is a shipped file and runs never write there: give --out a run folder, then make "
                         "it the shipped one with: medimg ship RUN")
    return target


def writable_model(model: Path, task: str, out: Path | None, what: str) -> Path:
    """The model file a command may change (output_path), with the model and its card copied there first."""
    model = Path(model)
    target = output_path(model, task, out, what)
    if target.resolve() == model.resolve():
        return model
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(model, target)
    if card_path(model).is_file():
        shutil.copy2(card_path(model), card_path(target))
    return target


def ship_hint(path: Path) -> str:
    """The sentence that says how to make a run's output the shipped one."""
    return f"the shipped files are unchanged; to ship this: medimg ship {path}"
