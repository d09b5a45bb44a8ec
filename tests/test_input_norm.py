"""What a model does to every input first (`--input-norm`): nothing, histogram equalisation or CLAHE."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medimg_core import get_task
from medimg_core.models.architectures import build_model, clahe, equalize
from medimg_core.models.checkpoint import load_checkpoint, save_checkpoint
from medimg_core.reports.compare import compared_cards


def xray_batch(seed: int = 0) -> torch.Tensor:
    """Two 64 px pictures with a bright blob on a darker, graded background, in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:64, 0:64] / 63
    pics = [0.2 + 0.3 * xx + 0.4 * np.exp(-((xx - cx) ** 2 + (yy - 0.5) ** 2) / 0.02) + rng.normal(0, 0.02, xx.shape)
            for cx in (0.3, 0.7)]
    return torch.tensor(np.clip(pics, 0, 1), dtype=torch.float32)[:, None]


def exposed_differently(x: torch.Tensor) -> torch.Tensor:
    """The same pictures darker and with another gamma: what another machine or setting gives."""
    return 0.6 * x ** 1.6 + 0.05


def test_equalisation_takes_out_an_exposure_and_gamma_change():
    x = xray_batch()
    before = (x - exposed_differently(x)).abs().mean()
    after = (equalize(x) - equalize(exposed_differently(x))).abs().mean()
    assert after < 0.01 < before


def test_clahe_lessens_an_exposure_and_gamma_change_but_does_not_take_it_out():
    x, y = xray_batch(), exposed_differently(xray_batch())
    before = (x - y).abs().mean()
    after = (clahe(x) - clahe(y)).abs().mean()
    assert (equalize(x) - equalize(y)).abs().mean() < after < 0.9 * before  # the clip limit keeps part of the change


def test_clahe_raises_the_contrast_of_a_flat_picture():
    flat = 0.45 + 0.1 * xray_batch()
    assert clahe(flat).std() > 2 * flat.std()


def test_clahe_keeps_the_shape_the_range_and_float32_under_bf16_autocast():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = clahe(xray_batch())
    assert out.shape == (2, 1, 64, 64) and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1


def test_a_model_with_clahe_input_is_saved_and_loaded_with_it(tmp_path):
    args = {"architecture": "compact-cnn", "width": 8, "dropout": 0.0, "input_norm": "clahe"}
    model = build_model("compact-cnn", 2, width=8, dropout=0.0, input_norm="clahe").eval()
    path = tmp_path / "pneumonia.pt"
    save_checkpoint(path, model, get_task("pneumonia"), args, {})
    loaded, _, _ = load_checkpoint(path)
    x = xray_batch()
    assert loaded.input_norm.method == "clahe"
    with torch.no_grad():
        assert torch.allclose(loaded(x), model(x), atol=1e-5)


def test_an_unknown_input_norm_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="none, equalize, clahe"):
        build_model("compact-cnn", 2, input_norm="whiten")


def test_a_comparison_card_of_a_clahe_run_says_so_in_its_name(tiny_model, tmp_path, monkeypatch):
    card = json.loads(tiny_model.with_suffix(".json").read_text())
    card["training"]["config"]["input_norm"] = "clahe"
    (tmp_path / "comparisons").mkdir()
    (tmp_path / "comparisons" / "modality-clahe.json").write_text(json.dumps(card))
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(tmp_path))
    assert any("input CLAHE" in c["name"] for c in compared_cards("modality"))
