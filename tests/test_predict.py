"""Classifier.predict with test-time augmentation (an image and its mirror), the images per model call, the model
as load_classifier makes it, and `evaluate --tta`."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from medimg_core import get_task
from medimg_core.cli.main import main
from medimg_core.inference.predict import CPU_CHUNK, Classifier, load_classifier
from medimg_core.models.checkpoint import load_checkpoint
from tests.imagegen import make_class_folders


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> tuple[Path, Path]:
    """(a folder of generated images of the six scan kinds, a model trained on it for one epoch)."""
    root = tmp_path_factory.mktemp("tta")
    data = make_class_folders(root / "MedNIST", get_task("modality").classes, per_class=8)
    out = root / "modality.pt"
    assert main(["train", "--task", "modality", "--data", str(data), "--epochs", "1", "--batch-size", "16",
                 "--no-sources", "--no-baseline", "--out", str(out)]) == 0
    return data, out


def asymmetric(size: int = 64) -> np.ndarray:
    """A [0, 1] image brighter on its left, with a block in its top-left corner."""
    image = np.tile(np.linspace(1, 0, size, dtype=np.float32), (size, 1))
    image[:16, :16] = 0.2
    return image


def test_tta_averages_the_image_and_its_mirror(generated):
    clf = load_classifier("modality", generated[1])
    image = asymmetric()
    plain, mirror, both = clf.predict(image), clf.predict(image[:, ::-1].copy()), clf.predict(image, tta=True)
    for c in clf.classes:
        assert both.probabilities[c] == pytest.approx((plain.probabilities[c] + mirror.probabilities[c]) / 2, abs=1e-6)
    assert sum(both.probabilities.values()) == pytest.approx(1, abs=1e-5) and 0 <= min(both.probabilities.values())
    assert both.closest == max(both.probabilities, key=both.probabilities.get)
    # the rejection rule looks at the image as given, as it was calibrated
    assert (both.ood_score, both.in_distribution) == (plain.ood_score, plain.in_distribution)


def test_tta_changes_nothing_for_a_symmetric_image(generated):
    clf = load_classifier("modality", generated[1])
    half = asymmetric()[:, :32]
    symmetric = np.concatenate([half, half[:, ::-1]], 1)
    plain, both = clf.predict(symmetric), clf.predict(symmetric, tta=True)
    assert both.closest == plain.closest
    assert both.probabilities == pytest.approx(plain.probabilities, abs=1e-6)


def test_tta_is_off_where_the_task_forbids_flips(generated):
    clf = load_classifier("modality", generated[1])
    no_flips = Classifier(clf.model, replace(clf.spec, hflip=False), clf.temperature, clf.ood, clf.card, clf.path)
    assert clf.can_flip and not no_flips.can_flip
    image = asymmetric()
    assert no_flips.predict(image, tta=True).probabilities == no_flips.predict(image).probabilities


def test_the_answers_do_not_depend_on_how_many_images_go_through_the_model_at_once():
    clf = load_classifier("modality")
    x = torch.rand(2 * CPU_CHUNK + 5, 1, 64, 64, generator=torch.Generator().manual_seed(0))
    chunked, one_call, small = clf.infer(x), clf.infer(x, batch_size=len(x)), clf.infer(x, batch_size=7)
    for other in (one_call, small):
        np.testing.assert_allclose(chunked.probs, other.probs, atol=1e-5)
        np.testing.assert_allclose(chunked.scores, other.scores, rtol=1e-4, atol=1e-4)


def test_a_loaded_model_has_its_batch_norms_folded_and_answers_as_its_checkpoint():
    clf = load_classifier("modality")
    plain = load_checkpoint(clf.path)[0]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in clf.model.modules())
    x = torch.rand(8, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        np.testing.assert_allclose(clf.model(x).numpy(), plain(x).numpy(), atol=1e-4)


def test_evaluate_with_tta_on_the_models_validation_split(generated, capsys):
    data, model = generated
    args = ["evaluate", "--task", "modality", "--data", str(data), "--model", str(model), "--json"]
    assert main(args + ["--split", "val"]) == 0
    plain = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(args + ["--split", "val", "--tta"]) == 0
    tta = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    card = json.loads(model.with_suffix(".json").read_text())
    assert plain["n"] == tta["n"] == card["data"]["validation"]  # the validation split of the model's card
    assert plain["accuracy"] == pytest.approx(card["validation"]["accuracy"])
    assert (plain["tta"], tta["tta"]) == (False, True) and 0 <= tta["accuracy"] <= 1
    assert sum(map(sum, tta["confusion_matrix"])) == tta["n"]
    assert main(args[:-1] + ["--tta"]) == 0  # the whole folder, text output
    assert "with TTA (48 images of its classes)" in capsys.readouterr().out


def test_evaluate_refuses_a_split_the_data_did_not_play(generated, tmp_path, capsys):
    other = make_class_folders(tmp_path / "other", get_task("modality").classes, per_class=3)
    assert main(["evaluate", "--task", "modality", "--data", str(other), "--model", str(generated[1]), "--split", "val"]) == 2
    assert "its card says" in capsys.readouterr().err
