"""Grad-CAM heatmaps: every method, useful resolution, per-call hooks, concurrent sessions."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from medimg_core.inference.explain import CAM_METHODS, overlay
from medimg_core.inference.predict import load_classifier


@pytest.fixture(scope="module")
def clf(tiny_model):
    return load_classifier(path=tiny_model)


def image(seed: int) -> np.ndarray:
    """A blurry random blob picture, 80 x 60 (not the model's size, so letterboxing runs too)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:80, :60]
    pic = sum(np.exp(-((yy - rng.uniform(0, 80)) ** 2 + (xx - rng.uniform(0, 60)) ** 2) / 120) for _ in range(4))
    return (pic / pic.max()).astype(np.float32)


@pytest.mark.parametrize("method", list(CAM_METHODS))
def test_every_method_gives_a_normalised_map_at_input_resolution(clf, method):
    heat = clf.explain(image(0), method=method)
    assert heat.shape == (64, 64) and heat.dtype == np.float32
    assert heat.min() >= 0 and heat.max() <= 1


def test_heatmaps_are_finer_than_coarse_blocks(clf):
    heat = clf.explain(image(0), method="Grad-CAM")
    assert len(np.unique(np.round(heat, 3))) > 50  # a 2x2 or 4x4 map would give a handful of values


def test_target_class_changes_the_map(clf):
    maps = [clf.explain(image(1), target=c) for c in ("Hand", "HeadCT")]
    assert not np.allclose(maps[0], maps[1])


def test_unknown_method_is_named(clf):
    with pytest.raises(ValueError, match="unknown CAM method 'Magic'"):
        clf.explain(image(0), method="Magic")


def test_no_hooks_are_left_on_the_shared_model(clf):
    for _ in range(100):
        clf.explain(image(2), method="Grad-CAM")
    for module in clf.model.modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks


def test_concurrent_sessions_get_their_own_maps(clf):
    expected = [clf.explain(image(s)) for s in range(6)]
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda s: clf.explain(image(s)), range(6)))
    for e, g in zip(expected, got):
        np.testing.assert_allclose(e, g, atol=1e-5)


def test_overlay_is_an_rgb_picture(clf):
    pic = np.zeros((64, 64), np.float32)
    out = overlay(pic, clf.explain(image(0)), opacity=0.6)
    assert out.shape == (64, 64, 3) and out.dtype == np.uint8 and out.max() > 0
