"""`download --from` checks the file before it replaces anything; the Kaggle chest X-ray zip is packed once."""
from __future__ import annotations

import tarfile
import zipfile
from dataclasses import replace

import numpy as np
import pytest

from medimg_core.data.archive_check import drop_nested_copies
from medimg_core.data.datasets import DataError, download, load_dataset
from medimg_core.tasks import PNEUMONIAMNIST, get_source, get_task
from tests.imagegen import gradient, make_class_folders, png_bytes

MODALITY, PNEUMONIA = get_task("modality"), get_task("pneumonia")


@pytest.fixture
def data(tmp_path, monkeypatch):
    """A data folder that already holds the pneumonia and MedNIST archives (whose bytes must survive a bad file)."""
    monkeypatch.setenv("MEDIMG_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "data"
    folder.mkdir()
    for name in (PNEUMONIA.source.filename, MODALITY.source.filename, PNEUMONIAMNIST.filename):
        (folder / name).write_bytes(b"the data that was there")
    return folder


def untouched(folder) -> bool:
    """Whether every file of the data folder still holds its old bytes, and nothing was added."""
    return all(p.read_bytes() == b"the data that was there" for p in folder.iterdir()) and len(list(folder.iterdir())) == 3


def test_a_text_file_given_as_the_pneumonia_data_is_refused_and_the_old_data_stays(data, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# medimg\n")
    with pytest.raises(DataError, match=r"README.md is not a .tar.gz archive.*was not changed"):
        download(PNEUMONIA, readme, folder=data)
    assert untouched(data)


def test_an_npz_without_medmnist_arrays_is_refused(data, tmp_path):
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(DataError, match="not a MedMNIST file: it has no train_images"):
        download(get_source("pneumoniamnist"), tmp_path / "other.npz", folder=data)
    assert untouched(data)


def test_npz_labels_outside_the_tasks_classes_are_refused(data, tmp_path):
    images, labels = np.zeros((4, 28, 28), np.uint8), np.array([[0], [1], [2], [1]], np.uint8)
    np.savez(tmp_path / "three.npz", train_images=images, train_labels=labels)
    with pytest.raises(DataError, match=r"train_labels run from 0 to 2; task pneumonia has labels 0..1"):
        download(replace(PNEUMONIA, source=PNEUMONIAMNIST), tmp_path / "three.npz", folder=data)
    assert untouched(data)


def test_a_folder_of_other_classes_is_refused(data, tmp_path):
    pets = make_class_folders(tmp_path / "pets", ("cats", "dogs"), per_class=2)
    with pytest.raises(DataError, match="not the modality dataset: its images sit in folders cats, dogs"):
        download(MODALITY, pets, folder=data)
    assert untouched(data)


def test_a_missing_class_is_named(data, tmp_path):
    five = make_class_folders(tmp_path / "MedNIST", MODALITY.classes[:5], per_class=2)
    with pytest.raises(DataError, match=r"\(no images of HeadCT\)"):
        download(MODALITY, five, folder=data)
    assert untouched(data)


def test_a_supplement_without_its_manifest_is_refused(tmp_path):
    folder = make_class_folders(tmp_path / "scan-kinds", ("CXR", "other"), per_class=2)
    with pytest.raises(DataError, match="has no manifest.csv"):
        download(get_source("scan-kinds"), folder, folder=tmp_path / "data")
    assert list((tmp_path / "data").iterdir()) == []


def test_a_right_archive_replaces_the_old_data(data, tmp_path):
    folder = make_class_folders(tmp_path / "MedNIST", MODALITY.classes, per_class=2)
    path = download(MODALITY, folder, folder=data)
    assert len(load_dataset(MODALITY, path)) == 12 and not (data / f"{path.name}.part").exists()


def kaggle_zip(path) -> set[str]:
    """Kaggle's chest X-ray zip in small: chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/, the same again nested in
    chest_xray/chest_xray/, and __MACOSX/ and .DS_Store files. Returns the names one copy holds."""
    image = png_bytes(gradient(40, 56))
    names = {f"chest_xray/{split}/{label}/person{i}_{split}.png"
             for split in ("train", "val", "test") for label in ("NORMAL", "PNEUMONIA") for i in range(2)}
    with zipfile.ZipFile(path, "w") as zf:
        for name in sorted(names):
            zf.writestr(name, image)
            zf.writestr(name.replace("chest_xray/", "chest_xray/chest_xray/", 1), image)
            zf.writestr(f"__MACOSX/{name.rsplit('/', 1)[0]}/._{name.rsplit('/', 1)[1]}", b"\x00\x05\x16\x07")
        zf.writestr("chest_xray/.DS_Store", b"\x00\x00\x00\x01Bud1")
    return names


def test_the_kaggle_chest_xray_zip_is_packed_with_one_copy_of_each_image(data, tmp_path):
    names = kaggle_zip(tmp_path / "archive.zip")
    path = download(PNEUMONIA, tmp_path / "archive.zip", folder=data)
    with tarfile.open(path) as tar:
        assert set(tar.getnames()) == names
    ds = load_dataset(PNEUMONIA, path)
    assert sorted(set(ds.split.tolist())) == ["test", "train", "val"] and len(ds) == 12


def test_drop_nested_copies_keeps_the_outer_copy_only():
    names = ["a/x/1.png", "a/a/x/1.png", "a/a/x/2.png", "b/b.png"]
    assert drop_nested_copies(names) == ["a/x/1.png", "a/a/x/2.png", "b/b.png"]  # a file found only nested stays
