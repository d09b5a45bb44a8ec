"""End-to-end tests of the Predict page in real headless Chromium (Playwright) against `streamlit run`."""
from __future__ import annotations

import re
import time

import numpy as np
import pytest
from PIL import Image

from medimg_app.cache import shipped_tasks
from medimg_app.predict_widgets import upscale
from medimg_app.widgets import flag
from medimg_core import load_classifier, read_image, to_model_input
from medimg_core.inference.explain import overlay

pytestmark = [pytest.mark.e2e, pytest.mark.skipif("modality" not in shipped_tasks(),
                                                  reason="no modality model installed (assets/models or $MEDIMG_MODELS_DIR)")]
TIMEOUT = 60_000  # ms for one result to appear (first request also loads the model)
HEADER_PX, ROW_PX = 35, 56  # results-table header and row heights (row_height=56 in predict_widgets.results_table)


@pytest.fixture(scope="module")
def images(request, samples) -> list[tuple[str, bytes]]:
    """Two different images: real Hand and CXR scans when Medical MNIST is there, else drawn ones."""
    try:
        scans = request.getfixturevalue("scans")
        return [("alpha-hand.jpeg", scans["Hand"]), ("beta-cxr.jpeg", scans["CXR"])]
    except pytest.skip.Exception:
        return [("alpha-hand.png", samples.hand_like_png()), ("beta-noise.png", samples.noise_png())]


def expected_heading(data: bytes) -> str:
    """The result-card heading the page must show for an image, according to the core."""
    pred = load_classifier("modality").predict(read_image(data))
    return "Not recognised" if flag(pred) else pred.label


def expected_overlay(data: bytes) -> np.ndarray:
    """The default Grad-CAM overlay (opacity 0.5) the page should offer for download, computed by the core."""
    clf = load_classifier("modality")
    image = read_image(data)
    heat = clf.explain(image, method="Grad-CAM")
    return overlay(upscale(to_model_input(image, 64)), upscale(heat, resample=Image.Resampling.BILINEAR), 0.5)


def upload(page, name: str, data: bytes) -> None:
    """Drop one file into the page's file input."""
    mime = "image/jpeg" if name.endswith(".jpeg") else "image/png"
    page.locator("input[type=file]").first.set_input_files({"name": name, "mimeType": mime, "buffer": data})


def wait_for_result(page, name: str) -> None:
    """Wait until the detail of `name` and its raw heatmap are on the page."""
    page.get_by_role("heading", name=name, exact=True).wait_for(timeout=TIMEOUT)
    page.get_by_text(re.compile(r"^Raw heatmap \(64 x 64\)")).wait_for(timeout=TIMEOUT)


def downloaded_overlay(page) -> np.ndarray:
    """Click 'Download the overlay (PNG)' and return the downloaded picture."""
    with page.expect_download(timeout=TIMEOUT) as info:
        page.get_by_role("button", name=re.compile("Download the overlay")).click()
    return np.asarray(Image.open(info.value.path()).convert("RGB")).astype(np.int16)


def assert_no_exception(page) -> None:
    assert page.locator("[data-testid=stException]").count() == 0


def test_upload_shows_label_chart_and_heatmap(page, images):
    name, data = images[0]
    start = time.perf_counter()
    upload(page, name, data)
    wait_for_result(page, name)
    elapsed = time.perf_counter() - start
    assert page.get_by_role("heading", name=expected_heading(data), exact=True).is_visible()
    charts = page.locator("[data-testid=stPlotlyChart]")
    charts.first.wait_for(timeout=TIMEOUT)
    assert charts.count() == 2
    assert page.get_by_text("Probability of each class").count() >= 1
    heatmap = page.get_by_text(re.compile(r"^Grad-CAM for "))
    assert heatmap.is_visible()
    images_loaded = page.locator("[data-testid=stImage] img").evaluate_all(
        "imgs => imgs.map(i => i.complete && i.naturalWidth > 0)")
    assert images_loaded == [True, True, True]
    assert page.get_by_text("What it does not prove").is_visible()
    assert_no_exception(page)
    print(f"\nupload -> label, chart and heatmap in {elapsed:.2f} s (first request, model already warm or not)")


def test_broken_file_shows_error_and_the_page_stays_usable(page, samples, images):
    upload(page, "broken.png", samples.broken)
    error = page.locator("[data-testid=stAlertContentError]")
    error.first.wait_for(timeout=TIMEOUT)
    assert "broken.png" in error.first.inner_text()
    assert "not an image we can read" in error.first.inner_text()
    assert_no_exception(page)

    name, data = images[0]
    upload(page, name, data)  # added beside the broken file: a results table
    page.locator("[data-testid=stDataFrame]").wait_for(timeout=TIMEOUT)
    page.get_by_role("button", name=re.compile("Download the results")).wait_for(timeout=TIMEOUT)
    assert "broken.png" in page.locator("[data-testid=stAlertContentError]").first.inner_text()
    assert page.get_by_text("Choose a row").is_visible()
    assert_no_exception(page)

    table = page.locator("[data-testid=stDataFrame]").bounding_box()
    page.mouse.click(table["x"] + 16, table["y"] + HEADER_PX + 1.5 * ROW_PX)  # the second row's selection box
    wait_for_result(page, name)
    assert page.get_by_role("heading", name=expected_heading(data), exact=True).is_visible()
    assert_no_exception(page)


def test_two_sessions_at_once_get_their_own_results(open_page, images):
    pages = [open_page() for _ in images]
    for page, (name, data) in zip(pages, images):  # back to back: both scripts run at the same time
        upload(page, name, data)
    for page, (name, _) in zip(pages, images):
        wait_for_result(page, name)
    for page, (name, data), (other, _) in zip(pages, images, images[::-1]):
        assert page.get_by_role("heading", name=expected_heading(data), exact=True).is_visible()
        assert page.get_by_text(other).count() == 0
        got = downloaded_overlay(page)
        assert np.abs(got - expected_overlay(data)).mean() < 2.0, f"{name}: the overlay is not its own"
        assert_no_exception(page)


def test_opening_predict_directly_uses_the_apps_navigation(open_page):
    page = open_page()
    page.get_by_text("Drop a scan above").wait_for(timeout=TIMEOUT)
    nav = page.locator("[data-testid=stSidebarNav]").inner_text()
    assert "Home" in nav and "Predict" in nav
