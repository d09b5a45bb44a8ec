"""Datasets: download/copy with checksum, every source layout, class errors, splits, cache."""
from __future__ import annotations

import shutil
import tarfile
import zipfile

import numpy as np
import pytest

from medimg_core import get_task
from medimg_core.data.datasets import DataError, dataset_path, download, load_dataset, md5_file
from medimg_core.data.duplicates import duplicate_groups
from medimg_core.data.splits import split_train_val, stratified_sample
from medimg_core.tasks import TASKS
from tests.imagegen import make_class_folders

MODALITY = get_task("modality")


@pytest.fixture
def folder(tmp_path):
    return make_class_folders(tmp_path / "MedNIST", MODALITY.classes, per_class=5)


def test_folder_of_class_folders_loads_with_labels(folder):
    ds = load_dataset(MODALITY, folder)
    assert ds.images.shape == (30, 64, 64) and ds.images.dtype == np.uint8
    assert np.bincount(ds.labels).tolist() == [5] * 6
    assert ds.files[0].startswith("AbdomenCT/")


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archives_load_like_the_folder(folder, tmp_path, kind):
    archive = tmp_path / f"data.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as zf:
            for f in folder.rglob("*.png"):
                zf.write(f, f"MedNIST/{f.relative_to(folder)}")
    else:
        with tarfile.open(archive, "w:gz") as tar:
            tar.add(folder, arcname="MedNIST")
    from_archive, from_folder = load_dataset(MODALITY, archive), load_dataset(MODALITY, folder)
    assert from_archive.fingerprint == from_folder.fingerprint


def test_nested_split_folders_are_accepted(tmp_path):
    root = make_class_folders(tmp_path / "brain-tumor-mri" / "Testing", get_task("brain-tumor").classes, 2, 32)
    ds = load_dataset(get_task("brain-tumor"), root.parent.parent)
    size = get_task("brain-tumor").image_size
    assert ds.images.shape == (8, size, size)


def test_unknown_class_folder_is_a_clear_error(folder):
    shutil.copytree(folder / "Hand", folder / "KneeMRI")
    with pytest.raises(DataError, match="KneeMRI.*Expected folders named: AbdomenCT"):
        load_dataset(MODALITY, folder)


def test_an_unreadable_image_is_named_with_its_reason(folder):
    (folder / "Hand" / "broken.png").write_text("not a picture")
    with pytest.raises(DataError, match=r"^1 image in .* cannot be read, e\.g\. Hand/broken\.png: This file is not an "
                                        r"image we can read"):
        load_dataset(MODALITY, folder)


def test_missing_dataset_says_how_to_download(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))
    with pytest.raises(DataError, match="medimg download modality"):
        load_dataset(MODALITY)


def test_medmnist_npz_reads_each_split(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {f"{s}_images": rng.integers(0, 255, (n, 28, 28), dtype=np.uint8) for s, n in (("train", 6), ("val", 4), ("test", 2))}
    arrays |= {f"{s}_labels": rng.integers(0, 2, (n, 1), dtype=np.uint8) for s, n in (("train", 6), ("val", 4), ("test", 2))}
    path = tmp_path / "pneumoniamnist.npz"
    np.savez(path, **arrays)
    spec = get_task("pneumonia")
    assert len(load_dataset(spec, path, split="test")) == 2
    everything = load_dataset(spec, path)
    assert everything.images.shape == (12, spec.image_size, spec.image_size)
    train, val = split_train_val(everything)
    assert len(train) == 6 and len(val) == 4  # the official split is kept
    with pytest.raises(DataError, match="no 'test' split"):
        np.savez(tmp_path / "small.npz", **{k: v for k, v in arrays.items() if not k.startswith("test")})
        load_dataset(spec, tmp_path / "small.npz", split="test")


def test_split_keeps_exact_duplicates_on_one_side(folder):
    ds = load_dataset(MODALITY, folder)
    ds.images[1] = ds.images[0]  # a duplicate pair in one class
    groups = duplicate_groups(ds.images)
    for seed in range(5):
        train, val = split_train_val(ds, 0.3, seed)
        assert set(train).isdisjoint(val) and len(train) + len(val) == len(ds)
        assert (0 in val) == (1 in val)
        assert len(set(groups[train]) & set(groups[val])) == 0


def test_stratified_sample_is_fixed_and_balanced():
    labels = np.repeat(np.arange(6), 100)
    a, b = stratified_sample(labels, 60, seed=3), stratified_sample(labels, 60, seed=3)
    assert np.array_equal(a, b) and np.bincount(labels[a]).tolist() == [10] * 6


def test_download_from_a_local_copy_checks_the_checksum(folder, tmp_path):
    archive = tmp_path / "src.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="MedNIST")
    target = tmp_path / "cache"
    path = download(MODALITY, archive, folder=target, md5=md5_file(archive))
    assert path == target / "MedNIST.tar.gz" and md5_file(path) == md5_file(archive)
    assert dataset_path(MODALITY, target) == path


def test_a_bad_checksum_leaves_nothing_behind(folder, tmp_path):
    archive = tmp_path / "src.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname="MedNIST")
    target = tmp_path / "cache"
    with pytest.raises(DataError, match="Checksum mismatch"):
        download(MODALITY, archive, folder=target, md5="0" * 32)
    assert list(target.iterdir()) == []


def test_a_folder_is_packed_into_the_tasks_archive(folder, tmp_path):
    path = download(MODALITY, folder, folder=tmp_path / "cache")
    assert len(load_dataset(MODALITY, path)) == 30


def test_no_network_points_to_the_from_option(tmp_path):
    with pytest.raises(DataError, match="--from PATH"):
        download(MODALITY, "http://127.0.0.1:9/MedNIST.tar.gz", folder=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_source_without_public_download_explains_where_to_get_it(tmp_path):
    with pytest.raises(DataError, match="Kaggle"):
        download(get_task("brain-tumor"), folder=tmp_path)


def test_every_task_has_classes_and_a_source():
    for spec in TASKS.values():
        assert spec.num_classes >= 2 and spec.source.filename


# --- the real datasets ---------------------------------------------------------------------

def test_mednist_loads_all_images_with_its_six_classes(mednist):
    ds = load_dataset(MODALITY, mednist)
    assert ds.images.shape[1:] == (64, 64) and len(ds) > 50_000
    assert set(np.unique(ds.labels)) == set(range(6))
    assert load_dataset(MODALITY, mednist).fingerprint == ds.fingerprint  # second read: from the cache


def test_pneumoniamnist_has_its_official_splits():
    from tests.conftest import shared_file

    ds = load_dataset(get_task("pneumonia"), shared_file("pneumoniamnist.npz"))
    size = get_task("pneumonia").image_size
    assert {"train", "val"} <= set(ds.split.tolist()) and ds.images.shape[1:] == (size, size)


def test_npz_evaluation_defaults_to_test_then_val(tmp_path):
    from medimg_core.data.datasets import default_npz_split

    images, labels = np.zeros((2, 28, 28), np.uint8), np.zeros((2, 1), np.uint8)
    np.savez(tmp_path / "dev.npz", train_images=images, train_labels=labels, val_images=images, val_labels=labels)
    np.savez(tmp_path / "full.npz", val_images=images, val_labels=labels, test_images=images, test_labels=labels)
    assert default_npz_split(tmp_path / "dev.npz") == "val"
    assert default_npz_split(tmp_path / "full.npz") == "test"
