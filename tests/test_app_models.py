"""AppTest tests of the Models page: compared models, confusion matrices, curves and the search, from cards."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from medimg_app.cache import shipped_tasks
from medimg_core.reports.compare import compared_cards

PAGE = str(Path(__file__).resolve().parents[1] / "app_pages" / "models.py")


def open_models(task: str) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=60)
    at.session_state["models_task"] = task
    at.run()
    assert not at.exception, at.exception
    return at


@pytest.mark.parametrize("task", shipped_tasks())
def test_each_shipped_task_shows_its_models_side_by_side(task):
    at = open_models(task)
    table = at.dataframe[0].value
    cards = compared_cards(task)
    assert table["model"].tolist() == [c["name"] for c in cards] and table["shipped"].tolist()[0]
    assert table["accuracy"].iloc[0] == cards[0]["validation"]["accuracy"]
    assert {"macro-F1", "AUC", "parameters", "CPU ms/image", "training s"} <= set(table.columns)
    assert len(at.get("plotly_chart")) >= len(cards) + 1  # a confusion matrix per model, and the curves


def test_a_two_class_task_shows_sensitivity_and_specificity():
    if "pneumonia" not in shipped_tasks():
        pytest.skip("no pneumonia model installed")
    table = open_models("pneumonia").dataframe[0].value
    assert table["sensitivity"].iloc[0] > 0.5 and table["specificity"].iloc[0] > 0.5


def test_the_shipped_model_is_judged_on_the_datasets_it_never_saw():
    if "modality" not in shipped_tasks():
        pytest.skip("no modality model installed")
    at = open_models("modality")
    held = compared_cards("modality")[0]["external"]["held_out"]
    text = "\n".join(m.value for m in at.markdown)
    assert f"**{held['right_not_flagged']:.1%}**" in text and f"**{held['foreign_flagged']:.1%}**" in text
    table = next(d.value for d in at.dataframe if "dataset" in d.value.columns)
    assert sorted(table["dataset"]) == sorted(held["per_dataset"])
    assert any("cross-validation by dataset" in c.value for c in at.caption)


def test_a_model_checked_on_one_split_of_held_out_datasets_says_so_plainly():
    method = (compared_cards("brain-tumor")[0].get("external", {}).get("method", "") if "brain-tumor" in shipped_tasks()
              else "")
    if not method.startswith("one split"):
        pytest.skip("the installed brain tumour model was not checked on one split of held-out datasets")
    at = open_models("brain-tumor")
    held = compared_cards("brain-tumor")[0]["external"]["held_out"]
    assert f"**{held['foreign_flagged']:.1%}**" in "\n".join(m.value for m in at.markdown)
    captions = [c.value for c in at.caption if c.value.startswith("one split")]
    assert captions and "values chosen on all folds" not in captions[0]


def test_a_task_without_models_says_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(tmp_path))
    at = open_models("brain-tumor")
    assert "medimg train --task brain-tumor" in at.info[0].value
    assert not at.dataframe


def test_a_recorded_search_is_listed_best_first(tiny_search, tiny_model, monkeypatch):
    folder = tiny_search.parent.parent
    shutil.copy(tiny_model, folder / "modality.pt")
    shutil.copy(tiny_model.with_suffix(".json"), folder / "modality.json")
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(folder))
    at = open_models("modality")
    search = at.dataframe[1].value
    assert sorted(search["change from base"]) == ["base", "width=8"]
    assert search["accuracy"].is_monotonic_decreasing
    assert any("One factor at a time, 2 runs" in m.value for m in at.markdown)


def test_a_damaged_comparison_card_is_a_clear_message_not_a_crash(tiny_model, tmp_path, monkeypatch):
    shutil.copy(tiny_model, tmp_path / "modality.pt")
    shutil.copy(tiny_model.with_suffix(".json"), tmp_path / "modality.json")
    (tmp_path / "comparisons").mkdir()
    (tmp_path / "comparisons" / "modality-broken.json").write_text("{truncated")
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(tmp_path))
    at = open_models("modality")
    assert "cannot be read" in at.error[0].value and not at.dataframe


def test_a_card_that_records_how_an_earlier_estimate_held_up_shows_it_beside_the_new_estimate():
    card = compared_cards("pneumonia")[0] if "pneumonia" in shipped_tasks() else {}
    if not card.get("earlier_estimates"):
        pytest.skip("the installed pneumonia card records no earlier estimate")
    table = next(d.value for d in open_models("pneumonia").dataframe if "test split" in d.value.columns)
    assert table.to_dict("records") == card["earlier_estimates"]
