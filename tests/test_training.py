"""A tiny train -> evaluate -> predict run through the command line, and the checkpoint format."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from medimg_core.cli.main import main
from medimg_core.inference.predict import load_classifier
from medimg_core.tasks import get_task
from medimg_core.training.train import TrainConfig, train
from tests.imagegen import make_class_folders, png_bytes


@pytest.fixture
def real_folder(mednist_images, tmp_path):
    """Ten real Medical MNIST images per class, as <class>/<file>.jpeg in a temporary folder."""
    for label, images in mednist_images.items():
        (tmp_path / "MedNIST" / label).mkdir(parents=True)
        for i, data in enumerate(images):
            (tmp_path / "MedNIST" / label / f"{i}.jpeg").write_bytes(data)
    return tmp_path / "MedNIST"


def test_training_writes_a_checkpoint_and_a_model_card(tiny_model):
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    assert card["classes"] == ["AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT"]
    assert card["input"]["size"] == [64, 64] and card["model"]["parameters"] > 10_000
    assert card["training"]["config"]["max_per_class"] == 60
    assert card["training"]["command"].startswith("python -m medimg_core train --task modality")
    assert card["data"]["validation"] > 0 and len(card["data"]["fingerprint"]) == 16
    assert card["calibration"]["temperature"] > 0 and np.isfinite(card["ood"]["threshold"])
    assert len(card["validation"]["confusion_matrix"]) == 6


def test_checkpoint_loads_with_weights_only_and_round_trips(tiny_model):
    state = torch.load(tiny_model, weights_only=True)
    assert state["task"]["name"] == "modality" and "state_dict" in state
    a, b = load_classifier("modality", tiny_model), load_classifier(path=tiny_model)
    x = np.random.default_rng(0).random((64, 64), dtype=np.float32)
    assert a.predict(x).probabilities == b.predict(x).probabilities


def test_a_checkpoint_of_another_task_is_refused(tiny_model):
    with pytest.raises(ValueError, match="task 'modality', not 'pneumonia'"):
        load_classifier("pneumonia", tiny_model)


def test_evaluate_prints_one_json_object_last(tiny_model, real_folder, capsys):
    assert main(["evaluate", "--task", "modality", "--data", str(real_folder), "--model", str(tiny_model), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"task", "model", "n", "accuracy", "macro_f1", "auc", "ece", "classes", "per_class", "confusion_matrix"} <= set(result)
    assert result["n"] == 60 and result["accuracy"] > 0.5  # well above chance (1/6) after seconds of training
    assert sum(map(sum, result["confusion_matrix"])) == 60 and result["per_class"]["Hand"]["support"] == 10


def test_evaluate_rejects_a_folder_with_an_unknown_class(tiny_model, tmp_path, capsys):
    root = make_class_folders(tmp_path / "data", ("Hand", "KneeXray"), 2)
    assert main(["evaluate", "--task", "modality", "--data", str(root), "--model", str(tiny_model), "--json"]) == 2
    assert "KneeXray" in capsys.readouterr().err


def test_predict_reports_each_file_and_keeps_going(tiny_model, tmp_path, capsys):
    good, bad = tmp_path / "hand.png", tmp_path / "broken.png"
    good.write_bytes(png_bytes(np.random.default_rng(0).integers(0, 255, (90, 70), dtype=np.uint8)))
    bad.write_bytes(b"definitely not an image")
    assert main(["predict", "--task", "modality", str(good), str(bad), "--model", str(tiny_model), "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.strip().splitlines()]
    assert rows[0]["error"] is None and rows[0]["closest"] in rows[0]["probabilities"]
    assert rows[0]["label"] is None and "random noise" in rows[0]["reason"]  # no scan, no label
    assert abs(sum(rows[0]["probabilities"].values()) - 1) < 1e-4 and isinstance(rows[0]["in_distribution"], bool)
    assert rows[1]["label"] is None and "not an image" in rows[1]["error"]


def test_a_missing_model_is_a_one_line_error(tmp_path, capsys):
    assert main(["predict", "--task", "modality", "x.png", "--model", str(tmp_path / "none.pt")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: No model file") and "Traceback" not in err


def test_training_is_reproducible_with_a_fixed_seed(tmp_path):
    root = make_class_folders(tmp_path / "data", ("AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT"), 6)
    cfg = TrainConfig(task="modality", epochs=1, batch_size=8, baseline=False, val_fraction=0.34, sources=False)
    (a, _), (b, _) = (train(cfg, root, progress=False) for _ in range(2))
    x = np.random.default_rng(1).random((64, 64), dtype=np.float32)
    assert a.predict(x).probabilities == b.predict(x).probabilities


def test_importing_the_library_does_not_import_streamlit():
    code = "import sys, medimg_core, medimg_core.inference.predict, medimg_core.cli.main; assert 'streamlit' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_fine_tuning_starts_from_another_tasks_weights_except_the_head(tiny_model):
    from medimg_core.models.checkpoint import load_checkpoint
    from medimg_core.models.architectures import build_model
    from medimg_core.training.train import init_weights

    source = load_checkpoint(tiny_model)[0]
    model = build_model("compact-cnn", num_classes=2)
    fresh = init_weights(model, str(tiny_model))
    assert fresh == ["head.bias", "head.weight"]
    assert torch.equal(model.block3[0][0].weight, source.block3[0][0].weight)


def test_imagenet_weights_need_the_resnet(tiny_model):
    from medimg_core.models.architectures import build_model
    from medimg_core.training.train import init_weights

    with pytest.raises(ValueError, match="resnet18"):
        init_weights(build_model("compact-cnn", num_classes=2), "imagenet")


def test_calibrate_refits_a_copy_without_touching_the_weights(tiny_model, tmp_path, capsys):
    import shutil

    copy = tmp_path / "modality.pt"
    shutil.copy(tiny_model, copy)
    shutil.copy(tiny_model.with_suffix(".json"), copy.with_suffix(".json"))
    assert main(["calibrate", "--task", "modality", "--model", str(copy)]) == 0
    before, after = torch.load(tiny_model, weights_only=True), torch.load(copy, weights_only=True)
    assert all(torch.equal(before["state_dict"][k], v) for k, v in after["state_dict"].items())
    card = json.loads(copy.with_suffix(".json").read_text())
    assert card["training"]["recalibrated"]["command"].startswith("python -m medimg_core calibrate")
    assert card["ood"]["threshold"] == round(after["ood"]["mahalanobis"]["threshold"], 4) and "recalibrated" in capsys.readouterr().out


def test_the_card_records_the_cpu_latency_of_one_image(tiny_model):
    speed = json.loads(tiny_model.with_suffix(".json").read_text())["speed"]
    assert speed["predict_ms_median"] > 0 and speed["predict_ms_p95"] >= speed["predict_ms_median"]
    assert speed["repeats"] == 100 and speed["threads"] >= 1


def test_benchmark_command_updates_the_latency_in_a_given_card(tiny_model, tmp_path, capsys):
    card = tmp_path / "card.json"
    card.write_text(json.dumps({"task": "modality"}))
    assert main(["benchmark", "--task", "modality", "--model", str(tiny_model), "--card", str(card), "--repeats", "5"]) == 0
    written = json.loads(card.read_text())
    assert written["task"] == "modality" and written["speed"]["repeats"] == 5
    assert f"written to {card}" in capsys.readouterr().out


def test_pretrained_imagenet_is_the_same_as_init_imagenet_and_not_both(capsys):
    assert main(["train", "--task", "modality", "--init", "x.pt", "--pretrained", "imagenet"]) == 2
    assert "either --init or --pretrained" in capsys.readouterr().err


def test_a_tiny_pneumonia_run_chooses_a_threshold_and_reports_auc(tmp_path, capsys):
    from tests.conftest import shared_file

    data, out = shared_file("pneumoniamnist.npz"), tmp_path / "pneumonia.pt"
    assert main(["train", "--task", "pneumonia", "--data", str(data), "--epochs", "2", "--max-per-class", "80",
                 "--batch-size", "32", "--balance", "--no-baseline", "--no-sources", "--out", str(out)]) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["data"]["split"] == "official train/val split" and card["training"]["config"]["balance"]
    assert 0 < card["operating_threshold"]["threshold"] <= 1 and card["validation"]["auc"] > 0.5
    assert main(["evaluate", "--task", "pneumonia", "--data", str(data), "--split", "val", "--model", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["n"] == 524 and result["auc"] > 0.5


def test_a_tiny_brain_tumour_run_works_at_the_tasks_input_size(tmp_path, brain_images):
    from medimg_core import read_image
    from tests.conftest import shared_file

    out = tmp_path / "brain-tumor.pt"
    assert main(["train", "--task", "brain-tumor", "--data", str(shared_file("brain-tumor-mri-training.tar.gz")),
                 "--epochs", "1", "--max-per-class", "20", "--batch-size", "16", "--no-baseline", "--no-sources",
                 "--out", str(out)]) == 0
    clf = load_classifier("brain-tumor", out)
    size = get_task("brain-tumor").image_size
    assert clf.card["input"]["size"] == [size, size] and clf.card["data"]["validation"] >= 4
    image = read_image(brain_images["glioma"][0])
    assert clf.predict(image).closest in clf.classes
    assert clf.explain(image).shape == (size, size)


def test_another_input_size_is_saved_with_the_model_and_used_to_predict(mednist, tmp_path):
    out = tmp_path / "small.pt"
    assert main(["train", "--task", "modality", "--data", str(mednist), "--image-size", "32", "--epochs", "1",
                 "--max-per-class", "20", "--batch-size", "32", "--no-baseline", "--no-sources", "--out", str(out)]) == 0
    clf = load_classifier("modality", out)
    assert clf.spec.image_size == 32 and clf.card["input"]["size"] == [32, 32]
    assert clf.explain(np.random.default_rng(0).random((100, 80), dtype=np.float32)).shape == (32, 32)


def test_an_absurd_input_size_is_a_one_line_error(capsys):
    assert main(["train", "--task", "modality", "--image-size", "4"]) == 2
    assert "between 16 and 512" in capsys.readouterr().err
