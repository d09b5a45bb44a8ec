"""Architectures built by name, and how their weights are stored."""
from __future__ import annotations

import copy

import pytest
import torch

from medimg_core import get_task
from medimg_core.models.checkpoint import HALF_ABOVE, load_checkpoint, save_checkpoint
from medimg_core.models.architectures import build_model, count_parameters, fuse_batch_norms


def test_a_narrow_resnet18_has_about_a_quarter_of_the_parameters_and_the_same_outputs():
    full, narrow = build_model("resnet18", 4, width=64), build_model("resnet18", 4, width=32)
    assert 0.2 < count_parameters(narrow) / count_parameters(full) < 0.3
    x = torch.rand(2, 1, 128, 128)
    assert narrow.eval()(x).shape == (2, 4) and narrow.features(x).shape == (2, 256)
    assert narrow.get_submodule(narrow.cam_layer)[0].conv1.in_channels == 64  # layer3 takes 2 x width channels


def test_a_resnet50_has_one_channel_in_2048_features_and_only_full_width():
    model = build_model("resnet50", 4, width=64, reject=True).eval()
    with torch.no_grad():
        features = model.features(torch.rand(2, 1, 64, 64))
    assert features.shape == (2, 2048) and model.head.out_features == 5
    assert 23_000_000 < count_parameters(model) < 24_000_000
    with pytest.raises(ValueError, match="full width"):
        build_model("resnet50", 4, width=32)


def test_a_large_model_is_stored_in_half_precision_and_predicts_as_before(tmp_path):
    model = build_model("resnet18", 4, width=32).eval()
    assert count_parameters(model) > HALF_ABOVE
    path = tmp_path / "brain.pt"
    save_checkpoint(path, model, get_task("brain-tumor"), {"architecture": "resnet18", "width": 32, "dropout": 0.0}, {})
    stored = torch.load(path, weights_only=True)["state_dict"]
    assert stored["net.conv1.weight"].dtype == torch.float16
    loaded, _, _ = load_checkpoint(path)
    assert loaded.net.conv1.weight.dtype == torch.float32
    x = torch.rand(3, 1, 128, 128)
    with torch.no_grad():
        assert torch.allclose(torch.softmax(loaded(x), 1), torch.softmax(model(x), 1), atol=2e-3)


def test_a_small_model_keeps_full_precision(tmp_path):
    model = build_model("compact-cnn", 2)
    path = tmp_path / "small.pt"
    save_checkpoint(path, model, get_task("pneumonia"), {"architecture": "compact-cnn", "width": 16, "dropout": 0.2}, {})
    assert torch.load(path, weights_only=True)["state_dict"]["head.weight"].dtype == torch.float32


@pytest.mark.parametrize("architecture", ["compact-cnn", "resnet18"])
def test_folding_the_batch_norms_keeps_the_features_and_leaves_no_batch_norm(architecture):
    model = build_model(architecture, 4, width=16, reject=True)
    with torch.no_grad():
        for _ in range(3):  # running statistics away from their initial 0 and 1
            model(torch.rand(8, 1, 64, 64) * 2)
    x = torch.rand(5, 1, 64, 64)
    fused = fuse_batch_norms(copy.deepcopy(model))
    with torch.no_grad():
        assert torch.allclose(fused.features(x), model.eval().features(x), atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    assert fused.get_submodule(fused.cam_layer) is not None
