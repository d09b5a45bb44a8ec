"""Training augmentation: its strength knob."""
from __future__ import annotations

import torch

from medimg_core.data.augment import AugmentConfig, augment_batch, scaled


def test_strength_zero_leaves_images_unchanged():
    x = torch.rand(4, 1, 32, 32)
    out = augment_batch(x, scaled(AugmentConfig(hflip=False), 0.0), torch.Generator().manual_seed(0))
    assert torch.allclose(out, x, atol=1e-5)


def test_half_strength_halves_every_range():
    half = scaled(AugmentConfig(), 0.5)
    assert half.rotate_deg == 6.0 and half.scale == (0.875, 1.075) and half.gamma == (0.85, 1.2)
    assert half.noise_p == 0.15 and half.hflip  # flips are label-preserving or not; strength does not change that


def test_full_strength_changes_images():
    x = torch.rand(4, 1, 32, 32)
    assert not torch.allclose(augment_batch(x, AugmentConfig(), torch.Generator().manual_seed(0)), x)
