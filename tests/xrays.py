"""A tiny chest X-ray dataset in Kaggle's layout, drawn in code (no files taken from the real set)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def xray_like(rng: np.random.Generator, pneumonia: bool, height: int = 72, width: int = 96) -> np.ndarray:
    """A uint8 picture with two dark 'lungs' on a bright body; pneumonia adds a bright patch in one lung."""
    yy, xx = np.mgrid[:height, :width] / np.array([height, width])[:, None, None]
    body = 170 + 30 * rng.random()
    image = np.full((height, width), body)
    for cx in (0.3, 0.7):
        lung = ((xx - cx) / 0.16) ** 2 + ((yy - 0.5) / 0.32) ** 2 < 1
        image[lung] = 60 + 20 * rng.random()
    if pneumonia:
        patch = ((xx - rng.choice([0.3, 0.7])) / 0.1) ** 2 + ((yy - 0.6) / 0.12) ** 2 < 1
        image[patch] = 150
    return np.clip(image + rng.normal(0, 8, image.shape), 0, 255).astype(np.uint8)


def write_kaggle_layout(root: Path, per_class: int = 12, seed: int = 0) -> Path:
    """root/chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/<Kaggle-style names>, two images per patient; returns
    the chest_xray folder."""
    rng = np.random.default_rng(seed)
    top = root / "chest_xray"
    for split, n in (("train", per_class), ("val", 2), ("test", 4)):
        for folder, pneumonia in (("NORMAL", False), ("PNEUMONIA", True)):
            (top / split / folder).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                patient = (1000 if split == "test" else 0) + i // 2 + (500 if split == "val" else 0)
                name = (f"person{patient}_bacteria_{i}.jpeg" if pneumonia else f"IM-{patient:04d}-{i % 2 + 1:04d}.jpeg")
                Image.fromarray(xray_like(rng, pneumonia)).save(top / split / folder / name, quality=95)
    return top
