"""Cross-validation over a task's own train+val images, the fold ensemble it ships, and test numbers in the card."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from medimg_core import get_task, load_classifier
from medimg_core.cli.main import main
from medimg_core.data.datasets import Dataset
from medimg_core.models.architectures import Ensemble
from medimg_core.data.splits import own_folds

PNEUMONIA = get_task("pneumonia")
MODELS_PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "models.py")


def pneumonia_npz(path: Path, per_split: dict[str, int], seed: int = 0) -> Path:
    """A MedMNIST-style npz of 28 px images: 'pneumonia' ones carry a bright blotch, 'normal' ones do not."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in per_split.items():
        labels = np.arange(n) % 2
        images = rng.integers(20, 90, (n, 28, 28)).astype(np.uint8)
        images[labels == 1, 8:20, 6:14] = 230
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels[:, None]
    np.savez(path, **arrays)
    return path


def labelled(labels: list[int], split: list[str], images: np.ndarray | None = None) -> Dataset:
    """A Dataset of given labels and splits (distinct images unless given)."""
    n = len(labels)
    if images is None:
        images = np.arange(n, dtype=np.uint8)[:, None, None] * np.ones((1, 4, 4), np.uint8)
    return Dataset(images, np.array(labels), [f"{i}.png" for i in range(n)], np.array(split, dtype="<U5"),
                   ("normal", "pneumonia"), "")


@pytest.fixture(scope="module")
def fold_ensemble(tmp_path_factory) -> Path:
    """A one-epoch pneumonia ensemble of 3 fold models, cross-validated over a generated npz's train+val."""
    root = tmp_path_factory.mktemp("own-cv")
    data = pneumonia_npz(root / "pneumoniamnist.npz", {"train": 48, "val": 12, "test": 10})
    out = root / "models" / "pneumonia.pt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDIMG_CACHE_DIR", str(root / "cache"))
        assert main(["train", "--task", "pneumonia", "--data", str(data), "--no-sources", "--folds", "3", "--own-cv",
                     "--ensemble", "--epochs", "1", "--batch-size", "16", "--out", str(out)]) == 0
    return out


def test_own_folds_are_stratified_disjoint_and_cover_train_and_val():
    ds = labelled([0, 1] * 30, ["train"] * 40 + ["val"] * 10 + ["test"] * 10)
    folds = own_folds(ds, 5, seed=0)
    joined = np.concatenate(folds)
    assert len(joined) == len(set(joined)) == 50 and not (ds.split[joined] == "test").any()
    assert all(np.bincount(ds.labels[f], minlength=2).tolist() == [5, 5] for f in folds)


def test_own_folds_are_the_same_for_the_same_seed_and_differ_for_another():
    ds = labelled([0, 1] * 30, ["train"] * 60)
    again = own_folds(ds, 5, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(own_folds(ds, 5, seed=0), again))
    assert not all(np.array_equal(a, b) for a, b in zip(own_folds(ds, 5, seed=1), again))


def test_identical_images_always_share_a_fold():
    images = np.stack([np.full((4, 4), i // 2, np.uint8) for i in range(40)])  # pairs of identical images
    folds = own_folds(labelled([(i // 2) % 2 for i in range(40)], ["train"] * 40, images), 4, seed=0)
    fold_of = {int(i): f for f, members in enumerate(folds) for i in members}
    assert all(fold_of[2 * p] == fold_of[2 * p + 1] for p in range(20))


def test_the_card_gives_each_metric_as_mean_and_spread_over_the_folds(fold_ensemble):
    cv = json.loads(fold_ensemble.with_suffix(".json").read_text())["crossval"]
    for key in ("accuracy", "auc", "sensitivity", "specificity", "ece"):
        assert set(cv["own_validation"][key]) == {"mean", "std"}
    assert cv["own_pooled"]["n"] == 60 and "3-fold stratified" in cv["method"]
    assert set(cv["baseline"]["auc"]) == {"mean", "std"}


def test_the_ensembles_validation_is_every_train_and_val_image_out_of_fold(fold_ensemble):
    card = json.loads(fold_ensemble.with_suffix(".json").read_text())
    assert card["validation"]["n"] == 60 and card["validation"]["what"].startswith("out-of-fold")
    assert "pooled out-of-fold" in card["operating_threshold"]["chosen_by"]
    assert card["calibration"]["method"] == "temperature scaling on pooled out-of-fold predictions"
    assert card["model"]["members"] == 3 and card["training"]["selection"].startswith("last epoch")


def test_the_ensemble_averages_its_members_logits(fold_ensemble):
    model = load_classifier("pneumonia", fold_ensemble).model
    assert isinstance(model, Ensemble) and len(model.members) == 3
    x = torch.rand(2, 1, 64, 64)
    with torch.no_grad():
        mean = torch.stack([m(x) for m in model.members]).mean(0)
        assert torch.allclose(model(x), mean, atol=1e-6)
        assert torch.allclose(model.head(model.features(x)), mean, atol=1e-6)


def test_the_ensemble_predicts_and_explains_like_any_model(fold_ensemble):
    clf = load_classifier("pneumonia", fold_ensemble)
    image = np.random.default_rng(0).random((40, 40), dtype=np.float32)
    pred = clf.predict(image)
    assert pred.closest in PNEUMONIA.classes and sum(pred.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    heat = clf.explain(image)
    size = clf.spec.image_size
    assert heat.shape == (size, size) and 0.0 <= heat.min() and heat.max() <= 1.0


def test_an_ensemble_needs_folds_over_the_own_images(tmp_path, capsys):
    data = pneumonia_npz(tmp_path / "p.npz", {"train": 20, "val": 6})
    assert main(["train", "--task", "pneumonia", "--data", str(data), "--no-sources", "--folds", "2", "--ensemble",
                 "--epochs", "1", "--out", str(tmp_path / "p.pt")]) == 2
    assert "--own-cv" in capsys.readouterr().err


def test_evaluate_record_writes_the_test_numbers_into_the_card(fold_ensemble, tmp_path, capsys):
    model = tmp_path / "pneumonia.pt"
    model.write_bytes(fold_ensemble.read_bytes())
    model.with_suffix(".json").write_text(fold_ensemble.with_suffix(".json").read_text())
    data = pneumonia_npz(tmp_path / "p.npz", {"train": 4, "val": 4, "test": 12}, seed=1)
    assert main(["evaluate", "--task", "pneumonia", "--data", str(data), "--model", str(model), "--record"]) == 0
    test = json.loads(model.with_suffix(".json").read_text())["test"]
    assert test["n"] == 12 and test["data"] == "p.npz, test split" and "--record" in test["command"]


def test_the_models_page_shows_the_cross_validated_estimate_and_test_numbers(fold_ensemble, tmp_path, monkeypatch):
    folder = tmp_path / "models"
    folder.mkdir()
    (folder / "pneumonia.pt").write_bytes(fold_ensemble.read_bytes())
    card = json.loads(fold_ensemble.with_suffix(".json").read_text())
    card["test"] = {"data": "pneumoniamnist.npz, test split", "n": 624, "accuracy": 0.9, "auc": 0.95,
                    "command": "python -m medimg_core evaluate --task pneumonia --record", "date": "2026-11-27"}
    (folder / "pneumonia.json").write_text(json.dumps(card))
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(folder))
    at = AppTest.from_file(MODELS_PAGE, default_timeout=60)
    at.session_state["models_task"] = "pneumonia"
    at.run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert table["test accuracy"].iloc[0] == 0.9 and table["numbers on"].iloc[0].startswith("out-of-fold")
    assert any("Cross-validated estimate" in h.value for h in at.subheader)
    cv = next(d.value for d in at.dataframe if "fold models, mean ± SD" in d.value.columns)
    assert "AUC" in cv["metric"].tolist() and cv["baseline, mean ± SD"].notna().any()
    assert any("624 images of pneumoniamnist.npz, test split" in c.value for c in at.caption)
