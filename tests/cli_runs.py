"""One tiny scan-type run made through the default command line (no --out), shared by the ship, record and
safety tests; and the helpers they use: a Kaggle-style folder of generated images, a digest of a folder.

Training is slow on a busy machine, so the run is made once per test process (`default_run`).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
from PIL import Image

from medimg_core.io.shipped import assets_root
from medimg_core.tasks import get_task

CLASSES = get_task("modality").classes
SPLITS = {"train": 5, "val": 2, "test": 2}  # generated images per class in each split folder
_MADE: dict[str, SimpleNamespace] = {}


def class_image(c: int, seed: int, size: int = 64) -> np.ndarray:
    """A generated scan of class c: a bright band in the class's place, with noise of its own seed."""
    rng = np.random.default_rng(seed)
    image = np.zeros((size, size), np.uint8)
    image[:, c * size // len(CLASSES): (c + 1) * size // len(CLASSES)] = 200
    return np.clip(image + rng.integers(0, 40, image.shape), 0, 255).astype(np.uint8)


def kaggle_layout(root: Path, splits: dict[str, int] = SPLITS, seed: int = 0) -> Path:
    """<root>/<split>/<class>/<i>.png, every image distinct, as Kaggle lays out a dataset with official splits."""
    for s, (split, n) in enumerate(splits.items()):
        for c, name in enumerate(CLASSES):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                Image.fromarray(class_image(c, seed * 100_000 + s * 10_000 + c * 100 + i)).save(root / split / name / f"{i}.png")
    return root


def folder_digest(root: Path) -> dict[str, str]:
    """SHA-256 of every file under a folder, by relative path."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def default_run(tmp_path_factory) -> SimpleNamespace:
    """A one-epoch modality run on a generated Kaggle-style folder, trained by `medimg train` with no --out.

    Returns data (the folder), run (the run folder it wrote under runs/), base (the working folder it ran in) and
    assets_before / assets_after (digests of the shipped assets around the run).
    """
    if "run" not in _MADE:
        from medimg_core.cli.main import main

        base = tmp_path_factory.mktemp("default-run")
        data = kaggle_layout(base / "kaggle")
        before, cwd = folder_digest(assets_root()), os.getcwd()
        os.chdir(base)
        try:
            rc = main(["train", "--task", "modality", "--data", str(data), "--no-sources", "--epochs", "1",
                       "--batch-size", "16", "--no-baseline"])
        finally:
            os.chdir(cwd)
        assert rc == 0
        runs = sorted((base / "runs" / "modality").iterdir())
        _MADE["run"] = SimpleNamespace(data=data, run=runs[0], base=base, assets_before=before,
                                       assets_after=folder_digest(assets_root()))
    return _MADE["run"]
