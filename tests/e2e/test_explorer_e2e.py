"""End-to-end tests of the dataset explorer in real headless Chromium: the WebGL map and its selection.

They use the installed modality model and its stored embedding (the shipped
assets/embeddings/modality.npz, or the disk cache of `medimg embed`), with or
without the downloaded dataset. Timings are printed (run with -s), not asserted.
"""
from __future__ import annotations

import re
import time

import numpy as np
import pytest

from benchmarks.explorer_page import MAP, SELECTION, expected_embedding, select_around, wait_for_map
from medimg_app.cache import shipped_tasks
from medimg_core import get_task
from medimg_core.data.datasets import dataset_path

pytestmark = [pytest.mark.e2e, pytest.mark.skipif("modality" not in shipped_tasks(),
                                                  reason="no modality model installed (assets/models or $MEDIMG_MODELS_DIR)")]
# The box Plotly selected, in data coordinates: [x0, x1, y0, y1].
BOX_JS = """(sel) => {
  const s = (document.querySelector(sel).layout.selections || [])[0];
  return s ? [Math.min(s.x0, s.x1), Math.max(s.x0, s.x1), Math.min(s.y0, s.y1), Math.max(s.y0, s.y1)] : null;
}"""


@pytest.fixture(scope="module")
def expected():
    """The embedding the page must draw (skips when the installed model has none stored)."""
    emb = expected_embedding()
    if emb is None:
        pytest.skip("no stored embedding for the installed model: run `medimg embed --task modality`")
    return emb


@pytest.fixture
def explorer(browser, app_url):
    """A fresh session on the explorer page."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    started = time.perf_counter()
    page.goto(f"{app_url}/explorer")
    page.started = started
    yield page
    context.close()


def test_the_map_draws_every_point_in_one_webgl_figure(explorer, expected):
    wait_for_map(explorer, len(expected))
    print(f"\nexplorer: {len(expected):,}-point map drawn {time.perf_counter() - explorer.started:.2f} s after navigation")
    types = explorer.evaluate(f"() => document.querySelector({MAP!r})._fullData.map(t => t.type)")
    assert set(types) == {"scattergl"}
    gl_figures = explorer.evaluate("() => [...document.querySelectorAll('.js-plotly-plot')]"
                                   ".filter(g => g.querySelector('canvas')).length")
    assert gl_figures == 1  # browsers cap WebGL contexts: one WebGL figure per page
    rows = explorer.evaluate(f"""() => document.querySelector({MAP!r})._fullData.filter(t => t.meta === 'points')
        .flatMap(t => Array.from({{length: t.x.length}}, (_, i) => t.customdata[i][0]))""")
    assert sorted(rows) == list(range(len(expected)))  # every embedding row exactly once


def test_a_box_selection_shows_the_selected_images(explorer, expected):
    wait_for_map(explorer, len(expected))
    explorer.wait_for_timeout(500)
    method = "tsne" if "tsne" in expected.coords else "pca"
    xy = expected.coords[method].astype(np.float32)
    own = np.ones(len(xy), bool) if expected.origin is None else expected.origin == expected.own
    x, y = (float(v) for v in xy[np.flatnonzero(own)[np.argmax(expected.labels[own])]])  # a point of the last class
    drag_s, shown_s = select_around(explorer, x, y)
    x0, x1, y0, y1 = explorer.evaluate(BOX_JS, MAP)
    inside = np.flatnonzero((xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1))
    assert len(inside) >= 1
    print(f"\nexplorer: box drag {drag_s:.2f} s, {len(inside)} selected images shown {shown_s:.2f} s after release")
    panel = explorer.locator(SELECTION)
    count = int(re.search(r"([\d,]+) selected", panel.inner_text()).group(1).replace(",", ""))
    assert abs(count - len(inside)) <= max(2, len(inside) // 100)  # points on the box's edge may go either way
    if dataset_path(get_task("modality")) is not None:
        shown = panel.locator("img").count()  # images of other datasets are listed by file, not shown
        assert shown == min(count, 30) if own[inside].all() else 1 <= shown <= min(count, 30)
        captions = panel.inner_text()
        assert any(expected.files[i].rsplit("/", 1)[-1] in captions for i in inside)
    else:
        assert "Download the dataset to see the images" in panel.inner_text()
