"""Empty table cells read "–" on every table of the Models and Predict pages, never "None" or "nan"."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from medimg_app.cache import shipped_tasks
from medimg_app.widgets import EMPTY_CELL
from medimg_core.io.examples import EXAMPLES_DIR

ROOT = Path(__file__).resolve().parents[1]


def test_the_empty_cell_is_a_dash():
    assert EMPTY_CELL == "–"


@pytest.mark.parametrize("task", shipped_tasks())
def test_every_models_table_shows_a_dash_for_a_missing_value(task):
    at = AppTest.from_file(str(ROOT / "app_pages" / "models.py"), default_timeout=60)
    at.session_state["models_task"] = task
    at.run()
    assert not at.exception
    assert at.dataframe
    assert [d.proto.placeholder for d in at.dataframe] == [EMPTY_CELL] * len(at.dataframe)
    assert any(d.value.isna().any().any() for d in at.dataframe)  # the cards leave some cells empty


@pytest.mark.skipif("modality" not in shipped_tasks(), reason="no modality model installed")
def test_the_predict_results_table_shows_a_dash_for_the_confidence_of_no_label(samples):
    hand = sorted((EXAMPLES_DIR / "modality" / "Hand").iterdir())[0].read_bytes()  # a real hand X-ray: labelled
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    at.run()
    at.switch_page("app_pages/predict.py").run()
    at.file_uploader(key="uploads").set_value([("hand.png", hand, "image/png"),
                                              ("noise.png", samples.noise_png(), "image/png"),
                                              ("bad.png", samples.broken, "image/png")]).run()
    assert not at.exception
    table = at.dataframe[0]
    assert table.proto.placeholder == EMPTY_CELL
    assert table.value["confidence"].isna().tolist() == [False, True, True]
