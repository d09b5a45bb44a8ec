"""End-to-end test of presentation mode in real headless Chromium: step through the story, download the deck.

Uses the app server and browser fixtures of tests/e2e/conftest.py. With the MedNIST archive in
$MEDIMG_DATA_DIR the steps show real examples and the deck has their figures; without it the
deck holds the model card's numbers and the figures drawn from them.
"""
from __future__ import annotations

import io
import re
import time

import pytest

from medimg_app.cache import shipped_tasks
from medimg_core import get_task
from medimg_core.models.checkpoint import default_model_path, read_card
from medimg_core.data.datasets import dataset_path
from medimg_core.reports.story import STEPS

pptx = pytest.importorskip("pptx", reason="python-pptx is not installed (pip install -r requirements.txt)")
pytestmark = [pytest.mark.e2e, pytest.mark.skipif("modality" not in shipped_tasks(),
                                                  reason="no modality model installed (assets/models or $MEDIMG_MODELS_DIR)")]
TIMEOUT = 120_000  # ms: the first visit computes the typical examples, the deck is built on the click


@pytest.fixture
def presentation(browser, app_url):
    """A fresh session on the presentation page, projector-sized."""
    context = browser.new_context(viewport={"width": 1600, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{app_url}/presentation")  # a direct link, as a projector laptop would open it
    yield page
    context.close()


def heading(page, title: str):
    return page.get_by_role("heading", name=title, exact=True)


def assert_no_exception(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0


def test_step_through_the_presentation_and_download_the_deck(presentation):
    page = presentation
    started = time.perf_counter()
    heading(page, STEPS[0].title).wait_for(timeout=TIMEOUT)
    # presenting: no sidebar, no header; just the slide and its controls
    page.locator("[data-testid=stSidebar]").wait_for(state="hidden", timeout=10_000)  # hidden by the page's CSS
    assert not page.locator("[data-testid=stHeader]").is_visible()
    next_button = page.get_by_role("button", name=re.compile("^Next"))
    for i, step in enumerate(STEPS[1:], start=1):
        next_button.click()
        heading(page, step.title).wait_for(timeout=TIMEOUT)
        page.wait_for_url(re.compile(rf"[?&]step={i + 1}\b"), timeout=TIMEOUT)
        assert_no_exception(page)
    assert next_button.is_disabled()
    page.keyboard.press("ArrowLeft")  # the arrow keys step too (a presenter's clicker or keyboard)
    heading(page, STEPS[-2].title).wait_for(timeout=TIMEOUT)
    page.keyboard.press("ArrowRight")
    heading(page, STEPS[-1].title).wait_for(timeout=TIMEOUT)

    notes = page.get_by_text(f"Speaker notes · presenter {STEPS[-1].presenter}")
    notes.click()
    page.get_by_text("Be honest about what the numbers do and do not mean").wait_for(timeout=TIMEOUT)

    with page.expect_download(timeout=TIMEOUT) as info:
        page.get_by_role("button", name=re.compile("Slides \\(PPTX\\)")).click()
    download = info.value
    assert download.suggested_filename == "medimg-modality-presentation.pptx"
    data = open(download.path(), "rb").read()
    print(f"\npresentation: stepped through {len(STEPS)} steps and downloaded a {len(data) / 1024:.0f} kB deck "
          f"in {time.perf_counter() - started:.1f} s")
    assert_no_exception(page)

    deck = pptx.Presentation(io.BytesIO(data))
    slides = list(deck.slides)
    titles = [s.shapes.title.text for s in slides]
    assert titles[1 : 1 + len(STEPS)] == [s.title for s in STEPS]
    card = read_card(default_model_path("modality"))
    v = card["validation"]
    model = slides[titles.index("The model and its numbers")]
    table = next(shape.table for shape in model.shapes if getattr(shape, "has_table", False) and shape.has_table)
    cells = {row.cells[0].text: row.cells[1].text for row in table.rows}
    assert cells["Validation accuracy"] == f"{v['accuracy']:.2%}"
    assert cells["Macro-F1"] == f"{v['macro_f1']:.4f}"
    assert cells["Validation images"] == f"{v['n']:,}"
    assert all(s.has_notes_slide and s.notes_slide.notes_text_frame.text for s in slides)
    pictures = sum(1 for s in slides for shape in s.shapes if shape.shape_type == 13)  # MSO_SHAPE_TYPE.PICTURE
    has_data = dataset_path(get_task("modality")) is not None
    assert pictures == (5 if has_data else 2)  # with data every step but the last has a figure
