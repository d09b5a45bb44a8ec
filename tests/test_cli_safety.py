"""Runs never change the shipped files; `evaluate --record` records only numbers on images the model never saw."""
from __future__ import annotations

import json
import shutil
import tarfile

import pytest

from medimg_core.cli.main import main
from medimg_core.io.shipped import assets_root
from tests.cli_runs import default_run, folder_digest, kaggle_layout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return default_run(tmp_path_factory)


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A working folder of its own, an empty data folder and a cache of its own (no dataset is read by chance)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MEDIMG_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def shipped_copy(run, isolated, monkeypatch):
    """A models folder ($MEDIMG_MODELS_DIR) whose shipped modality model is the run's."""
    models = isolated / "models"
    models.mkdir()
    for suffix in (".pt", ".json"):
        shutil.copy(run.run / f"modality{suffix}", models / f"modality{suffix}")
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(models))
    return models


@pytest.fixture
def run_model(run, isolated):
    """A copy of the run's model and card, for tests that write into its card."""
    for suffix in (".pt", ".json"):
        shutil.copy(run.run / f"modality{suffix}", isolated / f"modality{suffix}")
    return isolated / "modality.pt"


def test_a_default_train_run_writes_a_run_folder_and_leaves_assets_byte_identical(run):
    assert run.assets_after == run.assets_before and run.assets_before
    assert run.run.parent == run.base / "runs" / "modality"
    assert (run.run / "modality.pt").is_file() and (run.run / "modality.json").is_file()


def test_a_default_search_writes_its_record_into_a_run_folder(run, isolated, capsys):
    before = folder_digest(assets_root())
    assert main(["search", "--task", "modality", "--data", str(run.data), "--no-sources", "--epochs", "1",
                 "--batch-size", "16", "--vary", "lr=0.003"]) == 0  # the base configuration only: one run
    record = next((isolated / "runs" / "modality").glob("*-search/search.json"))
    assert json.loads(record.read_text())["task"] == "modality" and len(json.loads(record.read_text())["runs"]) == 1
    assert folder_digest(assets_root()) == before
    assert f"medimg ship {record.relative_to(isolated)}" in capsys.readouterr().out


def test_calibrating_the_shipped_model_writes_a_recalibrated_copy(run, shipped_copy, isolated, capsys):
    before = folder_digest(shipped_copy)
    assert main(["calibrate", "--task", "modality", "--data", str(run.data)]) == 0
    assert folder_digest(shipped_copy) == before
    copy = next((isolated / "runs" / "modality").glob("*-calibrated/modality.pt"))
    card = json.loads(copy.with_suffix(".json").read_text())
    assert card["training"]["recalibrated"]["command"].startswith("python -m medimg_core calibrate")
    assert f"medimg ship {copy.parent.relative_to(isolated)}" in capsys.readouterr().out


def test_benchmarking_the_shipped_model_updates_a_copy_of_its_card(isolated, monkeypatch):
    monkeypatch.delenv("MEDIMG_MODELS_DIR", raising=False)  # the real shipped models in assets/
    before = folder_digest(assets_root())
    assert main(["benchmark", "--task", "modality", "--repeats", "3"]) == 0
    assert folder_digest(assets_root()) == before
    copy = next((isolated / "runs" / "modality").glob("*-benchmark/modality.json"))
    assert json.loads(copy.read_text())["speed"]["repeats"] == 3


def test_an_out_folder_inside_the_shipped_models_is_refused(run, shipped_copy, capsys):
    before = folder_digest(shipped_copy)
    assert main(["calibrate", "--task", "modality", "--data", str(run.data), "--out", str(shipped_copy)]) == 2
    assert "medimg ship" in capsys.readouterr().err and folder_digest(shipped_copy) == before


def test_evaluate_says_when_it_scores_a_model_on_its_own_training_data(run, run_model, capsys):
    assert main(["evaluate", "--task", "modality", "--data", str(run.data), "--model", str(run_model)]) == 0
    out = capsys.readouterr().out
    assert "note: not a test of this model" in out and "train or val split" in out


def test_record_on_the_models_training_and_validation_images_is_refused_and_changes_nothing(run, run_model, capsys):
    card = run_model.with_suffix(".json").read_bytes()
    assert main(["evaluate", "--task", "modality", "--data", str(run.data), "--model", str(run_model), "--record"]) == 2
    err = capsys.readouterr().err
    assert "not recorded" in err and "nothing was changed" in err
    assert run_model.with_suffix(".json").read_bytes() == card


def test_the_val_split_of_a_kaggle_layout_is_not_test_data(run, run_model, capsys):
    card = run_model.with_suffix(".json").read_bytes()
    assert main(["evaluate", "--task", "modality", "--data", str(run.data), "--split", "val", "--model", str(run_model),
                 "--record"]) == 2
    assert "12 of the 12 images are in their dataset's train or val split" in capsys.readouterr().err
    assert run_model.with_suffix(".json").read_bytes() == card


def test_the_test_split_of_a_kaggle_layout_is_recorded_as_test(run, run_model):
    assert main(["evaluate", "--task", "modality", "--data", str(run.data), "--split", "test", "--model", str(run_model),
                 "--record"]) == 0
    test = json.loads(run_model.with_suffix(".json").read_text())["test"]
    assert test["n"] == 12 and test["data"] == "kaggle, test split" and "--record" in test["command"]
    assert "none of the 12 images" in test["independence"] and len(test["data_fingerprint"]) == 16


def test_a_renamed_copy_of_the_training_images_is_still_refused(run, run_model, isolated, capsys):
    with tarfile.open(isolated / "data" / "MedNIST.tar.gz", "w:gz") as tar:  # the model's training source, by name
        tar.add(run.data, arcname="MedNIST")
    copies = isolated / "copies"
    shutil.copytree(run.data / "train", copies)  # no split folder above the classes: only the pixels tell
    assert main(["evaluate", "--task", "modality", "--data", str(copies), "--model", str(run_model), "--record"]) == 2
    assert "30 of the 30 images are identical to images of MedNIST.tar.gz" in capsys.readouterr().err


def test_recording_a_shipped_models_test_numbers_writes_them_into_a_copy(shipped_copy, isolated, capsys):
    elsewhere = kaggle_layout(isolated / "elsewhere", {"test": 1}, seed=7)
    before = folder_digest(shipped_copy)
    assert main(["evaluate", "--task", "modality", "--data", str(elsewhere), "--split", "test", "--record"]) == 0
    assert folder_digest(shipped_copy) == before
    copy = next((isolated / "runs" / "modality").glob("*-test/modality.json"))
    assert json.loads(copy.read_text())["test"]["n"] == 6
    assert f"medimg ship {copy.parent.relative_to(isolated)}" in capsys.readouterr().out
