"""Cross-validation by dataset, open-set evaluation with an other/ folder, and the CLI's words for a flagged image."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medimg_core import get_task, load_classifier
from medimg_core.cli.main import main
from medimg_core.training.train import resolve_device
from tests.imagegen import make_class_folders
from tests.test_sources import make_supplement

MODALITY = get_task("modality")


@pytest.fixture(scope="module")
def crossvalidated(tmp_path_factory):
    """A one-epoch modality model cross-validated in 2 folds on generated images and a generated supplement."""
    root = tmp_path_factory.mktemp("crossval")
    data = root / "downloads"
    data.mkdir()
    make_supplement(data / "scan-kinds.tar.gz")
    own = make_class_folders(root / "MedNIST", MODALITY.classes, per_class=10)
    out = root / "models" / "modality.pt"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDIMG_DATA_DIR", str(data))
        mp.setenv("MEDIMG_CACHE_DIR", str(root / "cache"))
        assert main(["train", "--task", "modality", "--data", str(own), "--folds", "2", "--epochs", "1",
                     "--batch-size", "16", "--max-foreign-per-dataset", "8", "--no-baseline", "--out", str(out)]) == 0
    return out


def test_cross_validation_records_every_held_out_dataset_in_the_card(crossvalidated):
    card = json.loads(crossvalidated.with_suffix(".json").read_text())
    external = card["external"]
    held = sorted(name for fold in external["folds"] for name in fold)
    assert held == sorted(external["held_out"]["per_dataset"]) and "mednist" not in held
    assert {"hospital-a", "knees", "synthetic"} <= set(held)
    assert external["held_out"]["in_kind"] == 12 and external["held_out"]["foreign"] == 7 + 8
    assert len(external["per_fold"]) == 2 and {"accuracy", "in_kind_flagged", "ece"} <= set(external["own_validation"])


def test_the_shipped_model_takes_the_values_chosen_by_cross_validation(crossvalidated):
    card = json.loads(crossvalidated.with_suffix(".json").read_text())
    clf = load_classifier("modality", crossvalidated)
    chosen = card["rejection"]
    assert clf.rejects and card["model"]["outputs"][-1] == "other"
    assert clf.temperature == pytest.approx(chosen["temperature"])
    assert clf.ood.other_threshold == chosen["other_threshold"] and clf.ood.distance_factor == chosen["distance_factor"]
    assert card["ood"]["chosen_by"] == "cross-validation by dataset" and card["data"]["held_out"] == []


def test_evaluate_with_an_other_folder_reports_flags_and_a_table_per_dataset(crossvalidated, tmp_path, capsys):
    folder = make_class_folders(tmp_path / "eval", ("Hand", "ChestCT", "other"), per_class=3)
    (folder / "manifest.csv").write_text("file,dataset\n" + "".join(
        f"{c}/{i}.png,{'site-1' if i < 2 else 'site-2'}\n" for c in ("Hand", "ChestCT", "other") for i in range(3)))
    assert main(["evaluate", "--task", "modality", "--data", str(folder), "--model", str(crossvalidated)]) == 0
    out = capsys.readouterr().out
    assert main(["evaluate", "--task", "modality", "--data", str(folder), "--model", str(crossvalidated), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 6 and sum(map(sum, result["confusion_matrix"])) == 6  # the class metrics: own kinds only
    open_set = result["open_set"]
    assert open_set["in_kind"] == 6 and open_set["foreign"] == 3 and 0 <= open_set["foreign_flagged"] <= 1
    assert set(open_set["per_dataset"]) == {"site-1", "site-2"} and open_set["per_dataset"]["site-2"]["n"] == 3
    assert "site-1" in out and "right, not flagged" in out


def test_evaluate_refuses_a_folder_with_only_other_images(crossvalidated, tmp_path, capsys):
    folder = make_class_folders(tmp_path / "eval", ("other",), per_class=2)
    assert main(["evaluate", "--task", "modality", "--data", str(folder), "--model", str(crossvalidated)]) == 2
    assert "only images in other/" in capsys.readouterr().err


def test_a_model_without_foreign_images_rejects_an_other_folder_only_by_distance(tiny_single_source, tmp_path, capsys):
    folder = make_class_folders(tmp_path / "eval", ("Hand", "other"), per_class=2)
    assert main(["evaluate", "--task", "modality", "--data", str(folder), "--model", str(tiny_single_source), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["open_set"]["foreign"] == 2 and not load_classifier("modality", tiny_single_source).rejects


@pytest.fixture(scope="module")
def tiny_single_source(tmp_path_factory):
    """A one-epoch modality model trained on its own (generated) dataset only."""
    root = tmp_path_factory.mktemp("single")
    own = make_class_folders(root / "MedNIST", MODALITY.classes, per_class=6)
    out = root / "modality.pt"
    assert main(["train", "--task", "modality", "--data", str(own), "--epochs", "1", "--batch-size", "16",
                 "--no-sources", "--no-baseline", "--out", str(out)]) == 0
    return out


def test_the_pneumonia_model_flags_a_hand_x_ray(scans):
    from medimg_core import read_image

    pred = load_classifier("pneumonia").predict(read_image(scans["Hand"]))
    assert not pred.in_distribution and pred.other_probability is not None


def test_predict_says_not_recognised_without_a_label_for_a_flagged_image(scans, tmp_path, capsys):
    hand = tmp_path / "hand.jpeg"
    hand.write_bytes(scans["Hand"])
    assert main(["predict", "--task", "pneumonia", str(hand)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[0]
    assert "not recognised, so no label (closest: " in line
    assert "normal (" not in line and "pneumonia (" not in line and "threshold" not in line


def test_predict_json_keeps_the_closest_label_and_the_flag(scans, tmp_path, capsys):
    hand = tmp_path / "hand.jpeg"
    hand.write_bytes(scans["Hand"])
    assert main(["predict", "--task", "pneumonia", str(hand), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["in_distribution"] is False and row["label"] is None and row["other_probability"] > 0
    assert row["closest"] in ("normal", "pneumonia") and row["decided_by"] == "pixels" and row["reason"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_a_gpu_is_a_one_line_error(tmp_path, capsys):
    assert main(["train", "--task", "modality", "--device", "cuda", "--data", str(tmp_path)]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err


def test_auto_picks_the_cpu_without_a_gpu_and_cuda_with_one():
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu").type == "cpu"


def test_an_unknown_device_is_refused():
    with pytest.raises(ValueError, match="auto, cpu or cuda"):
        resolve_device("tpu")


def test_training_on_the_cpu_by_name_gives_the_same_model_as_auto_here(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("auto picks the GPU on this machine")
    from medimg_core.training.train import TrainConfig, train

    own = make_class_folders(tmp_path / "MedNIST", MODALITY.classes, per_class=10)
    a, card = train(TrainConfig(task="modality", epochs=1, batch_size=8, baseline=False, sources=False, device="cpu"),
                    own, progress=False)
    b, _ = train(TrainConfig(task="modality", epochs=1, batch_size=8, baseline=False, sources=False), own, progress=False)
    x = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    assert a.predict(x).probabilities == b.predict(x).probabilities and card["training"]["device"] == "cpu"



def test_adding_an_other_output_keeps_every_weight_of_the_model_it_starts_from(tmp_path):
    from medimg_core.training.train import TrainConfig, train

    own = make_class_folders(tmp_path / "MedNIST", MODALITY.classes, per_class=10)
    base, _ = train(TrainConfig(task="modality", epochs=1, batch_size=8, baseline=False, sources=False), own,
                    tmp_path / "base.pt", progress=False)
    make_supplement(tmp_path / "scan-kinds.tar.gz")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MEDIMG_CACHE_DIR", str(tmp_path / "cache"))
        clf, card = train(TrainConfig(task="modality", epochs=1, batch_size=8, baseline=False, init=str(base.path),
                                      add_other=True, max_foreign_per_dataset=8), own, progress=False,
                          paths={"scan-kinds": tmp_path / "scan-kinds.tar.gz"})
    before, after = base.model.state_dict(), clf.model.state_dict()
    k = len(MODALITY.classes)
    assert clf.model.head.out_features == k + 1
    assert all(torch.equal(before[key], value) for key, value in after.items() if not key.startswith("head."))
    assert torch.equal(after["head.weight"][:k], before["head.weight"]) and torch.equal(after["head.bias"][:k], before["head.bias"])
    assert card["training"]["config"]["add_other"] is True


def test_adding_an_other_output_needs_a_model_to_start_from(tmp_path, capsys):
    assert main(["train", "--task", "modality", "--add-other", "--data", str(tmp_path)]) == 2
    assert "--add-other adds the 'other' output to a trained model of the task" in capsys.readouterr().err


def test_adding_an_other_output_to_a_model_of_another_task_is_refused(tmp_path, capsys):
    from medimg_core.models.checkpoint import ASSETS_DIR

    assert main(["train", "--task", "brain-tumor", "--add-other", "--init", str(ASSETS_DIR / "modality.pt"),
                 "--data", str(tmp_path)]) == 2
    assert "--add-other needs a model of the brain-tumor classes" in capsys.readouterr().err


def test_an_other_output_that_flags_the_tasks_own_images_is_left_out_of_the_rule():
    from medimg_core.training.crossval import choose_rejection

    k, rng = len(MODALITY.classes), np.random.default_rng(0)
    labels = np.r_[np.arange(200) % k, np.full(100, k)]
    logits = rng.normal(0, 0.1, (300, k + 1)).astype(np.float32)
    logits[np.arange(200), labels[:200]] += 8  # the own images are named right...
    logits[:20, k] += 20  # ...but the 'other' output is sure of 10% of them
    logits[200:, k] += 20
    pooled = {"logits": logits, "labels": labels, "distance": np.r_[rng.uniform(0, 0.9, 200), rng.uniform(1.5, 3, 100)],
              "origins": np.array(["mednist"] * 200 + ["foreign"] * 100), "fold": np.zeros(300, int)}
    chosen = choose_rejection(pooled, MODALITY, "mednist")
    assert chosen["other_threshold"] is None and chosen["distance_factor"] <= 1.5


def test_a_run_with_held_out_datasets_records_how_it_does_on_them(tmp_path, monkeypatch):
    data = tmp_path / "downloads"
    data.mkdir()
    make_supplement(data / "scan-kinds.tar.gz")
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(data))
    monkeypatch.setenv("MEDIMG_CACHE_DIR", str(tmp_path / "cache"))
    own = make_class_folders(tmp_path / "MedNIST", MODALITY.classes, per_class=6)
    out = tmp_path / "modality.pt"
    assert main(["train", "--task", "modality", "--data", str(own), "--epochs", "1", "--batch-size", "16",
                 "--hold-out", "knees", "brains", "--no-baseline", "--out", str(out)]) == 0
    external = json.loads(out.with_suffix(".json").read_text())["external"]
    assert external["folds"] == [["brains", "knees"]] and external["method"].startswith("one split: 2 datasets")
    assert external["held_out"]["foreign"] == 7 and set(external["held_out"]["per_dataset"]) == {"brains", "knees"}


def test_the_pooled_held_out_predictions_are_kept_and_choose_the_cards_rule_again(crossvalidated):
    from medimg_core.data.sources import own_origin
    from medimg_core.training.crossval import choose_rejection

    pooled = dict(np.load(crossvalidated.with_name("modality-state") / "pooled.npz", allow_pickle=True))
    assert set(pooled) == {"fold", "index", "logits", "distance", "labels", "origins"}
    assert len({len(v) for v in pooled.values()}) == 1 and set(np.unique(pooled["fold"])) == {0, 1}
    card = json.loads(crossvalidated.with_suffix(".json").read_text())
    again = choose_rejection(pooled, MODALITY, own_origin(MODALITY))
    assert {key: again[key] for key in card["rejection"]} == card["rejection"]


def test_weighing_by_sides_counts_the_tasks_kinds_as_much_as_all_other_kinds():
    from medimg_core.training.crossval import rule_score

    successes, in_kind = [1.0, 0.0, 0.0, 0.0], [True, False, False, False]  # one dataset of the task's kinds, 3 others
    assert rule_score(successes, in_kind, "datasets") == 0.25
    assert rule_score(successes, in_kind, "sides") == 0.5
    with pytest.raises(ValueError, match="weighting"):
        rule_score(successes, in_kind, "images")
