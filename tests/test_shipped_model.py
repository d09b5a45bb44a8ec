"""The shipped modality model: accuracy on a fixed real sample, its card, and its OOD flag."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medimg_core import get_task
from medimg_core.models.checkpoint import ASSETS_DIR
from medimg_core.data.datasets import load_dataset
from medimg_core.data.splits import stratified_sample
from medimg_core.inference.metrics import compute_metrics
from medimg_core.inference.predict import load_classifier

SHIPPED = ASSETS_DIR / "modality.pt"


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED.is_file():
        pytest.fail(f"the shipped model {SHIPPED} is missing")
    return load_classifier("modality", SHIPPED)


def test_shipped_model_is_at_least_99_percent_on_600_fixed_real_images(shipped, mednist):
    ds = load_dataset(get_task("modality"), mednist)
    idx = stratified_sample(ds.labels, 600, seed=0)
    probs = shipped.infer(torch.from_numpy(ds.images[idx])).probs
    metrics = compute_metrics(probs, ds.labels[idx], shipped.classes)
    assert metrics["n"] == 600
    assert metrics["accuracy"] >= 0.99, metrics["confusion_matrix"]


def test_shipped_card_documents_the_model(shipped):
    card = shipped.card
    assert card["classes"] == list(get_task("modality").classes)
    for key in ("input", "model", "training", "data", "validation", "calibration", "ood", "baseline"):
        assert key in card
    assert card["training"]["command"].startswith("python -m medimg_core train --task modality")
    assert card["model"]["size_mb"] < 5


def test_pictures_that_are_no_scan_are_flagged(shipped):
    from medimg_core.data.synthetic import synthetic_picture

    for kind in ("checkerboard", "stripes", "linear gradient", "smooth noise"):
        picture = synthetic_picture(kind, np.random.default_rng(0))
        assert not shipped.predict(picture).in_distribution, kind


def test_noise_is_flagged_as_out_of_distribution(shipped):
    """The model alone calls uniform noise ChestCT; the picture check before it refuses noise for every task."""
    noise = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    pred = shipped.predict(noise)
    assert not pred.in_distribution and pred.label is None and "random noise" in pred.reason


def test_shipped_pneumonia_model_on_a_fixed_sample_of_its_patient_grouped_validation_split():
    """The shipped pneumonia model on 300 X-rays of patients it never trained on, at its own operating point."""
    from medimg_core.reports.explore import model_split
    from medimg_core.data.splits import patient_ids
    from tests.conftest import shared_file

    path = ASSETS_DIR / "pneumonia.pt"
    if not path.is_file():
        pytest.skip("no pneumonia model is shipped")
    clf = load_classifier("pneumonia", path)
    ds = load_dataset(clf.spec, shared_file("chest-xray-pneumonia-224.tar.gz"))
    split = model_split(ds, clf.card)
    patients = patient_ids(ds.files, clf.spec)
    assert not set(patients[split == "train"]) & set(patients[split == "val"])
    val = np.flatnonzero(split == "val")
    assert len(val) == clf.card["validation"]["n"]
    idx = val[stratified_sample(ds.labels[val], 300, seed=0)]
    probs = clf.infer(torch.from_numpy(ds.images[idx])).probs
    metrics = compute_metrics(probs, ds.labels[idx], clf.classes, clf.label_indices(probs))
    assert metrics["auc"] >= 0.97 and metrics["accuracy"] >= 0.9, metrics
    assert clf.operating_threshold == clf.card["operating_threshold"]["threshold"]


def test_shipped_brain_tumour_model_on_a_fixed_sample_of_its_validation_split():
    from medimg_core.models.checkpoint import ASSETS_DIR
    from medimg_core.reports.explore import model_split
    from tests.conftest import shared_file

    path = ASSETS_DIR / "brain-tumor.pt"
    if not path.is_file():
        pytest.skip("no brain tumour model is shipped")
    clf = load_classifier("brain-tumor", path)
    ds = load_dataset(clf.spec, shared_file("brain-tumor-mri-training.tar.gz"))
    val = np.flatnonzero(model_split(ds, clf.card) == "val")
    idx = val[stratified_sample(ds.labels[val], 400, seed=0)]
    probs = clf.infer(torch.from_numpy(ds.images[idx])).probs
    metrics = compute_metrics(probs, ds.labels[idx], clf.classes)
    assert metrics["n"] == 400 and metrics["accuracy"] >= 0.93, metrics["confusion_matrix"]
    assert clf.card["input"]["size"] == [224, 224] == [clf.spec.image_size] * 2
