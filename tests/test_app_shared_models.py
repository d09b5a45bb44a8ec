"""The app's shared models (medimg_app/cache.py) for a whole class at once, and the Predict page's order of work.

One model object serves every browser session: predictions take turns, heatmaps take their own turns, each
session gets its own result, and the other tasks' models (a chest X-ray's second step, suggestions for a
flagged image) are warmed in the background and asked last.
"""
from __future__ import annotations

import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from medimg_app.cache import INFERENCE_THREADS, SharedClassifier, classifier, loaded_models, shipped_tasks, warm_models
from medimg_core import load_classifier, read_image

pytestmark = pytest.mark.skipif("modality" not in shipped_tasks(),
                                reason="no modality model installed (assets/models or $MEDIMG_MODELS_DIR)")
ROOT = Path(__file__).resolve().parents[1]
WAIT = 60  # seconds a thread may take before the test calls it stuck


@pytest.fixture(scope="module")
def shared() -> SharedClassifier:
    """The scan-type model as the app shares it between sessions."""
    return SharedClassifier(load_classifier("modality"))


@pytest.fixture(scope="module")
def pictures(samples) -> list[np.ndarray]:
    """Eight different pictures drawn in code, as read_image returns them."""
    made = [samples.hand_like_png(), samples.checkerboard_png(), samples.checkerboard_png(4)]
    made += [samples.noise_png(seed) for seed in range(5)]
    return [read_image(data) for data in made]


def in_thread(call, *args):
    """Start call(*args) in a thread; returns the thread and a list that receives the result."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(call(*args)), daemon=True)
    thread.start()
    return thread, out


def test_eight_sessions_at_once_each_get_their_own_prediction(shared, pictures):
    alone = load_classifier("modality")
    with ThreadPoolExecutor(len(pictures)) as pool:
        got = list(pool.map(shared.predict, pictures))
    for image, pred in zip(pictures, got):
        expected = alone.predict(image)
        assert pred.label == expected.label
        assert pred.probabilities == pytest.approx(expected.probabilities, abs=1e-5)
        assert pred.in_distribution == expected.in_distribution


def test_eight_heatmaps_at_once_are_each_of_their_own_image(shared, pictures):
    alone = load_classifier("modality")
    with ThreadPoolExecutor(len(pictures)) as pool:
        got = list(pool.map(shared.explain, pictures))
    for image, heat in zip(pictures, got):
        np.testing.assert_allclose(heat, alone.explain(image), atol=1e-4)


def test_a_prediction_waits_for_the_one_before_it(shared, pictures):
    with shared.predicting:
        thread, out = in_thread(shared.predict, pictures[0])
        thread.join(0.5)
        assert thread.is_alive() and not out
    thread.join(WAIT)
    assert out and out[0].closest in shared.classes


def test_a_prediction_never_waits_behind_heatmaps(shared, pictures):
    taken = 0
    while shared.explaining.acquire(blocking=False):  # every heatmap turn busy
        taken += 1
    try:
        thread, out = in_thread(shared.predict, pictures[0])
        thread.join(WAIT)
        assert out and out[0].closest in shared.classes
    finally:
        for _ in range(taken):
            shared.explaining.release()


def test_inference_runs_on_the_servers_torch_threads(shared, pictures):
    def predict_and_count():
        shared.predict(pictures[0])
        return torch.get_num_threads()

    thread, out = in_thread(predict_and_count)
    thread.join(WAIT)
    assert out == [INFERENCE_THREADS]


def test_everything_but_inference_is_the_wrapped_classifiers(shared):
    assert shared.classes == shared.classifier.classes and shared.spec is shared.classifier.spec
    assert shared.ood is shared.classifier.ood
    assert shared.model_view(np.zeros((10, 20), np.float32)).shape == (shared.spec.image_size,) * 2


def chart_keys(node) -> list[str]:
    """Keys of the plotly charts in a page or a column."""
    return [c.proto.id.rsplit("-", 1)[-1] for c in node.get("plotly_chart")]


def open_predict() -> AppTest:
    """A fresh session of the app on the Predict page."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    at.run()
    at.switch_page("app_pages/predict.py").run()
    assert not at.exception
    return at


def test_opening_predict_warms_every_shipped_model_once_in_the_background():
    open_predict()
    thread = warm_models()
    assert thread.name == "medimg-warm-models" and warm_models() is thread
    thread.join(WAIT * 3)
    assert not thread.is_alive()
    assert loaded_models(tuple(shipped_tasks())) == tuple(shipped_tasks())
    assert all(isinstance(classifier(task), SharedClassifier) for task in shipped_tasks())


def test_a_process_that_ends_while_the_models_warm_exits_cleanly():
    code = ("from streamlit.testing.v1 import AppTest\n"
            f"at = AppTest.from_file({str(ROOT / 'streamlit_app.py')!r}, default_timeout=90)\n"
            "at.run()\n"
            "at.switch_page('app_pages/predict.py').run()\n"
            "assert not at.exception\n")  # and end at once, while the other models are still loading
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=WAIT * 3)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "terminate called" not in done.stderr


@pytest.mark.skipif("pneumonia" not in shipped_tasks(), reason="no pneumonia model installed")
def test_the_second_step_keeps_its_place_under_the_chart(scans):
    at = open_predict()
    at.file_uploader(key="uploads").set_value([("chest.jpeg", scans["CXR"], "image/jpeg")]).run()
    assert not at.exception
    right = next(col for col in at.columns if chart_keys(col) == ["prob_chart"])  # the detail's right column
    assert any(m.value.startswith("**Second step") for m in right.markdown)
    assert "raw_heatmap" in chart_keys(at)
