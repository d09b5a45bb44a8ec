"""Each class at a glance (medimg_core.reports.class_examples): the validation pool, the showcase, the Grad-CAM overlay."""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from medimg_core.reports.class_examples import cam_overlay, showcase, upscale, validation_pool
from medimg_core.data.datasets import Dataset
from tests.test_deck import fake_examples


def test_validation_pool_takes_only_validation_images_of_each_class():
    labels = np.array([0, 0, 0, 1, 1, 1])
    split = np.array(["train", "val", "val", "val", "train", "test"])
    ds = Dataset(np.arange(6, dtype=np.uint8).reshape(6, 1, 1).repeat(4, 1).repeat(4, 2), labels,
                 [f"f{i}.png" for i in range(6)], split, ("a", "b"), "fake")
    pool = validation_pool(ds, {}, per_class=5)  # a card without a training config: the dataset's own split
    assert pool["a"][1] == ["f1.png", "f2.png"] and pool["b"][1] == ["f3.png"]
    assert pool["a"][0].shape == (2, 4, 4) and len(validation_pool(ds, {}, per_class=1)["a"][1]) == 1


def test_showcase_is_the_example_with_most_contrast():
    examples = fake_examples(3)
    flat = replace(examples[1], image=np.full((64, 64), 0.5, np.float32))
    assert showcase([flat, examples[2]]) is examples[2]


def test_cam_overlay_and_upscale_give_images_of_the_asked_size():
    example = fake_examples(1)[0]
    overlay = cam_overlay(example, 96)
    assert overlay.shape == (96, 96, 3) and overlay.dtype == np.uint8
    big = upscale(example.image, 128)
    assert big.shape == (128, 128) and 0 <= big.min() <= big.max() <= 1
