"""Acquisition traits of images, and a validation split that holds out the least typical patients.

A random (even patient-grouped) validation split is drawn from the same machines, settings and
months as training, so it cannot see a shift in how images were taken: the pneumonia model's
out-of-fold accuracy was 95.9% and its accuracy on the official test split (other patients, a later
time) 88.6%. The traits here are what an X-ray's acquisition leaves in its pixels: exposure,
contrast, how much of the frame is black or burned out, noise, sharpness, the border, and bright
burned-in marks. `atypical_split` holds out the patients whose images are furthest from the typical
image by those traits (robust z-scores, per patient), class by class, so validation sees images
taken unlike most training images. It is a proxy for a shift, not the shift itself.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

TRAITS = ("exposure", "contrast", "dark_share", "bright_share", "noise", "sharpness", "border", "marks")


def acquisition_traits(images: np.ndarray, batch: int = 512) -> np.ndarray:
    """N x len(TRAITS) values of an N x S x S uint8 stack (see TRAITS; each in comparable units within a set)."""
    out = []
    for start in range(0, len(images), batch):
        x = torch.from_numpy(images[start : start + batch]).float().div(255)[:, None]
        n, s = x.shape[0], x.shape[-1]
        flat = x.reshape(n, -1)
        smooth = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        residual = (x - smooth).abs().reshape(n, -1)
        gy, gx = x[..., 1:, :-1] - x[..., :-1, :-1], x[..., :-1, 1:] - x[..., :-1, :-1]
        band = max(1, round(s * 0.08))
        frame = torch.ones(s, s, dtype=torch.bool)
        frame[band:-band, band:-band] = False
        border = x[:, 0][:, frame]
        out.append(torch.stack([
            flat.mean(1), flat.std(1), (flat < 0.05).float().mean(1), (flat > 0.95).float().mean(1),
            residual.median(1).values, (gx.square() + gy.square()).sqrt().reshape(n, -1).mean(1),
            border.mean(1), (border > 0.9).float().mean(1),
        ], 1))
    return torch.cat(out).numpy() if out else np.zeros((0, len(TRAITS)), np.float32)


def robust_z(values: np.ndarray) -> np.ndarray:
    """Each column centred on its median and scaled by its MAD (x 1.4826, the SD of a normal distribution), or by
    its SD where most values are equal (e.g. burned-out pixels, which most images have none of)."""
    median = np.median(values, 0)
    scale = np.median(np.abs(values - median), 0) * 1.4826
    scale = np.where(scale > 0, scale, values.std(0))
    return (values - median) / np.where(scale > 0, scale, 1.0)


def atypicality(traits: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Per image: how far its group's (patient's) mean trait vector lies from the typical image (root mean
    square of the robust z-scores; images of one group share the value)."""
    z = robust_z(traits)
    ids, inverse = np.unique(groups, return_inverse=True)
    sums = np.zeros((len(ids), z.shape[1]))
    np.add.at(sums, inverse, z)
    means = sums / np.bincount(inverse)[:, None]
    return np.sqrt((means**2).mean(1))[inverse]


def atypical_split(images: np.ndarray, labels: np.ndarray, groups: np.ndarray, fraction: float,
                   num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) positions: in each class, the groups (patients, duplicates) furthest from the typical
    image until `fraction` of the class's images validate; images of other labels all train."""
    score = atypicality(acquisition_traits(images), groups)
    val = []
    for c in range(num_classes):
        mine = np.flatnonzero(labels == c)
        first = np.unique(groups[mine], return_index=True)[1]
        ranked = mine[first][np.argsort(-score[mine[first]], kind="stable")]  # one image per group, least typical first
        sizes = np.array([(groups[mine] == groups[i]).sum() for i in ranked])
        take = ranked[: int(np.searchsorted(np.cumsum(sizes), fraction * len(mine))) + 1]
        val.append(mine[np.isin(groups[mine], groups[take])])
    val_idx = np.sort(np.concatenate(val)) if val else np.zeros(0, np.int64)
    known = np.flatnonzero(labels < num_classes)
    return np.setdiff1d(known, val_idx), val_idx
