"""AppTest tests of the home page (streamlit_app.py's home): models' numbers from the cards, data status, links."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from medimg_app.cache import model_card, shipped_tasks
from medimg_core import get_task

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "streamlit_app.py")
HEAVY = ("torch", "pytorch_grad_cam", "cv2")  # what the home page must not load: seconds of import on 2 cores


def open_home() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    at.run()
    assert not at.exception, at.exception
    return at


def text(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [w.value for w in at.warning])


def test_home_says_what_the_app_is_and_that_it_is_not_a_diagnostic_device():
    at = open_home()
    assert at.title[0].value.startswith("medimg")
    assert "not a diagnostic device" in at.warning[0].value
    links = {link.proto.label.strip("*") for link in at.get("page_link")}
    assert {"Predict", "Dataset explorer", "Models", "Audit", "MRI vs CT vs X-ray", "Presentation"} <= links
    assert "Home" not in links


def test_every_page_linked_from_home_says_what_it_is_for():
    from medimg_app.home import DESCRIPTIONS

    at = open_home()
    captions = {c.value for c in at.caption}
    linked = [link.proto.page for link in at.get("page_link")]
    assert len(linked) == 6 and all(DESCRIPTIONS.get(url) in captions for url in linked), linked


@pytest.mark.skipif(not shipped_tasks(), reason="no model installed (assets/models or $MEDIMG_MODELS_DIR)")
def test_home_shows_each_shipped_models_numbers_from_its_card():
    at = open_home()
    metrics = [(m.label, m.value) for m in at.metric]
    for task in shipped_tasks():
        card = model_card(task)
        v, cv = card["validation"], (card.get("crossval") or {}).get("own_validation")
        if cv:  # a cross-validated model headlines its mean and spread over the folds, not one split
            accuracy = cv["accuracy"]
            assert ("Cross-validated accuracy", f"{accuracy['mean']:.1%} ± {accuracy['std']:.1%}") in metrics
        else:
            assert ("Validation accuracy", f"{v['accuracy']:.2%}") in metrics
            assert ("Macro-F1", f"{v['macro_f1']:.4f}") in metrics
            assert ("Validation images", f"{v['n']:,}") in metrics
        assert f"**{get_task(task).title}**" in text(at)  # the task's title, whatever an older card says


@pytest.mark.skipif("modality" not in shipped_tasks(), reason="no modality model installed")
def test_dataset_status_and_download_with_progress(tmp_path, monkeypatch):
    """No data: the status says so and offers the download; the button fetches it (faked here) and the status flips."""
    from medimg_app import widgets

    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))
    spec = get_task("modality")
    calls = []

    def fake_download(spec, progress=None, **_):
        for done in (0, 2**20, 2**21):
            progress(done, 2**21)
        calls.append(spec.name)
        path = tmp_path / spec.source.filename
        path.write_bytes(b"\0" * 2**21)
        return path

    monkeypatch.setattr(widgets, "download", fake_download)
    at = open_home()
    assert f"**{spec.source.filename}** ({spec.title}): not downloaded" in text(at)
    at.button(key="download_dataset_modality").click().run()
    assert not at.exception, at.exception
    assert calls == ["modality"]
    assert f"**{spec.source.filename}** ({spec.title}): downloaded, 2 MB" in text(at)
    assert "download_dataset_modality" not in [b.key for b in at.button]


def test_home_without_any_model_explains_how_to_train_one(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(tmp_path))
    at = open_home()
    assert any("No trained model is installed" in e.value for e in at.error)
    assert not at.metric


def heavy_modules_loaded(code: str) -> list[str]:
    """The HEAVY modules in sys.modules after running `code` in a fresh Python process."""
    code += f"; import sys, json; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_home_module_imports_no_torch_grad_cam_or_opencv():
    assert heavy_modules_loaded("import medimg_app.home") == []


def test_running_the_home_page_loads_no_torch_grad_cam_or_opencv():
    """The whole of streamlit_app.py (navigation and the home page with its model cards) stays light: a fast first paint."""
    code = (f"from streamlit.testing.v1 import AppTest; at = AppTest.from_file({APP!r}, default_timeout=60); at.run(); "
            "assert not at.exception and at.title[0].value.startswith('medimg'), at.exception")
    assert heavy_modules_loaded(code) == []
