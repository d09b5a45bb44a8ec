"""The hyperparameter search: which configurations it trains, and the record it writes."""
from __future__ import annotations

import json

import pytest

from medimg_core.cli.main import main
from medimg_core.training.search import configurations
from medimg_core.training.train import TrainConfig

BASE = TrainConfig(task="modality", lr=1e-3, width=16)


def test_one_factor_at_a_time_changes_a_single_setting_per_run():
    configs = configurations(BASE, {"lr": [1e-3, 3e-3], "width": [24], "augment": [False]})
    assert configs[0] == BASE and len(configs) == 4  # lr=1e-3 is the base value, so it is not trained twice
    assert [(c.lr, c.width, c.augment) for c in configs[1:]] == [(3e-3, 16, True), (1e-3, 24, True), (1e-3, 16, False)]


def test_a_grid_trains_every_combination():
    configs = configurations(BASE, {"lr": [1e-3, 3e-3], "width": [16, 24]}, grid=True)
    assert {(c.lr, c.width) for c in configs} == {(1e-3, 16), (1e-3, 24), (3e-3, 16), (3e-3, 24)}


def test_only_training_settings_can_be_searched():
    with pytest.raises(ValueError, match="cannot search over epochs"):
        configurations(BASE, {"epochs": [1, 2]})


def test_search_command_writes_a_ranked_record_without_keeping_weights(tiny_search):
    record = json.loads(tiny_search.read_text())
    assert record["strategy"] == "one factor at a time" and record["command"].startswith("python -m medimg_core search")
    assert sorted(r["label"] for r in record["runs"]) == ["base", "width=8"]
    accuracies = [r["accuracy"] for r in record["runs"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert all(len(r["history"]) == 1 and r["parameters"] > 0 for r in record["runs"])
    assert list(tiny_search.parent.rglob("*.pt")) == []


def test_a_malformed_search_value_is_a_one_line_error(capsys):
    assert main(["search", "--task", "modality", "--vary", "lr=fast"]) == 2
    assert capsys.readouterr().err.strip() == "error: --vary 'lr=fast': could not convert string to float: 'fast'"
