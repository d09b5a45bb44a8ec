"""Dataset summaries of the explorer: counts, histograms, mean images, outcome filters, the model's split."""
from __future__ import annotations

import numpy as np
import pytest

from medimg_core import get_task
from medimg_core.data.datasets import Dataset, load_dataset
from medimg_core.inference.metrics import compute_metrics
from medimg_core.reports.explore import (OUTCOMES, class_split_counts, confusion_summary, mean_images, mean_intensity,
                                 model_split, outcome_mask, pixel_histograms, sample_indices)
from medimg_core.training.train import TrainConfig, train
from tests.imagegen import make_class_folders

CLASSES = get_task("modality").classes


def toy_dataset(per_class: int = 5, size: int = 8) -> Dataset:
    """Class c's images are filled with the value 40*c (so every statistic is known)."""
    labels = np.repeat(np.arange(len(CLASSES)), per_class)
    images = np.stack([np.full((size, size), 40 * c, np.uint8) for c in labels])
    files = [f"{CLASSES[c]}/{i}.png" for i, c in enumerate(labels)]
    return Dataset(images, labels, files, np.full(len(labels), "", "<U5"), CLASSES, "toy")


def test_class_split_counts_lists_every_class_and_split():
    labels = np.array([0, 0, 1, 2, 2, 2])
    splits = np.array(["train", "val", "train", "train", "train", "unused"])
    df = class_split_counts(labels, splits, CLASSES)
    table = df.pivot(index="class", columns="split", values="images")
    assert list(table.index) == sorted(CLASSES)  # pivot sorts; every class is there, even without images
    assert table.loc["AbdomenCT", "train"] == 1 and table.loc["AbdomenCT", "val"] == 1
    assert table.loc["CXR", "train"] == 2 and table.loc["CXR", "unused"] == 1
    assert table.loc["HeadCT"].sum() == 0
    assert df["images"].sum() == len(labels)
    assert list(df["split"].unique()) == ["train", "val", "unused"]  # train, val, ... in a fixed order


def test_pixel_histograms_are_per_class_fractions():
    ds = toy_dataset()
    edges, hist = pixel_histograms(ds.images, ds.labels, len(CLASSES), bins=32)
    assert edges[0] == 0 and edges[-1] == 256 and len(edges) == 33
    assert hist.shape == (6, 32)
    np.testing.assert_allclose(hist.sum(1), 1.0)
    for c in range(6):  # all pixels of class c sit in the bin of value 40*c
        assert hist[c, 40 * c // 8] == 1.0


def test_pixel_histograms_of_a_class_without_images_are_zero():
    ds = toy_dataset()
    keep = ds.labels != 3
    _, hist = pixel_histograms(ds.images[keep], ds.labels[keep], 6)
    assert hist[3].sum() == 0


def test_mean_images_and_mean_intensity():
    ds = toy_dataset()
    means = mean_images(ds.images, ds.labels, 6, chunk=7)  # chunks that split classes
    assert means.shape == (6, 8, 8) and means.dtype == np.float32
    np.testing.assert_allclose(means[:, 0, 0], np.arange(6) * 40 / 255, rtol=1e-6)
    np.testing.assert_allclose(mean_intensity(ds.images, chunk=4), ds.labels * 40 / 255, rtol=1e-6)


def test_outcome_masks():
    labels = np.array([0, 1, 2, 0])
    preds = np.array([0, 2, 2, 1])
    conf = np.array([0.99, 0.5, 0.7, 0.95])
    ood = np.array([False, False, True, False])
    got = {o: outcome_mask(o, labels, preds, conf, ood, low_confidence=0.8).tolist() for o in OUTCOMES}
    assert got == {"all": [True] * 4, "correct": [True, False, True, False], "wrong": [False, True, False, True],
                   "low confidence": [False, True, True, False], "out-of-distribution": [False, False, True, False]}
    with pytest.raises(ValueError, match="unknown outcome"):
        outcome_mask("maybe", labels, preds, conf, ood)


def test_sample_indices_is_a_seeded_subset():
    mask = np.arange(100) % 3 == 0
    a, b = sample_indices(mask, 10, seed=1), sample_indices(mask, 10, seed=1)
    assert len(a) == 10 and len(set(a.tolist())) == 10 and mask[a].all()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, sample_indices(mask, 10, seed=2))
    assert len(sample_indices(mask, 1000)) == mask.sum()
    assert len(sample_indices(np.zeros(5, bool), 3)) == 0


def test_confusion_summary_agrees_with_compute_metrics():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, 300)
    preds = np.where(rng.random(300) < 0.8, labels, rng.integers(0, 6, 300))
    cm, table = confusion_summary(labels, preds, CLASSES)
    probs = np.eye(6)[preds]
    ref = compute_metrics(probs, labels, CLASSES, preds)
    assert cm.tolist() == ref["confusion_matrix"]
    for name in CLASSES:
        assert table.loc[name, "f1"] == pytest.approx(ref["per_class"][name]["f1"])
        assert table.loc[name, "support"] == ref["per_class"][name]["support"]
    assert table["f1"].mean() == pytest.approx(ref["macro_f1"])


def test_model_split_without_a_card_uses_the_dataset_split():
    ds = toy_dataset()
    ds.split[:3] = "test"
    assert model_split(ds, {}).tolist() == ["test"] * 3 + ["unused"] * (len(ds) - 3)


def test_model_split_keeps_an_official_test_split():
    """A MedMNIST-style set: the official train/val are the model's; test images stay "test"."""
    ds = toy_dataset(per_class=4)
    ds.split[:] = np.tile(["train", "train", "val", "test"], len(ds) // 4)
    card = {"training": {"config": {"seed": 0, "val_fraction": 0.1, "max_per_class": None}}}
    np.testing.assert_array_equal(model_split(ds, card), ds.split)
    card["training"]["config"]["max_per_class"] = 2  # two images per class kept: the rest is unused (test stays test)
    split = model_split(ds, card)
    assert ((split == "train") | (split == "val")).sum() <= 2 * 6
    assert (split[ds.split == "test"] == "test").all()
    assert set(split[ds.split != "test"].tolist()) <= {"train", "val", "unused"} and (split == "unused").any()


@pytest.mark.parametrize("max_per_class", [None, 9])
def test_model_split_reproduces_the_training_validation_set(tmp_path, max_per_class):
    """The recomputed 'val' images are exactly the card's validation set (also for a max_per_class subset)."""
    folder = make_class_folders(tmp_path / "data", CLASSES, per_class=12)
    cfg = TrainConfig(task="modality", epochs=1, batch_size=32, max_per_class=max_per_class, baseline=False, seed=3,
                      sources=False)
    clf, card = train(cfg, data_path=folder, progress=False)
    ds = load_dataset(get_task("modality"), folder)
    split = model_split(ds, card)
    assert (split == "val").sum() == card["data"]["validation"]
    assert (split == "train").sum() == card["data"]["train"]
    assert (split == "unused").sum() == len(ds) - card["data"]["train"] - card["data"]["validation"]  # "images": all read
    import torch

    val = split == "val"
    probs = clf.infer(torch.from_numpy(ds.images[val])).probs
    assert compute_metrics(probs, ds.labels[val], CLASSES)["confusion_matrix"] == card["validation"]["confusion_matrix"]


def toy_pool() -> Dataset:
    """toy_dataset (distinct images) as the own 'mednist' images, then two scans of hospital-a, one of
    hospital-b and two 'other' images."""
    own = toy_dataset(per_class=10)
    own.images[:, 0, 0] = np.arange(len(own))  # every image distinct: no duplicate groups
    labels = np.array([3, 3, 0, len(CLASSES), len(CLASSES)])
    images = np.stack([np.full((8, 8), 7 + i, np.uint8) for i in range(len(labels))])
    return Dataset(np.concatenate([own.images, images]), np.concatenate([own.labels, labels]),
                   own.files + [f"scan-kinds/x/{i}.png" for i in range(len(labels))], np.full(len(own) + 5, "", "<U5"),
                   CLASSES, "pool", np.array(["mednist"] * len(own) + ["hospital-a"] * 2 + ["hospital-b"] + ["knees"] * 2))


POOL_CARD = {"task": "modality", "training": {"config": {"seed": 0, "val_fraction": 0.2, "max_per_class": None,
                                                         "held_out": [], "sources": True}}}


def test_model_split_on_a_pool_splits_the_own_images_as_in_training_and_trains_on_the_others():
    pool = toy_pool()
    mine = pool.origin == "mednist"
    split = model_split(pool, POOL_CARD)
    np.testing.assert_array_equal(split[mine], model_split(pool.subset(np.flatnonzero(mine)), POOL_CARD))
    assert (split[mine] == "val").sum() == 6 * 2 and (split[~mine] == "train").all()


def test_model_split_on_a_pool_validates_the_datasets_the_card_holds_out():
    pool = toy_pool()
    card = {**POOL_CARD, "training": {"config": {**POOL_CARD["training"]["config"], "held_out": ["hospital-a", "knees"]}}}
    split = model_split(pool, card)
    assert (split[np.isin(pool.origin, ["hospital-a", "knees"])] == "val").all()
    assert (split[pool.origin == "hospital-b"] == "train").all()
    own = pool.subset(np.flatnonzero(pool.origin == "mednist"))
    assert set(model_split(own, card).tolist()) == {"train", "val"}  # held-out datasets absent: no error


def test_model_split_of_a_model_trained_on_its_own_dataset_only_leaves_the_others_unused():
    pool = toy_pool()
    card = {**POOL_CARD, "training": {"config": {**POOL_CARD["training"]["config"], "sources": False}}}
    split = model_split(pool, card)
    assert (split[pool.origin != "mednist"] == "unused").all() and (split[pool.origin == "mednist"] != "unused").all()
