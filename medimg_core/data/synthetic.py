"""Pictures of nothing medical, generated in code: blank and near-blank frames, noise, gradients,
checkerboards, stripes and shapes.

A foreign source ('synthetic') that teaches a model's rejection output that such pictures are no
scan, and a check of it in `benchmarks/ood_check.py`. Training and the benchmark draw with
different seeds, so the benchmark never shows a model the pictures it trained on.
"""
from __future__ import annotations

import numpy as np

from ..io.folders import SourceImages
from ..io.imaging import to_model_input, to_uint8

KINDS = ("uniform noise", "smooth noise", "linear gradient", "radial gradient", "checkerboard", "stripes", "discs",
         "blank", "near-blank", "gaussian noise")
TRAINING_SEED = 12345


def synthetic_picture(kind: str, rng: np.random.Generator, size: int = 96) -> np.ndarray:
    """One size x size float32 picture in [0, 1] of the given kind."""
    yy, xx = np.mgrid[:size, :size] / size
    if kind == "uniform noise":
        im = rng.random((size, size)) * rng.uniform(0.3, 1) + rng.uniform(0, 0.3)
    elif kind == "blank":  # one grey level, black and white included
        im = np.full((size, size), rng.choice([0.0, 1.0, rng.uniform(0, 1)]))
    elif kind == "near-blank":  # one level with faint noise, as a blank frame saved through JPEG
        im = rng.uniform(0, 1) + rng.normal(0, rng.uniform(0.002, 0.02), (size, size))
    elif kind == "gaussian noise":
        im = rng.normal(rng.uniform(0.3, 0.7), rng.uniform(0.05, 0.3), (size, size))
    elif kind == "smooth noise":
        small = rng.random((rng.integers(3, 12),) * 2)
        im = np.kron(small, np.ones((size // len(small) + 1,) * 2))[:size, :size]
    elif kind == "linear gradient":
        a = rng.uniform(0, 2 * np.pi)
        im = (np.cos(a) * xx + np.sin(a) * yy) % 1.0
    elif kind == "radial gradient":
        cx, cy = rng.uniform(0.2, 0.8, 2)
        im = np.clip(1 - np.hypot(xx - cx, yy - cy) * rng.uniform(1, 3), 0, 1)
    elif kind == "checkerboard":
        k = rng.integers(2, 12)
        im = ((np.floor(xx * k) + np.floor(yy * k)) % 2).astype(float)
    elif kind == "stripes":
        a, k = rng.uniform(0, np.pi), rng.integers(2, 16)
        im = (np.sin((np.cos(a) * xx + np.sin(a) * yy) * k * np.pi) > 0).astype(float)
    else:
        im = np.zeros((size, size))
        for _ in range(rng.integers(1, 5)):
            cx, cy, r = rng.uniform(0.15, 0.85, 3)
            im[((xx - cx) ** 2 + (yy - cy) ** 2) < (r / 2) ** 2] = rng.uniform(0.3, 1)
    return np.clip(im, 0, 1).astype(np.float32)


def synthetic_pictures(n: int, seed: int = 0, size: int = 96) -> list[np.ndarray]:
    """n pictures, the kinds in turn."""
    rng = np.random.default_rng(seed)
    return [synthetic_picture(KINDS[i % len(KINDS)], rng, size) for i in range(n)]


def synthetic_source(size: int, n: int = 600, seed: int = TRAINING_SEED, native: int | None = None,
                     fit: str = "letterbox") -> SourceImages:
    """The 'synthetic' foreign source: n pictures at the model's input, as a dataset of its own."""
    images = np.stack([to_uint8(to_model_input(im, size, native, fit)) for im in synthetic_pictures(n, seed)])
    names = [f"synthetic/{KINDS[i % len(KINDS)].replace(' ', '-')}/{i}.png" for i in range(n)]
    kinds = np.array([KINDS[i % len(KINDS)] for i in range(n)])
    return SourceImages(images, np.full(n, "other"), names, np.full(n, "synthetic"), kinds, np.full(n, "", "<U5"), [])
