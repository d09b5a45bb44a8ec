"""Drawing helpers of the dataset explorer: summary charts, galleries, the embedding map, validation errors.

Figures are built by plain functions (testable without a running app); the `*_section`
functions read their own widgets and draw one part of the page. The page holds one WebGL
figure (the embedding map); every other chart is SVG.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from medimg_core.data import Dataset
from medimg_core.embed import Embedding, embedding_for
from medimg_core.explore import OUTCOMES, confusion_summary, outcome_mask, sample_indices

from .cache import classifier, explorer_dataset

# D3's category colours without its red and pink, so the red rings of misclassified points stand out
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22"]
COLOUR_BY = {"class": "True class", "predicted": "Predicted class", "confidence": "Confidence"}
PROJECTIONS = {"tsne": "t-SNE", "pca": "PCA"}
WRONG_COLOUR = "#d62728"
MAX_SHOWN = 30  # images shown for a selection
GALLERY_SIZE = 24
THUMB = 96  # display width of a thumbnail in pixels


def class_colour(c: int) -> str:
    """The fixed colour of class index c, shared by every chart."""
    return PALETTE[c % len(PALETTE)]


def shared_folder(files: Sequence[str]) -> str:
    """The longest folder prefix ("a/b/") common to all the file names ("" when none)."""
    prefix = os.path.commonprefix(list(files)) if files else ""
    return prefix[: prefix.rfind("/") + 1]


def embedding_figure(emb: Embedding, method: str = "tsne", colour_by: str = "class", highlight_wrong: bool = True,
                     height: int = 620) -> go.Figure:
    """The embedding map: one WebGL figure, a scattergl trace per (true, predicted) class pair.

    Splitting by the pair puts both class names (and the files' shared folder) in each trace's hover
    template, so per point the browser only gets x, y, customdata [embedding row, confidence] and
    the file's name within that folder. Misclassified traces are drawn last, larger and ringed in
    red. Traces with points have meta "points"; the legend comes from point-less traces (meta
    "legend"), one per class.
    """
    xy = emb.coords[method].astype(np.float32)
    k = len(emb.classes)
    pair = emb.labels * k + emb.preds
    order = sorted(np.unique(pair).tolist(), key=lambda p: (p // k != p % k, p))  # correct pairs first
    fig = go.Figure()
    if colour_by != "confidence":  # legend entries only (no points), so rings never show in the legend
        key = emb.labels if colour_by == "class" else emb.preds
        for c, name in enumerate(emb.classes):
            fig.add_trace(go.Scattergl(x=[None], y=[None], mode="markers", name=f"{name} ({int((key == c).sum()):,})",
                                       legendgroup=str(c), marker=dict(size=8, color=class_colour(c)), meta="legend"))
    for p in order:
        t, q = divmod(p, k)
        idx = np.flatnonzero(pair == p)
        files = [emb.files[i] for i in idx]
        folder = shared_folder(files)  # written once in the template, so each point carries only its file name
        wrong = t != q
        group = t if colour_by != "predicted" else q
        marker = dict(size=9 if wrong and highlight_wrong else 3, opacity=1.0 if wrong else 0.7)
        if colour_by == "confidence":
            marker.update(color=emb.confidence[idx].astype(np.float32), coloraxis="coloraxis")
        else:
            marker.update(color=class_colour(group))
        if wrong and highlight_wrong:
            marker.update(line=dict(color=WRONG_COLOUR, width=2))
        fig.add_trace(go.Scattergl(
            x=xy[idx, 0], y=xy[idx, 1], mode="markers", meta="points", marker=marker,
            name=f"{emb.classes[t]} → {emb.classes[q]}", legendgroup=str(group), showlegend=False,
            customdata=np.column_stack([idx, emb.confidence[idx]]).astype(np.float32),
            text=[name[len(folder):] for name in files], hovertemplate=(
                f"<b>{emb.classes[t]}</b> → {emb.classes[q]} (%{{customdata[1]:.0%}})<br>{folder}%{{text}}<extra></extra>")))
    fig.update_layout(
        height=height, margin=dict(l=0, r=0, t=10, b=0), dragmode="select", hovermode="closest",
        legend=dict(itemsizing="constant", orientation="h", yanchor="top", y=-0.01, x=0),
        xaxis=dict(showticklabels=False, title=None, zeroline=False, showgrid=False), uirevision=method,
        yaxis=dict(showticklabels=False, title=None, zeroline=False, showgrid=False, scaleanchor="x"),
        coloraxis=dict(colorscale="Viridis", cmin=0, cmax=1, colorbar=dict(title="confidence", thickness=12, tickformat=".0%")),
        showlegend=colour_by != "confidence",
    )
    return fig


def selected_indices(event) -> np.ndarray:
    """Embedding rows of the points selected on the map (unique, sorted; empty when none)."""
    points = (event or {}).get("selection", {}).get("points", []) if isinstance(event, dict) else \
        getattr(getattr(event, "selection", None), "points", []) or []
    rows = []
    for point in points:
        value = point.get("customdata")  # [row, confidence]; a typed-array row arrives as {"0": row, "1": ...}
        if isinstance(value, dict):
            value = value.get("0")
        elif isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            rows.append(int(value))
    return np.unique(np.array(rows, np.int64))


def counts_figure(counts: pd.DataFrame) -> go.Figure:
    """Stacked bars of images per class, one colour per split (counts from class_split_counts)."""
    fig = px.bar(counts, x="class", y="images", color="split", text_auto=True,
                 color_discrete_map={"train": "#4c78a8", "val": "#f58518", "test": "#54a24b", "unused": "#bab0ac"})
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), legend_title=None, xaxis_title=None,
                      title="Images per class and split")
    return fig


def pixel_histogram_figure(edges: np.ndarray, hist: np.ndarray, classes: Sequence[str]) -> go.Figure:
    """One line per class: fraction of the class's pixels at each intensity (log scale)."""
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure([go.Scatter(x=centres, y=hist[c], mode="lines", name=name, line=dict(color=class_colour(c)))
                     for c, name in enumerate(classes)])
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), title="Pixel intensities per class",
                      xaxis_title="intensity (0-255)", yaxis=dict(type="log", title="fraction of pixels", exponentformat="power"))
    return fig


def mean_intensity_figure(means: np.ndarray, labels: np.ndarray, classes: Sequence[str], bins: int = 40) -> go.Figure:
    """Per class: histogram of each image's mean intensity (binned here, so the browser gets only bins)."""
    edges = np.linspace(0, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for c, name in enumerate(classes):
        h, _ = np.histogram(means[labels == c], edges)
        fig.add_trace(go.Scatter(x=centres, y=h, mode="lines", name=name, line=dict(color=class_colour(c), shape="hvh")))
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), title="Mean intensity of each image",
                      xaxis=dict(title="mean pixel value", tickformat=".0%"), yaxis_title="images")
    return fig


def confusion_figure(cm: np.ndarray, classes: Sequence[str]) -> go.Figure:
    """Annotated confusion matrix heatmap (rows: true class, columns: predicted), log-ish colour."""
    fig = go.Figure(go.Heatmap(z=np.log1p(cm), x=list(classes), y=list(classes), text=cm, texttemplate="%{text}",
                               colorscale="Blues", showscale=False,
                               hovertemplate="true %{y}, predicted %{x}: %{text}<extra></extra>"))
    fig.update_layout(height=120 + 45 * len(classes), margin=dict(l=10, r=10, t=30, b=10),
                      xaxis=dict(title="predicted", side="top"), yaxis=dict(title="true", autorange="reversed"))
    return fig


def caption(emb: Embedding | None, i: int, file: str) -> str:
    """Thumbnail caption: file name, and 'true → predicted (confidence)' when predictions are known."""
    name = PurePosixPath(file).name
    if emb is None:
        return name
    mark = "✗ " if emb.preds[i] != emb.labels[i] else ""
    return f"{mark}{name}: {emb.classes[emb.labels[i]]} → {emb.classes[emb.preds[i]]} ({emb.confidence[i]:.0%})"


def image_grid(images: Sequence[np.ndarray], captions: Sequence[str], columns: int = 6) -> None:
    """Thumbnails in rows of `columns`, each with its caption."""
    for start in range(0, len(images), columns):
        cols = st.columns(columns)
        for col, image, text in zip(cols, images[start : start + columns], captions[start : start + columns]):
            col.image(image, caption=text, width=THUMB)


def show_rows(emb: Embedding, picked: np.ndarray, ds: Dataset | None, rows: np.ndarray | None, columns: int = 6) -> None:
    """Images of some embedding rows (or their file names when the dataset is absent)."""
    if ds is None or rows is None:
        st.caption("Download the dataset to see the images; here are their files.")
        st.dataframe(pd.DataFrame({"file": [emb.files[i] for i in picked],
                                   "class": [emb.classes[emb.labels[i]] for i in picked],
                                   "predicted": [emb.classes[emb.preds[i]] for i in picked],
                                   "confidence": emb.confidence[picked]}),
                     hide_index=True, height=300, column_config={"confidence": st.column_config.NumberColumn(format="percent")})
        return
    present = picked[rows[picked] >= 0]
    if len(present) < len(picked):
        st.caption(f"{len(picked) - len(present)} of these files are not in the loaded dataset.")
    image_grid([ds.images[rows[i]] for i in present], [caption(emb, i, emb.files[i]) for i in present], columns)


def summary_section(ds: Dataset, summary: dict) -> None:
    """Counts per class and split, intensity histograms and mean images of a dataset."""
    n, size = len(ds), ds.images.shape[1:]
    c = st.columns(3)
    c[0].metric("Images", f"{n:,}")
    c[1].metric("Classes", len(ds.classes))
    c[2].metric("Stored size", f"{size[1]} × {size[0]} px")
    st.caption(f"Every image is stored preprocessed exactly as the model sees it: grayscale, letterboxed onto a "
               f"{size[1]} × {size[0]} square. The original files' sizes are not kept, so all numbers below describe "
               f"the preprocessed images. Splits are the shipped model's: 'val' is the validation set of its card.")
    st.plotly_chart(counts_figure(summary["counts"]), key="explorer_counts")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(pixel_histogram_figure(summary["edges"], summary["pixel_hist"], ds.classes), key="explorer_pixels")
    with right:
        st.plotly_chart(mean_intensity_figure(summary["mean_intensity"], ds.labels, ds.classes), key="explorer_means")
    st.markdown("**Mean image of each class**")
    cols = st.columns(len(ds.classes))
    for c, (col, name) in enumerate(zip(cols, ds.classes)):
        col.image(summary["mean_images"][c], caption=f"{name} ({int((ds.labels == c).sum()):,})", width="stretch", clamp=True)


def gallery_section(ds: Dataset, emb: Embedding | None, rows: np.ndarray | None) -> None:
    """Random images of a chosen class and outcome, with a refresh button."""
    c = st.columns([2, 2, 2, 1], vertical_alignment="bottom")
    chosen = c[0].selectbox("Class", ["All classes", *ds.classes], key="explorer_gallery_class")
    outcomes = OUTCOMES if emb is not None and rows is not None else OUTCOMES[:1]
    outcome = c[1].selectbox("Outcome (shipped model)", outcomes, key="explorer_gallery_outcome",
                             help=None if len(outcomes) > 1 else "Needs the embedding map of this dataset (Embedding map tab).")
    low = c[2].slider("Low confidence below", 0.3, 1.0, 0.8, 0.05, key="explorer_gallery_low",
                      disabled=outcome != "low confidence")
    if c[3].button("Shuffle", key="explorer_gallery_shuffle", icon=":material/casino:", width="stretch"):
        st.session_state["explorer_gallery_seed"] = st.session_state.get("explorer_gallery_seed", 0) + 1
    seed = st.session_state.get("explorer_gallery_seed", 0)
    if emb is None or rows is None:
        mask = np.ones(len(ds), bool) if chosen == "All classes" else ds.labels == ds.classes.index(chosen)
        picked = sample_indices(mask, GALLERY_SIZE, seed)
        st.caption(f"{int(mask.sum()):,} images match; showing {len(picked)} at random.")
        image_grid([ds.images[i] for i in picked], [caption(None, i, ds.files[i]) for i in picked])
        return
    mask = outcome_mask(outcome, emb.labels, emb.preds, emb.confidence, emb.ood, low) & (rows >= 0)
    if chosen != "All classes":
        mask &= emb.labels == emb.classes.index(chosen)
    picked = sample_indices(mask, GALLERY_SIZE, seed)
    st.caption(f"{int(mask.sum()):,} images match; showing {len(picked)} at random. ✗ marks a misclassified image.")
    show_rows(emb, picked, ds, rows)


def compute_offer(task: str, path: str, stamp: int, n: int) -> None:
    """Offer to run the model over the dataset and project it, with a progress bar; reruns when done."""
    minutes = max(1, round(n / 53_000 * 6))
    st.info(f"There is no embedding map of this model on this dataset yet. Computing it runs the model over "
            f"{n:,} images and projects the features with PCA and t-SNE (about {minutes} min for {n:,} images on 2 CPU "
            f"cores); the result is cached on disk for every later visit.")
    if not st.button("Compute the embedding map", key="explorer_compute", icon=":material/scatter_plot:"):
        return
    bar = st.progress(0.0, text="Starting...")
    embedding_for(classifier(task), explorer_dataset(task, path, stamp),
                  progress=lambda fraction, message: bar.progress(min(fraction, 1.0), text=message))
    st.rerun()


ORIGIN = {"shipped": "precomputed map shipped with the app", "cache": "map cached on disk", "computed": "map just computed"}


def map_caption(emb: Embedding, method: str) -> str:
    """What the map shows, where it came from, and how to use it."""
    dim = emb.meta.get("feature_dim")
    return (f"{PROJECTIONS[method]} of the model's {f'{dim}-dimensional ' if dim else ''}penultimate features for "
            f"{len(emb):,} images ({ORIGIN.get(emb.origin, emb.origin)}); {int(emb.wrong.sum()):,} misclassified "
            f"(red rings). Drag to select a box, click a point, or pick lasso/zoom in the toolbar; double-click resets.")


def map_controls() -> tuple[str, str, bool]:
    """Projection, colouring and misclassified-ring choices of the map."""
    c = st.columns([1, 1, 1], vertical_alignment="bottom")
    method = c[0].segmented_control("Projection", list(PROJECTIONS), format_func=PROJECTIONS.get, default="tsne",
                                    key="explorer_projection") or "tsne"
    colour = c[1].segmented_control("Colour by", list(COLOUR_BY), format_func=COLOUR_BY.get, default="class",
                                    key="explorer_colour") or "class"
    ring = c[2].toggle("Ring misclassified images", value=True, key="explorer_ring")
    return method, colour, ring


def selection_panel(emb: Embedding, picked: np.ndarray, ds: Dataset | None, rows: np.ndarray | None) -> None:
    """Beside the map: what is selected, misclassified first."""
    with st.container(key="explorer_selection"):
        if not len(picked):
            st.markdown("**Selection**")
            st.caption("Click a point, or drag a box (or lasso) over the map, to see those images here.")
            return
        wrong = picked[emb.wrong[picked]]
        st.markdown(f"**{len(picked):,} selected**, {len(wrong):,} misclassified")
        counts = pd.Series(np.asarray(emb.classes)[emb.labels[picked]]).value_counts()
        st.caption(" · ".join(f"{name}: {k:,}" for name, k in counts.items()))
        order = np.concatenate([wrong, np.random.default_rng(0).permutation(picked[~emb.wrong[picked]])])[:MAX_SHOWN]
        if len(picked) > MAX_SHOWN:
            st.caption(f"Showing {MAX_SHOWN}: misclassified first, then a random sample.")
        show_rows(emb, order, ds, rows, columns=3)


def validation_section(emb: Embedding, ds: Dataset | None, rows: np.ndarray | None, card: dict) -> None:
    """Confusion matrix and per-class metrics on the validation split, with the misclassified images."""
    val = np.flatnonzero(emb.split == "val")
    if not len(val):
        st.info("This dataset has no images of the model's validation split.")
        return
    cm, table = confusion_summary(emb.labels[val], emb.preds[val], emb.classes)
    accuracy = float(np.trace(cm) / cm.sum())
    stated = card.get("validation", {}).get("accuracy")
    note = "" if stated is None else (" (as in the model card)" if abs(stated - accuracy) < 5e-4
                                      else f" (the model card says {stated:.2%}: a different dataset or model?)")
    st.markdown(f"**Validation split:** {len(val):,} images, accuracy {accuracy:.2%}{note}, "
                f"macro-F1 {table['f1'].mean():.4f}.")
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(confusion_figure(cm, emb.classes), key="explorer_confusion")
    with right:
        st.dataframe(table, column_config={k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "f1")})
    pairs = [(t, p) for t in range(len(emb.classes)) for p in range(len(emb.classes)) if t != p and cm[t, p]]
    if not pairs:
        st.success("No validation image is misclassified.")
        return
    pairs.sort(key=lambda tp: -cm[tp])
    labels = {f"{emb.classes[t]} → {emb.classes[p]} ({cm[t, p]})": (t, p) for t, p in pairs}
    choice = st.pills("Misclassified validation images (true → predicted)", list(labels), default=next(iter(labels)),
                      key="explorer_confusion_pick")
    if choice:
        t, p = labels[choice]
        picked = val[(emb.labels[val] == t) & (emb.preds[val] == p)]
        show_rows(emb, picked[:60], ds, rows)
