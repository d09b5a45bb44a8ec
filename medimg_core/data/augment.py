"""Training-time augmentation on batches of N x 1 x S x S tensors in [0, 1], on any device.

Chosen so that scans from other hospitals, brought to the model's input by `to_model_input`,
still look like training data, and so that no class can be told apart by how its source
exported it: different field of view and zoom, letterboxing of non-square images (black
bars), rotations, random intensity windows, gamma and contrast, a raised background level,
lower resolution and blur, noise, and burned-in text. Random numbers come from the generator
passed in, on the batch's device.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of each random transform (0 or 1 turns one off)."""

    rotate_deg: float = 12.0
    scale: tuple[float, float] = (0.75, 1.15)
    translate: float = 0.08
    squeeze_p: float = 0.3  # chance of an aspect change with black bars (a letterboxed scan)
    squeeze: tuple[float, float] = (0.6, 1.0)
    hflip: bool = True
    contrast: tuple[float, float] = (0.7, 1.3)
    brightness: float = 0.08
    gamma: tuple[float, float] = (0.7, 1.4)
    blur_p: float = 0.2
    noise_p: float = 0.3
    noise_std: float = 0.03
    window_p: float = 0.0  # chance of a random intensity window (another CT window, another export)
    window_low: float = 0.45  # the window's low end is drawn from [0, window_low] ...
    window_high: float = 0.7  # ... and its high end from [window_high, 1]
    lift_p: float = 0.0  # chance of a raised background level (black becomes grey)
    lift: float = 0.35  # largest background level
    lowres_p: float = 0.0  # chance of a lower resolution (down- then up-sampled)
    lowres: tuple[float, float] = (0.3, 0.9)  # the fraction of the side kept
    text_p: float = 0.0  # chance of burned-in text (bright marks along the border)
    dihedral_p: float = 0.0  # chance of a quarter turn or a flip about either axis (slices in another orientation)


# For scans from any hospital: every source-specific trait is randomised (the scan-type task's default).
ACROSS_SOURCES = AugmentConfig(rotate_deg=15.0, scale=(0.7, 1.3), window_p=0.5, lift_p=0.2, lowres_p=0.3, text_p=0.3,
                               dihedral_p=0.25)

# For X-rays of other machines and years (exposure, contrast, processing curve, sharpness, noise, burned-in
# marks) that a task squashes to its square input: zoom mostly inwards and aspect changes without black bars.
XRAY = AugmentConfig(rotate_deg=10.0, scale=(0.9, 1.2), translate=0.06, squeeze_p=0.5, squeeze=(0.85, 1.0),
                     contrast=(0.6, 1.4), brightness=0.1, gamma=(0.6, 1.6), blur_p=0.3, noise_p=0.3, noise_std=0.04,
                     window_p=0.3, window_low=0.2, window_high=0.8, lowres_p=0.3, lowres=(0.4, 0.9), text_p=0.2)

# Geometry and gamma only (flips, rotations, zoom, shifts, gamma): no contrast, brightness, blur, noise or black bars,
# for a task whose own images all come from one archive and its test split from the same one.
LIGHT = AugmentConfig(squeeze_p=0.0, contrast=(1.0, 1.0), brightness=0.0, blur_p=0.0, noise_p=0.0)

AUGMENT_SETS = {"standard": AugmentConfig(), "across-sources": ACROSS_SOURCES, "x-ray": XRAY, "light": LIGHT}


def scaled(cfg: AugmentConfig, strength: float) -> AugmentConfig:
    """The same transforms with every range shrunk towards 'no change' (strength 1: as is, 0: identity)."""
    def toward(value: tuple[float, float], identity: float = 1.0) -> tuple[float, float]:
        return (identity + (value[0] - identity) * strength, identity + (value[1] - identity) * strength)

    return replace(cfg, rotate_deg=cfg.rotate_deg * strength, scale=toward(cfg.scale), translate=cfg.translate * strength,
                   squeeze_p=cfg.squeeze_p * strength, contrast=toward(cfg.contrast), brightness=cfg.brightness * strength,
                   gamma=toward(cfg.gamma), blur_p=cfg.blur_p * strength, noise_p=cfg.noise_p * strength,
                   window_p=cfg.window_p * strength, lift_p=cfg.lift_p * strength, lowres_p=cfg.lowres_p * strength,
                   text_p=cfg.text_p * strength, dihedral_p=cfg.dihedral_p * strength)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Apply random geometric and intensity transforms, independently per image."""
    if cfg.dihedral_p > 0:
        x = dihedral(x, cfg.dihedral_p, gen)
    x = geometry(x, cfg, gen)
    x = intensity(x, cfg, gen)
    x = resolution(x, cfg, gen)
    if cfg.text_p > 0:
        x = burned_in_text(x, cfg.text_p, gen)
    return x


def _uniform(gen: torch.Generator, lo: float, hi: float, n: int) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=gen, device=gen.device)


def _chance(gen: torch.Generator, p: float, n: int) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=gen.device) < p


def dihedral(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """With chance p per image, one of the seven other orientations of the square: quarter turns, and flips
    about either axis or a diagonal (a sagittal slice stored on its side, a flipped export)."""
    n = x.shape[0]
    turns = torch.randint(0, 4, (n,), generator=gen, device=gen.device)
    flip = _chance(gen, 0.5, n)
    chosen = _chance(gen, p, n) & ((turns > 0) | flip)
    out = x.clone()
    for k in range(4):
        for f in (False, True):
            rows = torch.nonzero(chosen & (turns == k) & (flip == f)).flatten()
            if len(rows):
                turned = torch.rot90(x[rows], k, dims=(-2, -1))
                out[rows] = turned.flip(-1) if f else turned
    return out


def geometry(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Rotation, zoom (field of view), shift, letterbox squeeze and flips, in one resampling."""
    n = x.shape[0]
    angle = _uniform(gen, -cfg.rotate_deg, cfg.rotate_deg, n) * math.pi / 180
    scale = _uniform(gen, *cfg.scale, n)
    sx, sy = scale.clone(), scale.clone()
    squeeze = torch.where(_chance(gen, cfg.squeeze_p, n), _uniform(gen, *cfg.squeeze, n), torch.ones_like(scale))
    horizontal = _chance(gen, 0.5, n)
    sx = torch.where(horizontal, sx * squeeze, sx)
    sy = torch.where(horizontal, sy, sy * squeeze)
    if cfg.hflip:
        sx = torch.where(_chance(gen, 0.5, n), -sx, sx)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output to input coordinates, so use the inverse scale
    theta = torch.stack(
        [torch.stack([cos / sx, -sin / sx, _uniform(gen, -cfg.translate, cfg.translate, n) * 2], 1),
         torch.stack([sin / sy, cos / sy, _uniform(gen, -cfg.translate, cfg.translate, n) * 2], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def intensity(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Intensity window, contrast and brightness, gamma, and a raised background level."""
    n = x.shape[0]

    def per_image(values: torch.Tensor) -> torch.Tensor:
        return values.view(n, 1, 1, 1).to(x.dtype)

    windowed = per_image(_chance(gen, cfg.window_p, n))
    low = per_image(_uniform(gen, 0.0, cfg.window_low, n)) * windowed
    high = 1 - per_image(_uniform(gen, 0.0, 1 - cfg.window_high, n)) * windowed
    x = ((x - low) / (high - low)).clamp(0, 1)
    c = per_image(_uniform(gen, *cfg.contrast, n))
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * c + mean + per_image(_uniform(gen, -cfg.brightness, cfg.brightness, n))).clamp(0, 1)
    x = x.pow(per_image(_uniform(gen, *cfg.gamma, n)))
    level = per_image(_uniform(gen, 0.0, cfg.lift, n)) * per_image(_chance(gen, cfg.lift_p, n))
    return level + (1 - level) * x


def resolution(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Lower resolution (one random factor per batch), blur and noise."""
    n, size = x.shape[0], x.shape[-1]
    low = _chance(gen, cfg.lowres_p, n).view(n, 1, 1, 1)
    if bool(low.any()):
        side = max(4, round(size * float(_uniform(gen, *cfg.lowres, 1))))
        small = F.interpolate(x, size=(side, side), mode="area")
        x = torch.where(low, F.interpolate(small, size=(size, size), mode="bilinear", align_corners=False), x)
    blur = _chance(gen, cfg.blur_p, n).view(n, 1, 1, 1)
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], device=x.device, dtype=x.dtype)
    x = torch.where(blur, F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel.div(16).view(1, 1, 3, 3)), x)
    noisy = _chance(gen, cfg.noise_p, n).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, generator=gen, device=x.device, dtype=x.dtype) * cfg.noise_std
    return torch.where(noisy, x + noise, x).clamp(0, 1)


def burned_in_text(x: torch.Tensor, p: float, gen: torch.Generator, lines: int = 3) -> torch.Tensor:
    """Bright rows of glyph-like marks near the top or bottom edge, like the labels scanners burn in."""
    n, size = x.shape[0], x.shape[-1]
    device = x.device
    yy = torch.arange(size, device=device).view(1, size, 1)
    xx = torch.arange(size, device=device).view(1, 1, size)
    marks = torch.zeros(n, size, size, dtype=torch.bool, device=device)
    for _ in range(lines):
        on = _chance(gen, p, n).view(n, 1, 1)
        height = (_uniform(gen, 0.025, 0.06, n) * size).clamp_min(1).view(n, 1, 1)
        top = torch.where(_chance(gen, 0.5, n), _uniform(gen, 0.01, 0.15, n), _uniform(gen, 0.8, 0.95, n)) * size
        left = _uniform(gen, 0.01, 0.6, n).view(n, 1, 1) * size
        length = _uniform(gen, 0.1, 0.35, n).view(n, 1, 1) * size
        pitch = (height * _uniform(gen, 0.8, 1.3, n).view(n, 1, 1)).clamp_min(2)
        in_row = (yy >= top.view(n, 1, 1)) & (yy < top.view(n, 1, 1) + height)
        in_span = (xx >= left) & (xx < left + length)
        glyph = torch.remainder(xx - left, pitch) < pitch * 0.65
        marks |= on & in_row & in_span & glyph
    value = _uniform(gen, 0.6, 1.0, n).view(n, 1, 1, 1).to(x.dtype)
    return torch.where(marks[:, None], value, x)
