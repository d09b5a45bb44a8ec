"""What changes from epoch to epoch of a run: the input size (progressive resizing) and the saved state
that lets a stopped run continue exactly where it was (`train --resume`).

Progressive resizing (as fast.ai's DAWNBench entries trained ImageNet): the early epochs see smaller
inputs, which cost a fraction of the full size, and the last epochs train at the full size, so the
model ends up tuned to the resolution it predicts at. The dataset is held at the full size and each
batch is scaled down on the fly (area averaging, like a smaller export of the same image).

A training state holds the weights, the optimiser, the learning-rate schedule, every random
generator, the history and the epoch; torchvision's reference scripts save the same after every
epoch. Loading it puts all of them back, so a resumed run computes the same losses as one that never
stopped (tests/test_schedule.py).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F

SIZE_STEP = 16  # intermediate sizes are multiples of this many pixels


def size_schedule(epochs: int, final: int, start: int | None = None, final_epochs: int = 0) -> list[int]:
    """The input side of each epoch: `start` rising linearly to `final` over the first epochs, then
    `final_epochs` epochs at `final` (every epoch at `final` when start is None or not smaller)."""
    if not start or start >= final:
        return [final] * epochs
    if not 16 <= start:
        raise ValueError(f"the first progressive size must be at least 16 pixels, not {start}")
    final_epochs = min(max(final_epochs, 1), epochs)
    ramp = epochs - final_epochs
    steps = [start + (final - start) * i / max(1, ramp) for i in range(ramp)]
    return [min(final, max(SIZE_STEP, round(s / SIZE_STEP) * SIZE_STEP)) for s in steps] + [final] * final_epochs


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """An N x C x S x S batch at size x size (area-averaged when smaller); unchanged at its own size."""
    if x.shape[-1] == size:
        return x
    mode = "area" if size < x.shape[-1] else "bilinear"
    return F.interpolate(x, size=(size, size), mode=mode, **({} if mode == "area" else {"align_corners": False}))


def save_state(path: Path, epoch: int, model, opt, sched, generators: dict[str, torch.Generator], history: list,
               best: tuple | None, seconds: float, config: dict) -> None:
    """Write a run's state after `epoch` atomically (a stop mid-write leaves the previous epoch's state)."""
    state = {"epoch": epoch, "model": model.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
             "generators": {name: g.get_state() for name, g in generators.items()}, "torch_rng": torch.get_rng_state(),
             "history": history, "best": best, "seconds": seconds, "config": config}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_state(path: Path, model, opt, sched, generators: dict[str, torch.Generator],
               config: dict) -> tuple[int, list, tuple | None, float]:
    """Put a saved state back into the model, optimiser, schedule and generators; returns (epoch, history,
    best, seconds). Raises ValueError when the saved run was started with other settings."""
    state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: RNG states are not tensors only
    changed = sorted(k for k in set(config) | set(state["config"]) if config.get(k) != state["config"].get(k))
    if changed:
        raise ValueError(f"{path} is the state of a run with other settings ({', '.join(changed)} differ); resume it "
                         "with the command that started it, or start a new run in another folder")
    model.load_state_dict(state["model"])
    opt.load_state_dict(state["optimizer"])
    sched.load_state_dict(state["scheduler"])
    for name, g in generators.items():
        g.set_state(state["generators"][name])
    torch.set_rng_state(state["torch_rng"])
    return state["epoch"], state["history"], state["best"], state["seconds"]
