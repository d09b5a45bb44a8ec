"""End-to-end: the Models page in headless Chromium, and a brain MRI sent from the scan-type task to its own."""
from __future__ import annotations

import re

import pytest

from medimg_app.cache import shipped_tasks
from medimg_core import load_classifier, read_image

pytestmark = pytest.mark.e2e
TIMEOUT = 60_000


def test_the_models_page_shows_the_table_confusion_matrices_and_curves(browser, app_url):
    context = browser.new_context(viewport={"width": 1600, "height": 1200})
    page = context.new_page()
    page.goto(f"{app_url}/models")
    page.get_by_role("heading", name="Compared models").wait_for(timeout=TIMEOUT)
    page.get_by_role("heading", name="Training curves").wait_for(timeout=TIMEOUT)
    page.locator(".js-plotly-plot").nth(1).wait_for(timeout=TIMEOUT)  # a confusion matrix and the curves at least
    assert page.locator("[data-testid=stDataFrame]").count() >= 1
    assert page.locator("[data-testid=stException]").count() == 0
    context.close()


@pytest.mark.skipif(not {"modality", "brain-tumor"} <= set(shipped_tasks()), reason="needs the modality and brain models")
def test_a_brain_mri_is_flagged_and_one_click_opens_it_in_the_brain_task(open_page, brain_mri):
    page = open_page()
    page.locator("input[type=file]").first.set_input_files({"name": "brain.jpg", "mimeType": "image/jpeg",
                                                            "buffer": brain_mri})
    page.get_by_text("Another model knows images like this one").wait_for(timeout=TIMEOUT)
    page.get_by_role("button", name=re.compile("Open it in Brain tumour")).click()
    expected = load_classifier("brain-tumor").predict(read_image(brain_mri))
    heading = expected.label if expected.confidence >= 0.6 else "Not recognised"
    page.get_by_role("heading", name=re.compile(heading)).first.wait_for(timeout=TIMEOUT)
    assert page.locator("[data-testid=stException]").count() == 0
