"""Training-time augmentation on batches of N x 1 x S x S tensors in [0, 1].

Chosen so that full-resolution scans from other hospitals, brought to the model's input by
`to_model_input`, still look like training data: different field of view and zoom,
letterboxing of non-square images (black bars), small rotations, other contrast, gamma,
blur from resampling, and noise.
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


def scaled(cfg: AugmentConfig, strength: float) -> AugmentConfig:
    """The same transforms with every range shrunk towards 'no change' (strength 1: as is, 0: identity)."""
    def toward(value: tuple[float, float], identity: float = 1.0) -> tuple[float, float]:
        return (identity + (value[0] - identity) * strength, identity + (value[1] - identity) * strength)

    return replace(cfg, rotate_deg=cfg.rotate_deg * strength, scale=toward(cfg.scale), translate=cfg.translate * strength,
                   squeeze_p=cfg.squeeze_p * strength, contrast=toward(cfg.contrast), brightness=cfg.brightness * strength,
                   gamma=toward(cfg.gamma), blur_p=cfg.blur_p * strength, noise_p=cfg.noise_p * strength)


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Apply random geometric and intensity transforms, independently per image."""
    n = x.shape[0]

    def uniform(lo: float, hi: float, size: int = n) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(size, generator=gen)

    angle = uniform(-cfg.rotate_deg, cfg.rotate_deg) * math.pi / 180
    scale = uniform(*cfg.scale)
    sx, sy = scale.clone(), scale.clone()
    squeeze = torch.where(torch.rand(n, generator=gen) < cfg.squeeze_p, uniform(*cfg.squeeze), torch.ones(n))
    horizontal = torch.rand(n, generator=gen) < 0.5
    sx = torch.where(horizontal, sx * squeeze, sx)
    sy = torch.where(horizontal, sy, sy * squeeze)
    if cfg.hflip:
        sx = torch.where(torch.rand(n, generator=gen) < 0.5, -sx, sx)
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps output to input coordinates, so use the inverse scale
    theta = torch.stack(
        [torch.stack([cos / sx, -sin / sx, uniform(-cfg.translate, cfg.translate) * 2], 1),
         torch.stack([sin / sy, cos / sy, uniform(-cfg.translate, cfg.translate) * 2], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    c = uniform(*cfg.contrast).view(n, 1, 1, 1)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = ((x - mean) * c + mean + uniform(-cfg.brightness, cfg.brightness).view(n, 1, 1, 1)).clamp(0, 1)
    x = x.pow(uniform(*cfg.gamma).view(n, 1, 1, 1))
    blur = (torch.rand(n, generator=gen) < cfg.blur_p).view(n, 1, 1, 1)
    kernel = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]).div(16).view(1, 1, 3, 3)
    x = torch.where(blur, F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel), x)
    noisy = (torch.rand(n, generator=gen) < cfg.noise_p).view(n, 1, 1, 1)
    noise = torch.randn(x.shape, generator=gen) * cfg.noise_std
    return torch.where(noisy, x + noise, x).clamp(0, 1)
