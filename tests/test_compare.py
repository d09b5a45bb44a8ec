"""Comparing a task's models from their cards: which cards, the table, sensitivity/specificity, curves."""
from __future__ import annotations

import json
import shutil

import pytest

from medimg_core.reports.compare import compared_cards, comparison_table, sensitivity_specificity, training_curves


@pytest.fixture
def models_dir(tiny_model, tmp_path, monkeypatch):
    """A models folder with the tiny model shipped and one comparison card (a fine-tuned variant)."""
    shutil.copy(tiny_model, tmp_path / "modality.pt")
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    (tmp_path / "modality.json").write_text(json.dumps(card))
    card["training"]["config"]["init"] = "assets/models/other.pt"
    (tmp_path / "comparisons").mkdir()
    (tmp_path / "comparisons" / "modality-finetuned.json").write_text(json.dumps(card))
    (tmp_path / "comparisons" / "pneumonia-x.json").write_text(json.dumps({**card, "task": "pneumonia"}))
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(tmp_path))
    return tmp_path


def test_the_shipped_card_comes_first_then_the_comparisons_of_the_same_task(models_dir):
    cards = compared_cards("modality")
    assert [(c["file"], c["shipped"]) for c in cards] == [("modality.pt", True), ("modality-finetuned.json", False)]
    assert cards[0]["name"] == "compact-cnn (width 16), from scratch, subset of 60/class"
    assert cards[1]["name"] == "compact-cnn (width 16), fine-tuned from other, subset of 60/class"


def test_a_run_that_drew_part_of_its_data_each_epoch_says_so_in_its_name(models_dir):
    card = json.loads((models_dir / "modality.json").read_text())
    card["training"]["config"]["epoch_size"] = 24576
    (models_dir / "comparisons" / "modality-half.json").write_text(json.dumps(card))
    names = [c["name"] for c in compared_cards("modality")]
    assert "compact-cnn (width 16), from scratch, subset of 60/class, 24,576 images an epoch" in names


def test_the_table_puts_models_side_by_side_with_their_card_numbers(models_dir):
    cards = compared_cards("modality")
    table = comparison_table(cards)
    assert len(table) == 2 and table["shipped"].tolist() == [True, False]
    row = table.iloc[0]
    assert row["accuracy"] == cards[0]["validation"]["accuracy"] and row["parameters"] == cards[0]["model"]["parameters"]
    assert row["CPU ms/image"] == cards[0]["speed"]["predict_ms_median"] and row["epochs"] == 3
    assert "sensitivity" not in table  # six classes: no operating threshold


def test_sensitivity_and_specificity_come_from_the_confusion_matrix_at_the_threshold():
    card = {"classes": ["normal", "pneumonia"], "operating_threshold": {"class": "pneumonia"},
            "validation": {"confusion_matrix": [[90, 10], [5, 45]]}}
    assert sensitivity_specificity(card) == (0.9, 0.9)


def test_training_curves_hold_every_recorded_epoch(models_dir):
    curves = training_curves(compared_cards("modality"))
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(curves.metric)
    assert sorted(curves[(curves.metric == "val_loss")].epoch.unique()) == [1, 2, 3]
    assert len(curves[curves.metric == "val_loss"]) == 6  # two models, three epochs


def test_no_cards_means_nothing_to_compare(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(tmp_path))
    assert compared_cards("brain-tumor") == [] and comparison_table([]).empty


def test_a_distilled_run_names_its_teacher(models_dir):
    card = json.loads((models_dir / "modality.json").read_text())
    card["training"]["config"]["teacher"] = "/runs/big/modality.pt"
    (models_dir / "comparisons" / "modality-student.json").write_text(json.dumps(card))
    names = [c["name"] for c in compared_cards("modality")]
    assert "compact-cnn (width 16), from scratch, distilled from big, subset of 60/class" in names


def test_a_teacher_saved_under_another_name_is_named_by_its_file(models_dir):
    card = json.loads((models_dir / "modality.json").read_text())
    card["training"]["config"]["teacher"] = "/runs/teachers/wide-modality.pt"
    (models_dir / "comparisons" / "modality-student.json").write_text(json.dumps(card))
    assert any("distilled from wide-modality" in c["name"] for c in compared_cards("modality"))


def test_a_run_distilled_from_several_teachers_names_them_all(models_dir):
    card = json.loads((models_dir / "modality.json").read_text())
    card["training"]["config"]["teacher"] = ["/runs/t0/modality.pt", "/runs/t1/modality.pt"]
    (models_dir / "comparisons" / "modality-student.json").write_text(json.dumps(card))
    assert any("distilled from an ensemble of 2 (t0, t1)" in c["name"] for c in compared_cards("modality"))


def test_a_run_in_bf16_on_the_cpu_is_named_apart_from_the_same_recipe_on_a_gpu(models_dir):
    card = json.loads((models_dir / "modality.json").read_text())
    card["training"]["config"]["precision"], card["training"]["device"] = "bf16", "cpu"
    (models_dir / "comparisons" / "modality-cpu.json").write_text(json.dumps(card))
    assert "compact-cnn (width 16), from scratch, bf16 on the CPU, subset of 60/class" in [
        c["name"] for c in compared_cards("modality")]


def test_a_run_on_its_own_dataset_alone_is_named_apart_from_one_with_the_other_sources(models_dir):
    card = json.loads((models_dir / "modality.json").read_text())
    card["training"]["config"]["sources"] = False
    (models_dir / "comparisons" / "modality-own.json").write_text(json.dumps(card))
    names = [c["name"] for c in compared_cards("modality")]
    assert "compact-cnn (width 16), from scratch, own dataset only, subset of 60/class" in names
    assert "compact-cnn (width 16), from scratch, subset of 60/class" in names  # the shipped one, with its sources
