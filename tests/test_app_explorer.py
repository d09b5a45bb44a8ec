"""AppTest tests of the dataset explorer page (app_pages/explorer.py), on a tiny model and generated images."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from medimg_core import get_task
from medimg_core.data.datasets import load_dataset
from medimg_core.reports.embed import compute_embedding, save_embedding, shipped_embedding_path
from medimg_core.inference.predict import load_classifier
from tests.test_embed import PER_CLASS, pool, supplement, tiny  # noqa: F401  (fixtures: the tiny model, a pool)

ROOT = Path(__file__).resolve().parents[1]
SPEC = get_task("modality")
N = 6 * PER_CLASS


@pytest.fixture
def env(tiny, tmp_path, monkeypatch):  # noqa: F811
    """The app sees only the tiny model, no downloaded dataset, and private caches; Streamlit caches start empty."""
    data, model = tiny
    monkeypatch.setenv("MEDIMG_MODELS_DIR", str(model.parent))
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path / "no-data"))
    monkeypatch.setenv("MEDIMG_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MEDIMG_EMBEDDINGS_DIR", str(tmp_path / "shipped"))
    st.cache_resource.clear()
    st.cache_data.clear()
    yield data, model
    st.cache_resource.clear()  # the other pages' tests must not get the tiny model
    st.cache_data.clear()


def ship_embedding(data: Path, model: Path) -> None:
    """Write the shipped embedding of the tiny model (what `embed --out` writes into assets/)."""
    emb = compute_embedding(load_classifier("modality", model), load_dataset(SPEC, data), methods=("pca", "tsne"))
    save_embedding(emb, shipped_embedding_path("modality"))


def open_explorer(view: str | None = None) -> AppTest:
    """A fresh session on the explorer page (optionally on one tab)."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page("app_pages/explorer.py").run()
    assert not at.exception, at.exception
    if view:
        show(at, view)
    return at


def show(at: AppTest, view: str) -> AppTest:
    """Switch the page's tabs to `view` and rerun."""
    at.session_state["explorer_view"] = view
    at.run()
    assert not at.exception, at.exception
    return at


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly figures on the page by key (their JSON specs)."""
    return {c.proto.id.rsplit("-", 1)[-1]: json.loads(c.proto.spec) for c in at.get("plotly_chart")}


def values(v) -> np.ndarray:
    """A plotly JSON array: a plain list, or a typed array {"dtype", "bdata"} (base64)."""
    if isinstance(v, dict) and "bdata" in v:
        return np.frombuffer(base64.b64decode(v["bdata"]), v["dtype"])
    return np.asarray(v)


def point_count(spec: dict) -> int:
    """Points of the map: the traces marked meta='points'."""
    return sum(len(values(t["x"])) for t in spec["data"] if t.get("meta") == "points")


def texts(at: AppTest) -> str:
    return "\n".join([m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info])


def test_without_the_dataset_the_shipped_map_draws(env):
    data, model = env
    ship_embedding(data, model)
    at = open_explorer()
    assert "not downloaded" in texts(at)
    figs = charts(at)
    assert "explorer_map" in figs
    spec = figs["explorer_map"]
    assert point_count(spec) == N
    assert {t["type"] for t in spec["data"]} == {"scattergl"}
    assert sorted(t["name"] for t in spec["data"] if t.get("meta") == "legend")[0].startswith("AbdomenCT (")
    assert "precomputed map shipped with the app" in texts(at)
    assert "Click a point, or drag a box" in texts(at)


def test_without_dataset_or_shipped_map_the_page_says_what_to_do(env):
    at = open_explorer()
    assert "explorer_map" not in charts(at)
    assert any("download the dataset" in w.value for w in at.warning)
    assert "The summary needs the dataset" in texts(show(at, "Summary"))


def pool_embedding():
    """A hand-made map of a pool: 3 own images, 2 scans of other hospitals, 2 images of other kinds (one not flagged)."""
    from medimg_core.reports.embed import Embedding

    files = ["M/AbdomenCT/0.png", "M/AbdomenCT/1.png", "M/Hand/0.png", "scan-kinds/ChestCT/a.png", "scan-kinds/Hand/b.png",
             "scan-kinds/other/k.png", "synthetic/discs/3.png"]
    return Embedding("modality", SPEC.classes, {"pca": np.arange(14, dtype=np.float32).reshape(7, 2)},
                     np.array([0, 0, 4, 3, 4, 6, 6]), np.array([0, 4, 4, 3, 4, 2, 1]),
                     np.array([0.9, 0.6, 1.0, 0.8, 0.9, 0.5, 0.7], np.float32),
                     np.array([False, False, False, False, False, True, False]),
                     np.array(["val", "val", "train", "train", "train", "val", "val"]), files, "m", "d",
                     origin=np.array(["mednist"] * 3 + ["hospital-a", "hospital-b", "knees", "synthetic"]), own="mednist")


def point_hovers(fig) -> dict[int, str]:
    """Each point's hover text, by embedding row (the trace's template with the point's text filled in)."""
    return {int(row): t.hovertemplate.replace("%{text}", text) for t in fig.data if t.meta == "points"
            for row, text in zip(t.customdata[:, 0], t.text)}


def test_the_source_colouring_sets_the_own_dataset_apart_from_other_datasets_and_other_kinds():
    from medimg_app.explorer_map import SOURCE_COLOURS, embedding_figure

    fig = embedding_figure(pool_embedding(), "pca", "source")
    legend = {t.name: t.marker.color for t in fig.data if t.meta == "legend"}
    assert legend == {"mednist (own dataset) (3)": SOURCE_COLOURS[0],
                      "same kinds, other datasets (2 datasets, 2)": SOURCE_COLOURS[1],
                      "other kinds ('other') (2 datasets, 2)": SOURCE_COLOURS[2]}
    colours = {int(row): t.marker.color for t in fig.data if t.meta == "points" for row in t.customdata[:, 0]}
    assert [colours[i] for i in range(7)] == [SOURCE_COLOURS[g] for g in (0, 0, 0, 1, 1, 2, 2)]
    hovers = point_hovers(fig)
    assert "dataset: hospital-a" in hovers[3] and "dataset: knees" in hovers[5] and "dataset" not in hovers[0]


def test_other_points_get_their_own_class_colour_and_legend_entry():
    from medimg_app.explorer_map import OTHER_COLOUR, embedding_figure

    fig = embedding_figure(pool_embedding(), "pca", "class")
    legend = {t.name: t.marker.color for t in fig.data if t.meta == "legend"}
    assert legend["other (2)"] == OTHER_COLOUR and len(legend) == len(SPEC.classes) + 1
    hovers = point_hovers(fig)
    assert hovers[5].startswith("<b>other</b> → not recognised") and hovers[6].startswith("<b>other</b> → BreastMRI")
    ringed = {int(r) for t in fig.data if t.meta == "points" and t.marker.line.color for r in t.customdata[:, 0]}
    assert ringed == {1, 6}  # a misnamed own image, and an image of another kind the model did not flag


def test_the_selection_panel_lists_points_outside_the_loaded_dataset(tiny, pool, tmp_path):  # noqa: F811
    """A pool map's points of other datasets have no image in the loaded (own) dataset: they are listed."""
    def script(data: str, saved: str) -> None:
        import numpy as np

        from medimg_app.explorer_widgets import selection_panel
        from medimg_core import get_task
        from medimg_core.data.datasets import load_dataset
        from medimg_core.reports.embed import align, load_embedding

        ds, emb = load_dataset(get_task("modality"), data), load_embedding(saved)
        picked = np.concatenate([np.flatnonzero(emb.mine)[:2], np.flatnonzero(~emb.mine)[:4]])
        selection_panel(emb, picked, ds, align(emb.files, ds.files))

    emb = compute_embedding(load_classifier("modality", tiny[1]), pool, methods=("pca",))
    saved = save_embedding(emb, tmp_path / "pool.npz")
    at = AppTest.from_function(script, args=(str(tiny[0]), str(saved)), default_timeout=60).run()
    assert not at.exception, at.exception
    assert "**6 selected**" in at.markdown[0].value
    assert len(at.get("image")) == 2
    table = at.dataframe[0].value
    assert len(table) == 4 and set(table["dataset"]) <= set(emb.origin[~emb.mine]) and "file" in table
    assert any("not in the loaded dataset" in c.value for c in at.caption)


def test_the_validation_view_puts_held_out_images_of_other_kinds_in_an_other_row():
    def script() -> None:
        from medimg_app.explorer_widgets import validation_section
        from tests.test_app_explorer import pool_embedding

        validation_section(pool_embedding(), None, None, {"validation": {"accuracy": 0.5}})

    at = AppTest.from_function(script, default_timeout=60).run()
    assert not at.exception, at.exception
    headline = at.markdown[0].value
    assert "2 images of mednist, accuracy 50.00% (as in the model card)" in headline
    assert "2 images of 2 held-out datasets, 50.0% right" in headline
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    assert spec["data"][0]["x"][-1] == "other" and "other" in at.dataframe[0].value.index


def test_with_the_own_dataset_loaded_the_shipped_pool_map_draws(env, pool):  # noqa: F811
    data, model = env
    save_embedding(compute_embedding(load_classifier("modality", model), pool), shipped_embedding_path("modality"))
    at = open_explorer()
    at.text_input(key="explorer_data").set_value(str(data)).run()
    assert not at.exception, at.exception
    assert "no embedding map" not in texts(at) and point_count(charts(at)["explorer_map"]) == len(pool)
    at.segmented_control(key="explorer_colour").set_value("source").run()
    assert not at.exception, at.exception
    assert "Source: grey: mednist, the task's own dataset" in texts(at)
    show(at, "Validation errors")
    assert "explorer_confusion" in charts(at) and "Validation split" in texts(at)


def test_a_local_dataset_is_embedded_once_then_every_view_works(env):
    data, model = env
    at = open_explorer()
    at.text_input(key="explorer_data").set_value(str(data)).run()
    assert not at.exception, at.exception
    assert "no embedding map of this model on this dataset" in texts(at)
    at.button(key="explorer_compute").click().run()
    assert not at.exception, at.exception
    spec = charts(at)["explorer_map"]
    assert point_count(spec) == N
    assert "map just computed" in texts(at) or "map cached on disk" in texts(at)

    at.segmented_control(key="explorer_colour").set_value("confidence").run()
    spec = charts(at)["explorer_map"]
    assert point_count(spec) == N and spec["layout"]["coloraxis"]["colorscale"]
    assert all(t["marker"]["coloraxis"] == "coloraxis" for t in spec["data"] if t.get("meta") == "points")
    at.segmented_control(key="explorer_projection").set_value("pca").run()
    assert not at.exception

    show(at, "Summary")
    figs = charts(at)
    assert {"explorer_counts", "explorer_pixels", "explorer_means"} <= set(figs)
    bars = {t["name"]: values(t["y"]).sum() for t in figs["explorer_counts"]["data"]}
    assert sum(bars.values()) == N and set(bars) == {"train", "val"}
    assert len(at.get("image")) == len(SPEC.classes)  # one mean image per class
    assert f"{N:,}" in [m.value for m in at.metric]

    show(at, "Gallery")
    assert len(at.get("image")) == 6 * 4  # rows of 6 thumbnails, GALLERY_SIZE = 24
    at.selectbox(key="explorer_gallery_class").set_value("Hand").run()
    captions = [im.proto.imgs[0].caption for im in at.get("image")]
    assert len(captions) == PER_CLASS and all(": Hand →" in c for c in captions)
    at.selectbox(key="explorer_gallery_outcome").set_value("wrong").run()
    assert all(c.startswith("✗") for c in [im.proto.imgs[0].caption for im in at.get("image")])
    before = [im.proto.imgs[0].caption for im in at.selectbox(key="explorer_gallery_outcome").set_value("all").run().get("image")]
    at.button(key="explorer_gallery_shuffle").click().run()
    after = [im.proto.imgs[0].caption for im in at.get("image")]
    assert sorted(before) == sorted(after)  # all 12 Hand images either way, in a new order
    assert not at.exception

    show(at, "Validation errors")
    assert "explorer_confusion" in charts(at)
    assert "Validation split" in texts(at) and "as in the model card" in texts(at)
    assert len(at.dataframe) >= 1


def test_the_selection_panel_shows_the_selected_images(tiny):  # noqa: F811
    """selection_panel, given rows picked on the map, shows their images (or their files without the dataset)."""
    def script(data: str, model: str, with_dataset: bool) -> None:
        import numpy as np

        from medimg_app.explorer_widgets import selection_panel
        from medimg_core import get_task
        from medimg_core.data.datasets import load_dataset
        from medimg_core.reports.embed import align, compute_embedding
        from medimg_core.inference.predict import load_classifier

        ds = load_dataset(get_task("modality"), data)
        emb = compute_embedding(load_classifier("modality", model), ds, methods=("pca",))
        if with_dataset:
            selection_panel(emb, np.array([0, 5, 40]), ds, align(emb.files, ds.files))
        else:
            selection_panel(emb, np.array([1, 2]), None, None)

    data, model = tiny
    at = AppTest.from_function(script, args=(str(data), str(model), True), default_timeout=60).run()
    assert not at.exception, at.exception
    assert "**3 selected**" in at.markdown[0].value
    assert len(at.get("image")) == 3
    at = AppTest.from_function(script, args=(str(data), str(model), False), default_timeout=60).run()
    assert not at.exception, at.exception
    assert "**2 selected**" in at.markdown[0].value and not at.get("image")
    assert len(at.dataframe) == 1 and len(at.dataframe[0].value) == 2  # no dataset: the files are listed


def test_the_map_hover_shows_class_prediction_and_the_whole_file_name():
    from medimg_app.explorer_map import embedding_figure, shared_folder
    from medimg_core.reports.embed import Embedding

    assert shared_folder(["M/Hand/1.png", "M/Hand/22.png"]) == "M/Hand/" and shared_folder(["1.png"]) == ""
    assert shared_folder(["M/Ha/1.png", "M/Hb/2.png"]) == "M/"
    files = ["M/AbdomenCT/0.png", "M/AbdomenCT/1.png", "M/Hand/0.png", "x.png"]
    emb = Embedding("modality", SPEC.classes, {"pca": np.arange(8, dtype=np.float32).reshape(4, 2)},
                    np.array([0, 0, 4, 4]), np.array([0, 4, 4, 4]), np.array([0.9, 0.6, 1.0, 0.99], np.float32),
                    np.zeros(4, bool), np.array(["val"] * 4), files, "m", "d")
    fig = embedding_figure(emb, "pca")
    hovers = {}
    for trace in fig.data:
        if trace.meta == "points":
            for row, text in zip(trace.customdata[:, 0].astype(int), trace.text):
                folder = trace.hovertemplate.split("<br>")[1].split("%{text}")[0]
                hovers[row] = (trace.hovertemplate.split("<br>")[0], folder + text)
    assert sorted(hovers) == [0, 1, 2, 3]
    assert all(hovers[i][1] == files[i] for i in range(4))
    assert hovers[1][0].startswith("<b>AbdomenCT</b> → Hand") and hovers[3][0].startswith("<b>Hand</b> → Hand")
    wrong = [t for t in fig.data if t.meta == "points" and t.marker.line.color]
    assert len(wrong) == 1 and list(wrong[0].customdata[:, 0]) == [1]


def test_selected_indices_reads_customdata():
    from medimg_app.explorer_map import selected_indices

    points = [{"customdata": 7}, {"customdata": [3, 0.9]}, {"customdata": {"0": 7, "1": 0.5}}, {"customdata": {"0": 11.0}},
              {"x": 1}]
    assert selected_indices({"selection": {"points": points}}).tolist() == [3, 7, 11]
    assert selected_indices(None).tolist() == []
