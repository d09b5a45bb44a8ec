"""Training augmentation: its strength knob and its named sets."""
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


def test_the_light_set_moves_and_bends_brightness_but_adds_no_noise_or_texture():
    from medimg_core.data.augment import LIGHT

    flat = torch.full((16, 1, 64, 64), 0.5)
    out = augment_batch(flat, LIGHT, torch.Generator().manual_seed(0))
    centre = out[..., 16:48, 16:48]  # always inside the field of view: zoom >= 0.75, shifts <= 8%, rotations <= 12 deg
    assert centre.std(dim=(1, 2, 3)).max() < 1e-5  # each picture stays flat: one gamma per image, nothing else
    assert centre.mean(dim=(1, 2, 3)).std() > 0.01  # but the gamma differs from image to image


def test_every_augmentation_set_can_be_named_on_the_command_line():
    from medimg_core.cli.parser import get_args_parser
    from medimg_core.data.augment import AUGMENT_SETS

    for name in AUGMENT_SETS:
        assert get_args_parser().parse_args(["train", "--task", "brain-tumor", "--augment-set", name]).augment_set == name
