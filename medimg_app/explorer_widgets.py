"""Drawing helpers of the dataset explorer: summary charts, galleries, the selection, validation errors.

Figures are built by plain functions (testable without a running app); the `*_section`
functions read their own widgets and draw one part of the page. The page holds one WebGL
figure (the embedding map, explorer_map.py); every other chart is SVG.

The loaded dataset is the task's own; a map of the task's pool also has points of other
datasets, which have no image here: those are listed by file and dataset instead.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePosixPath

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from medimg_core.data.datasets import Dataset
from medimg_core.reports.embed import Embedding, embedding_for
from medimg_core.reports.explore import OUTCOMES, confusion_summary, outcome_mask, sample_indices

from .cache import classifier, explorer_dataset
from .explorer_map import class_colour
from .widgets import EMPTY_CELL

MAX_SHOWN = 30  # images shown for a selection
GALLERY_SIZE = 24
THUMB = 96  # display width of a thumbnail in pixels


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
    """Thumbnail caption: file name, and 'true → answer (confidence)' when predictions are known."""
    name = PurePosixPath(file).name
    if emb is None:
        return name
    mark = "✗ " if emb.wrong[i] else ""
    return f"{mark}{name}: {emb.names[emb.labels[i]]} → {answer_text(emb, i)}"


def answer_text(emb: Embedding, i: int) -> str:
    """What the model said of point i: a class and its confidence, or 'not recognised'."""
    a = emb.answers[i]
    return "not recognised" if a == len(emb.classes) else f"{emb.names[a]} ({emb.confidence[i]:.0%})"


def points_table(emb: Embedding, picked: np.ndarray) -> pd.DataFrame:
    """One row per picked point: file, dataset, true label, the model's answer, confidence and OOD flag."""
    return pd.DataFrame({"file": [emb.files[i] for i in picked], "dataset": emb.origin[picked],
                         "class": np.asarray(emb.names)[emb.labels[picked]],
                         "predicted": np.asarray(emb.names)[emb.answers[picked]],
                         "confidence": emb.confidence[picked], "flagged": emb.ood[picked]})


def image_grid(images: Sequence[np.ndarray], captions: Sequence[str], columns: int = 6) -> None:
    """Thumbnails in rows of `columns`, each with its caption."""
    for start in range(0, len(images), columns):
        cols = st.columns(columns)
        for col, image, text in zip(cols, images[start : start + columns], captions[start : start + columns]):
            col.image(image, caption=text, width=THUMB)


def show_rows(emb: Embedding, picked: np.ndarray, ds: Dataset | None, rows: np.ndarray | None, columns: int = 6) -> None:
    """Images of some embedding rows; rows without an image in the loaded dataset are listed by file and dataset."""
    has_image = rows[picked] >= 0 if ds is not None and rows is not None else np.zeros(len(picked), bool)
    present, absent = picked[has_image], picked[~has_image]
    image_grid([ds.images[rows[i]] for i in present], [caption(emb, i, emb.files[i]) for i in present], columns)
    if not len(absent):
        return
    if ds is None:
        st.caption("Download the dataset to see the images; here are their files.")
    else:
        datasets = ", ".join(sorted(set(emb.origin[absent].tolist())))
        st.caption(f"{len(absent):,} of these are not in the loaded dataset ({datasets[:200]}): their files and datasets.")
    st.dataframe(points_table(emb, absent), hide_index=True, placeholder=EMPTY_CELL, height=min(300, 40 + 35 * len(absent)),
                 column_config={"confidence": st.column_config.NumberColumn(format="percent")})


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
    mask = outcome_mask(outcome, emb.labels, emb.answers, emb.confidence, emb.ood, low) & (rows >= 0)
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


def selection_panel(emb: Embedding, picked: np.ndarray, ds: Dataset | None, rows: np.ndarray | None) -> None:
    """Beside the map: what is selected (by class, and by dataset when other datasets are in), misclassified first."""
    with st.container(key="explorer_selection"):
        if not len(picked):
            st.markdown("**Selection**")
            st.caption("Click a point, or drag a box (or lasso) over the map, to see those images here.")
            return
        wrong = picked[emb.wrong[picked]]
        st.markdown(f"**{len(picked):,} selected**, {len(wrong):,} misclassified")
        counts = pd.Series(np.asarray(emb.names)[emb.labels[picked]]).value_counts()
        st.caption(" · ".join(f"{name}: {k:,}" for name, k in counts.items()))
        elsewhere = picked[emb.origin[picked] != emb.own]
        if len(elsewhere):
            top = pd.Series(emb.origin[elsewhere]).value_counts()
            st.caption(f"{len(picked) - len(elsewhere):,} of {emb.own}, {len(elsewhere):,} of other datasets: "
                       + " · ".join(f"{name}: {k:,}" for name, k in top.head(8).items())
                       + (f" and {len(top) - 8} more" if len(top) > 8 else ""))
        order = np.concatenate([wrong, np.random.default_rng(0).permutation(picked[~emb.wrong[picked]])])[:MAX_SHOWN]
        if len(picked) > MAX_SHOWN:
            st.caption(f"Showing {MAX_SHOWN}: misclassified first, then a random sample.")
        show_rows(emb, order, ds, rows, columns=3)


def validation_section(emb: Embedding, ds: Dataset | None, rows: np.ndarray | None, card: dict) -> None:
    """Confusion matrix and per-class metrics on the validation split, with the misclassified images.

    The headline numbers are those of the task's own validation images (as in the model card); images
    of held-out datasets, if the card holds any out, join the matrix, with 'other' as a row and column
    when images of other kinds are among them.
    """
    val = np.flatnonzero(emb.split == "val")
    if not len(val):
        st.info("This dataset has no images of the model's validation split.")
        return
    st.markdown(validation_headline(emb, val, card))
    names = emb.names if (emb.labels[val] == len(emb.classes)).any() else emb.classes
    cm, table = confusion_summary(emb.labels[val], emb.answers[val], names)
    left, right = st.columns([3, 2])
    with left:
        st.plotly_chart(confusion_figure(cm, names), key="explorer_confusion")
    with right:
        st.dataframe(table, placeholder=EMPTY_CELL, column_config={k: st.column_config.NumberColumn(format="%.3f") for k in ("precision", "recall", "f1")})
    pairs = [(t, p) for t in range(len(names)) for p in range(len(names)) if t != p and cm[t, p]]
    if not pairs:
        st.success("No validation image is misclassified.")
        return
    pairs.sort(key=lambda tp: -cm[tp])
    labels = {f"{names[t]} → {names[p]} ({cm[t, p]})": (t, p) for t, p in pairs}
    choice = st.pills("Misclassified validation images (true → predicted)", list(labels), default=next(iter(labels)),
                      key="explorer_confusion_pick")
    if choice:
        t, p = labels[choice]
        picked = val[(emb.labels[val] == t) & (emb.answers[val] == p)]
        show_rows(emb, picked[:60], ds, rows)


def validation_headline(emb: Embedding, val: np.ndarray, card: dict) -> str:
    """Accuracy and macro-F1 of the own validation images (checked against the card), and of held-out datasets."""
    mine, held = val[emb.mine[val]], val[~emb.mine[val]]
    parts = []
    if len(mine):
        cm, table = confusion_summary(emb.labels[mine], emb.preds[mine], emb.classes)
        accuracy = float(np.trace(cm) / cm.sum())
        stated = card.get("validation", {}).get("accuracy")
        note = "" if stated is None else (" (as in the model card)" if abs(stated - accuracy) < 5e-4
                                          else f" (the model card says {stated:.2%}: a different dataset or model?)")
        parts.append(f"{len(mine):,} images of {emb.own}, accuracy {accuracy:.2%}{note}, macro-F1 {table['f1'].mean():.4f}")
    if len(held):
        parts.append(f"{len(held):,} images of {len(np.unique(emb.origin[held]))} held-out datasets, "
                     f"{float((~emb.wrong[held]).mean()):.1%} right (named right, or flagged when of another kind)")
    return f"**Validation split:** {'; '.join(parts)}."
