"""The pneumonia task's data: Kaggle's chest X-ray layout, patients from file names, and squashed inputs."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from medimg_core.data.datasets import load_dataset
from medimg_core.io.imaging import read_image, to_model_input
from medimg_core.data.splits import own_folds, patient_ids, split_train_val
from medimg_core.tasks import get_task
from tests.imagegen import png_bytes
from tests.xrays import write_kaggle_layout

PNEUMONIA = get_task("pneumonia")


@pytest.fixture(scope="module")
def kaggle(tmp_path_factory):
    """A tiny chest_xray folder in Kaggle's layout."""
    return write_kaggle_layout(tmp_path_factory.mktemp("kaggle"))


def test_the_kaggle_layout_is_read_with_upper_case_class_folders_and_its_splits(kaggle):
    ds = load_dataset(PNEUMONIA, kaggle)
    assert ds.classes == ("normal", "pneumonia")
    assert np.bincount(ds.labels).tolist() == [18, 18]
    assert sorted(set(ds.split.tolist())) == ["test", "train", "val"]
    assert all(f.split("/")[-2] == ("PNEUMONIA" if label else "NORMAL") for f, label in zip(ds.files, ds.labels))


@pytest.mark.parametrize("name, patient", [
    ("chest_xray/train/PNEUMONIA/person1000_bacteria_2931.jpeg", "person-1000"),
    ("person7_virus_13.jpeg", "person-7"),
    ("train/NORMAL/IM-0115-0001.jpeg", "IM-0115"),
    ("NORMAL2-IM-0115-0002.jpeg", "IM-0115"),
    ("scan.png", ""),
])
def test_a_file_name_names_its_patient(name, patient):
    assert PNEUMONIA.patient(name) == patient


def test_a_validation_split_never_splits_a_patient(kaggle):
    ds = load_dataset(PNEUMONIA, kaggle)
    patients = patient_ids(ds.files, PNEUMONIA)
    for seed in range(5):
        train, val = split_train_val(ds, 0.3, seed, patients=patients)
        assert len(val) and not set(patients[train]) & set(patients[val])


def test_cross_validation_folds_never_split_a_patient_and_leave_the_test_split_out(kaggle):
    ds = load_dataset(PNEUMONIA, kaggle)
    patients = patient_ids(ds.files, PNEUMONIA)
    folds = own_folds(ds, 3, seed=0, patients=patients)
    for i, fold in enumerate(folds):
        rest = np.concatenate([f for j, f in enumerate(folds) if j != i])
        assert not set(patients[fold]) & set(patients[rest])
    used = np.concatenate(folds)
    assert sorted(used.tolist()) == np.flatnonzero(ds.split != "test").tolist()


def test_the_pneumonia_task_squashes_an_x_ray_to_its_square_input_as_its_training_copy_was():
    wide = np.tile(np.linspace(0, 1, 300, dtype=np.float32), (200, 1))
    squashed = to_model_input(wide, 64, fit=PNEUMONIA.fit)
    assert PNEUMONIA.fit == "squash"
    assert squashed[:, :2].max() < 0.05 and squashed[:, -2:].min() > 0.95  # the ramp spans the square: no bars
    letterboxed = to_model_input(wide, 64)
    assert letterboxed[:8].max() == 0.0  # the default keeps the aspect ratio with black bars


def test_an_x_ray_at_its_own_aspect_ratio_and_its_squashed_copy_get_the_same_answer():
    """A user drops the X-ray as taken (wider than tall); the model learned from squashed square copies."""
    from medimg_core import load_classifier
    from tests.conftest import first_images, shared_file

    clf = load_classifier("pneumonia")
    if clf.spec.fit != "squash":
        pytest.skip("the shipped pneumonia model predates squashed inputs")
    found = first_images(shared_file("chest-xray-pneumonia-224.tar.gz"), n_classes=2, per_class=3)
    for jpegs in found.values():
        for data in jpegs:
            square = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
            as_taken = np.asarray(Image.fromarray(square).resize((448, 320), Image.Resampling.LANCZOS))  # 1.4 : 1
            a, b = clf.predict(read_image(png_bytes(as_taken))), clf.predict(read_image(png_bytes(square)))
            assert abs(a.probabilities["pneumonia"] - b.probabilities["pneumonia"]) < 0.03
            assert a.in_distribution == b.in_distribution


def test_a_card_says_the_validation_split_kept_each_patient_on_one_side_not_the_official_val_folder(kaggle):
    from medimg_core.training.fit import TrainConfig
    from medimg_core.training.train import split_description

    ds = load_dataset(PNEUMONIA, kaggle)
    text = split_description(ds, np.ones(len(ds), bool), PNEUMONIA, TrainConfig(task="pneumonia"))
    assert "each patient's images" in text and "official" not in text
