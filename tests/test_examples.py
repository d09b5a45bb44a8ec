"""Tests of medimg_core.io.examples: the example scans shipped in assets/examples, their attribution, and the pool merge."""
from __future__ import annotations

import io
import re
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image

from medimg_core import get_task
from medimg_core.models.checkpoint import default_model_path
from medimg_core.data.datasets import dataset_path
from medimg_core.io.examples import ATTRIBUTION, EXAMPLES_DIR, add_pool, read_examples
from medimg_core.tasks import MEDNIST, TASKS

MODALITY = get_task("modality")


def test_the_scan_type_task_ships_two_64px_examples_of_every_class():
    pool = read_examples(MODALITY)
    assert list(pool) == list(MODALITY.classes)
    for name, (images, files) in pool.items():
        assert images.shape == (2, 64, 64) and images.dtype == np.uint8
        assert all(re.fullmatch(rf"modality/{name}/\d{{6}}\.png", f) for f in files), files
        assert images.std() > 10  # real scans, not blank


def test_the_class_is_the_folder_name_and_other_folders_are_ignored(tmp_path):
    hand = next((EXAMPLES_DIR / "modality" / "Hand").glob("*.png"))
    for folder in ("Hand", "NotAClass"):
        (tmp_path / "modality" / folder).mkdir(parents=True)
        shutil.copy(hand, tmp_path / "modality" / folder / "scan.png")
    pool = read_examples(MODALITY, tmp_path)
    assert list(pool) == ["Hand"] and pool["Hand"][1] == ["modality/Hand/scan.png"]


def test_tasks_without_a_folder_have_no_examples():
    assert read_examples(get_task("pneumonia")) == {} and read_examples(get_task("brain-tumor")) == {}


def test_only_mednist_images_ship():
    files = [p for p in EXAMPLES_DIR.rglob("*") if p.is_file() and p != ATTRIBUTION]
    assert files
    for p in files:
        task = p.relative_to(EXAMPLES_DIR).parts[0]
        assert TASKS[task].source == MEDNIST, f"{p} is not a MedNIST image"
        assert p.suffix == ".png" and p.stat().st_size < 10_000


def test_the_attribution_names_source_licence_credits_and_every_original_file():
    text = ATTRIBUTION.read_text()
    assert "CC BY-SA 4.0" in text and "MedNIST" in text and "Bradley J. Erickson" in text
    for credit in ("TCIA", "RSNA Bone Age Challenge", "NIH Chest X-ray"):  # as in tasks.MEDNIST.licence
        assert credit in MEDNIST.licence and credit in text
    for name, (_, files) in read_examples(MODALITY).items():
        for f in files:
            stem = f.rsplit("/", 1)[-1].removesuffix(".png")
            assert f"| `{f}` | `MedNIST/{name}/{stem}.jpeg` |" in text


@pytest.mark.skipif(dataset_path(MODALITY) is None, reason="MedNIST.tar.gz not found in $MEDIMG_DATA_DIR")
def test_each_example_has_the_pixels_of_its_original_mednist_file():
    with tarfile.open(dataset_path(MODALITY)) as archive:
        for name, (images, files) in read_examples(MODALITY).items():
            for image, f in zip(images, files):
                stem = f.rsplit("/", 1)[-1].removesuffix(".png")
                original = Image.open(io.BytesIO(archive.extractfile(f"MedNIST/{name}/{stem}.jpeg").read()))
                assert np.array_equal(np.asarray(original.convert("L")), image)


@pytest.mark.skipif(not default_model_path("modality").is_file(), reason="no modality model installed")
def test_the_shipped_model_names_every_example_right_and_sure():
    from medimg_core import load_classifier

    clf = load_classifier("modality")
    for name, (images, files) in read_examples(MODALITY).items():
        for pred, f in zip(clf.predict_batch([im.astype(np.float32) / 255 for im in images]), files):
            assert (pred.label, pred.in_distribution) == (name, True) and pred.confidence > 0.9, f


def test_a_downloaded_pool_adds_its_images_after_the_examples_without_repeating_them():
    examples = {"Hand": (np.full((2, 4, 4), 1, np.uint8), ["modality/Hand/000001.png", "modality/Hand/000002.png"])}
    pool = {"Hand": (np.arange(3 * 16, dtype=np.uint8).reshape(3, 4, 4),
                     ["MedNIST/Hand/000002.jpeg", "MedNIST/Hand/000007.jpeg", "MedNIST/Hand/000009.jpeg"]),
            "CXR": (np.zeros((1, 4, 4), np.uint8), ["MedNIST/CXR/000003.jpeg"])}
    merged = add_pool(examples, pool)
    images, files = merged["Hand"]
    assert files == ["modality/Hand/000001.png", "modality/Hand/000002.png",
                     "MedNIST/Hand/000007.jpeg", "MedNIST/Hand/000009.jpeg"]
    assert images.shape == (4, 4, 4) and (images[:2] == 1).all() and np.array_equal(images[2:], pool["Hand"][0][1:])
    assert merged["CXR"][1] == ["MedNIST/CXR/000003.jpeg"]
    alone = add_pool(examples, {})
    assert alone["Hand"][1] == examples["Hand"][1] and np.array_equal(alone["Hand"][0], examples["Hand"][0])
