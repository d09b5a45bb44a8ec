"""AppTest tests of presentation mode (app_pages/presentation.py): the fixed steps, controls, notes, numbers, live demo."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from medimg_app.cache import model_card, shipped_tasks
from medimg_core import get_task
from medimg_core.data.datasets import dataset_path
from medimg_core.reports.story import STEPS

pytestmark = pytest.mark.skipif("modality" not in shipped_tasks(),
                                reason="no modality model installed (assets/models or $MEDIMG_MODELS_DIR)")
ROOT = Path(__file__).resolve().parents[1]
PAGE = "app_pages/presentation.py"  # as registered in streamlit_app.py's st.navigation
SPEC = get_task("modality")
HAS_MEDNIST = dataset_path(SPEC) is not None


def open_presentation(step: int | None = None) -> AppTest:
    """A fresh session on the presentation page (optionally opened at ?step=N)."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=60)
    if step:
        at.query_params["step"] = str(step)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click().run()
    assert not at.exception, at.exception
    return at


def markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


@pytest.fixture
def no_data(tmp_path, monkeypatch):
    """The app sees no downloaded dataset (numbers from the cards only)."""
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))


def test_next_and_back_walk_through_the_fixed_steps(no_data):
    at = open_presentation()
    assert at.button(key="presentation_back").disabled
    for i, step in enumerate(STEPS):
        assert [t.value for t in at.title] == [step.title]
        assert at.query_params["step"] == str(i + 1)  # the URL says which step is shown
        notes = at.expander
        assert len(notes) == 1 and notes[0].label == f"Speaker notes · presenter {step.presenter}"
        assert at.get("download_button")[0].proto.label == "Slides (PPTX)"
        if i < len(STEPS) - 1:
            click(at, "presentation_next")
    assert at.button(key="presentation_next").disabled
    click(at, "presentation_back")
    assert at.title[0].value == STEPS[-2].title


def test_speaker_notes_name_the_hand_over(no_data):
    at = open_presentation(step=3)  # the model step: presenter 1 hands over to presenter 2
    assert at.title[0].value == "The model and its numbers"
    notes = "\n".join(m.value for m in at.expander[0].markdown)
    assert "Hand over to presenter 2" in notes


def test_the_model_step_shows_the_cards_numbers(no_data):
    at = open_presentation(step=3)
    v = model_card("modality")["validation"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Validation accuracy"] == f"{v['accuracy']:.2%}"
    assert metrics["Macro-F1"] == f"{v['macro_f1']:.4f}"
    assert metrics["Validation images"] == f"{v['n']:,}"
    assert f"### {v['accuracy']:.2%} validation accuracy on {v['n']:,} held-out images" in markdown(at)
    assert len(at.get("plotly_chart")) == 1  # the confusion matrix


def test_without_data_the_live_step_takes_an_upload(no_data, samples):
    at = open_presentation(step=4)
    assert at.title[0].value == "A live prediction"
    at.file_uploader(key="presentation_upload").set_value(("hand.png", samples.hand_like_png(), "image/png")).run()
    assert not at.exception, at.exception
    assert len(at.get("plotly_chart")) == 1  # the probability chart


@pytest.mark.skipif(not HAS_MEDNIST, reason="MedNIST.tar.gz is not in $MEDIMG_DATA_DIR")
def test_with_data_every_step_draws_its_figures_and_the_live_demo_works():
    at = open_presentation()
    assert len(at.get("image")) == len(SPEC.classes)  # the question: one typical image per class
    click(at, "presentation_next")
    assert len(at.get("plotly_chart")) == 1  # the data: images per class and split
    assert "Images per class: from" in markdown(at)
    click(at, "presentation_next")
    click(at, "presentation_next")  # a live prediction: a typical example is shown before anyone clicks
    assert any(m.value.startswith("## ") for m in at.markdown)
    at.selectbox(key="example_class").set_value("CXR").run()
    click(at, "example_button")
    assert "## CXR" in markdown(at).split("\n")
    assert "This example comes from the **CXR** folder" in "\n".join(c.value for c in at.caption)
    click(at, "presentation_next")  # how it decides: the live example's Grad-CAM, then every class
    captions = [im.proto.imgs[0].caption for im in at.get("image")]
    assert any(c.startswith("Grad-CAM for CXR") for c in captions)
    assert sum(c.startswith("Grad-CAM: predicted") for c in captions) == len(SPEC.classes)
