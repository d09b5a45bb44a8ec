"""A class at a glance: its mean image, its most typical image, the model's answer and Grad-CAM.

The slide deck (`medimg_core.reports.deck`) and the app's presentation and background pages show these.
Not here: drawing them (`medimg_core.reports.deck_figures`) or the story's text (`medimg_core.reports.story`).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..io.imaging import resize_square

CANDIDATES = 32  # images nearest to a class mean that are tried as its typical example


@dataclass(frozen=True)
class ClassExample:
    """A class at a glance: its mean image, its most typical image, the model's answer and Grad-CAM."""

    name: str
    modality: str
    mean: np.ndarray  # S x S float32 in [0, 1]: average of `n` images
    n: int
    image: np.ndarray  # S x S float32 in [0, 1]: the image closest to the mean that the model gets right
    file: str
    label: str
    confidence: float
    probabilities: dict[str, float] = field(default_factory=dict)
    heat: np.ndarray | None = None  # S x S float32 in [0, 1]: Grad-CAM for `label`
    method: str = "Grad-CAM"


def class_examples(clf, pool: Mapping[str, tuple[np.ndarray, Sequence[str]]],
                   method: str = "Grad-CAM") -> list[ClassExample]:
    """Mean image, typical example and its heatmap of each class.

    Args:
        clf: a `Classifier`; pool: per class, (N x S x S uint8 images, N file names), e.g. validation images.
        method: a CAM method of `medimg_core.inference.explain.CAM_METHODS`.
    Returns:
        one ClassExample per class that has images, in the classifier's class order. The typical example
        is the image nearest (in pixels) to the class mean among those the model labels correctly and
        in-distribution (the nearest image when none of the CANDIDATES nearest is).
    """
    from .explore import mean_images

    out = []
    for c, name in enumerate(clf.classes):
        images, files = pool.get(name, (np.zeros((0, 1, 1), np.uint8), []))
        if not len(images):
            continue
        mean = mean_images(images, np.full(len(images), c), len(clf.classes))[c]
        floats = images.astype(np.float32) / 255.0
        nearest = np.argsort(((floats - mean) ** 2).reshape(len(images), -1).sum(1), kind="stable")[:CANDIDATES]
        preds = clf.predict_batch([floats[i] for i in nearest])
        k = next((k for k, p in enumerate(preds) if p.label == name and p.in_distribution), 0)
        i, pred = int(nearest[k]), preds[k]
        heat = clf.explain(floats[i], method=method, target=pred.closest)
        out.append(ClassExample(name, clf.spec.facts(name).modality, mean, len(images), floats[i], files[i],
                                pred.closest, pred.confidence, dict(pred.probabilities), heat, method))
    return out


def validation_pool(ds, card: Mapping, per_class: int = 300, seed: int = 0) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per class: up to per_class random validation images (the model's own split, from its card) and their files."""
    from .explore import model_split

    val = np.flatnonzero(model_split(ds, dict(card)) == "val")
    rng = np.random.default_rng(seed)
    pool = {}
    for i, name in enumerate(ds.classes):
        ids = np.sort(rng.permutation(val[ds.labels[val] == i])[:per_class])
        pool[name] = (ds.images[ids], [ds.files[j] for j in ids])
    return pool


def upscale(image: np.ndarray, size: int, smooth: bool = True) -> np.ndarray:
    """A square [0, 1] float image resized to size x size (bicubic, or nearest to show pixels)."""
    return resize_square(image, size, Image.Resampling.BICUBIC if smooth else Image.Resampling.NEAREST)


def cam_overlay(example: ClassExample, size: int = 256, opacity: float = 0.5) -> np.ndarray:
    """The example's heatmap coloured over it, size x size x 3 uint8."""
    from ..inference.explain import overlay

    return overlay(upscale(example.image, size), upscale(example.heat, size), opacity)


def showcase(examples: Sequence[ClassExample]) -> ClassExample:
    """The example to show as 'a prediction': the typical example with the most contrast (easiest to see)."""
    return max(examples, key=lambda e: float(np.std(e.image)))
