"""Drawing of prediction results (the Predict page, and the presentation's live steps): result card, probability
chart, the original beside the model's view, Grad-CAM panel, follow-up cards, results table with CSV.

Imports Grad-CAM, torch and plotly, so only pages that show predictions import it (never the home page).
Heatmaps are computed on demand for the one image whose detail is shown.
"""
from __future__ import annotations

import base64
import io
import time
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from PIL import Image

from medimg_core import to_model_input
from medimg_core.reports.compare import sensitivity_specificity
from medimg_core.reports.story import mean_sd
from medimg_core.inference.explain import CAM_METHODS, GRADIENT_FREE, overlay
from medimg_core.io.imaging import resize, resize_square, to_uint8
from medimg_core.inference.predict import Classifier, Prediction, recognising_tasks
from medimg_core.inference.verdict import label_text
from medimg_core.tasks import get_task

from .cache import classifier, model_card, shipped_tasks
from .dicom_panel import header_panel
from .widgets import EMPTY_CELL, HEATMAP_CAPTION, LOW_CONFIDENCE, Item, flag

DISPLAY = 256  # side in pixels of the model view, the overlay and the downloaded PNG
MAX_ORIGINAL = 1024  # larger originals are shrunk for display only
PREDICTED = "predicted"  # target-class option meaning "the predicted class"
UNKNOWN_HEADING = "Not recognised"
UNKNOWN_TEXT = "This does not look like the images this model knows"


def png_bytes(image: np.ndarray) -> bytes:
    """PNG of a uint8 grayscale or RGB array, in memory."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def upscale(image: np.ndarray, size: int = DISPLAY, resample=Image.Resampling.BICUBIC) -> np.ndarray:
    """Resize a square [0, 1] float image to size x size (display only)."""
    return resize_square(image, size, resample)


def display_copy(image: np.ndarray, max_side: int = MAX_ORIGINAL) -> np.ndarray:
    """The image shrunk to at most max_side pixels (display only; the model reads the full image)."""
    h, w = image.shape
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    return resize(image, max(1, round(w * scale)), max(1, round(h * scale)), Image.Resampling.BILINEAR, reducing_gap=2.0)


def thumbnail_uri(image: np.ndarray, size: int = 64) -> str:
    """A small PNG data URI of an image, for the results table."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(to_uint8(to_model_input(image, size)))).decode()


def result_card(item: Item, classes: tuple[str, ...], positive_class: str | None = None) -> None:
    """The large result, as the command line says it: the label with its calibrated probability (a screening task's
    against its threshold, positive_class), or 'not recognised' with why and the closest class; then the sentence
    that says what decided (the image, the DICOM header or both)."""
    pred = item.prediction
    with st.container(border=True):
        if pred.label is None:
            st.markdown(f"## {UNKNOWN_HEADING}")
            st.warning(f"**{UNKNOWN_TEXT}** ({', '.join(classes)}). {pred.reason} The closest match is {pred.closest} "
                       f"({pred.confidence:.0%}), so treat it as unknown.", icon=":material/warning:")
        elif positive_class is not None and pred.threshold is not None:
            st.markdown(f"## {pred.label}")
            st.progress(pred.probabilities[positive_class], text=label_text(pred, positive_class))
        else:
            st.markdown(f"## {pred.label}")
            shown = "over 99.9%" if pred.confidence > 0.999 else f"{pred.confidence:.1%}"
            st.progress(pred.confidence, text=f"{shown} confident (calibrated)")
            if pred.confidence < LOW_CONFIDENCE:
                st.warning(f"The model is only {pred.confidence:.0%} sure of this label (under {LOW_CONFIDENCE:.0%} "
                           "counts as low confidence here): treat it with caution.", icon=":material/warning:")
        if pred.basis:
            st.caption(pred.basis)
        if item.truth:
            mark = "matches" if item.truth == pred.label else "does not match"
            st.caption(f"This example comes from the **{item.truth}** folder of the dataset ({mark} the prediction).")


def probability_chart(pred: Prediction, key: str = "prob_chart") -> None:
    """Plotly bar chart of every class's calibrated probability, predicted class highlighted."""
    names, probs = list(pred.probabilities), list(pred.probabilities.values())
    colours = ["#e4572e" if n == (pred.label or pred.closest) else "#9aa5b1" for n in names]
    fig = go.Figure(go.Bar(x=probs, y=names, orientation="h", marker_color=colours,
                           text=[f"{p:.1%}" for p in probs], textposition="outside",
                           hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
    fig.update_layout(title="Probability of each class", height=70 + 38 * len(names),
                      margin=dict(l=10, r=10, t=40, b=10), showlegend=False,
                      xaxis=dict(range=[0, 1.18], tickformat=".0%"), yaxis=dict(autorange="reversed"))
    st.plotly_chart(fig, key=key, config={"displayModeBar": False})


def heatmap_figure(heat: np.ndarray) -> go.Figure:
    """The raw heatmap (model-input resolution) as a plotly image with a colour bar."""
    fig = go.Figure(go.Heatmap(z=heat, colorscale="Jet", zmin=0, zmax=1, colorbar=dict(thickness=12),
                               hovertemplate="x %{x}, y %{y}: %{z:.2f}<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=0, r=0, t=0, b=0),
                      xaxis=dict(visible=False, constrain="domain"),
                      yaxis=dict(visible=False, autorange="reversed", scaleanchor="x"))
    return fig


def cam_controls(classes: tuple[str, ...], task: str) -> tuple[str, str | None, float]:
    """Method, target class (None = predicted) and opacity widgets.

    The target's options are fixed per task (keyed by it), so a new image or another task never
    shows a stale label.
    """
    c1, c2, c3 = st.columns(3)
    method = c1.selectbox("Heatmap method", list(CAM_METHODS), key="cam_method",
                          help=f"{', '.join(GRADIENT_FREE)} need no gradients but run the model many times: slower.")
    target = c2.selectbox("Explain the class", [PREDICTED, *classes], key=f"cam_target_{task}",
                          format_func=lambda c: "the predicted class" if c == PREDICTED else c)
    opacity = c3.slider("Heatmap opacity", 0.0, 1.0, 0.5, 0.05, key="cam_opacity")
    if method in GRADIENT_FREE:
        st.caption(f"{method} is gradient-free: it runs the model on many masked copies of the image, "
                   "so it is slower than the gradient methods.")
    return method, None if target == PREDICTED else target, opacity


def image_pair(clf: Classifier, item: Item) -> None:
    """The original beside the image as the model sees it (letterboxed input, shown pixel for pixel)."""
    size = clf.spec.image_size
    model_view = clf.model_view(item.image)
    c1, c2 = st.columns(2)
    c1.image(display_copy(item.image), caption=f"Original ({item.image.shape[1]} x {item.image.shape[0]})", width="stretch",
             clamp=True)
    c2.image(to_uint8(upscale(model_view, resample=Image.Resampling.NEAREST)), width="stretch",
             caption=f"As the model sees it ({size} x {size})")


def cam_panel(clf: Classifier, item: Item) -> None:
    """Grad-CAM overlay and raw heatmap for the selected image, with method/target/opacity controls."""
    st.subheader("Where the model looked")
    method, target, opacity = cam_controls(clf.classes, clf.spec.name)
    model_view = clf.model_view(item.image)
    try:
        start = time.perf_counter()
        heat = clf.explain(item.image, method=method, target=target)
        elapsed = time.perf_counter() - start
    except Exception as err:  # noqa: BLE001 - a failed heatmap must not take the page down
        st.error(f"The heatmap could not be computed ({type(err).__name__}: {err}).")
        return
    blended = overlay(upscale(model_view), upscale(heat, resample=Image.Resampling.BILINEAR), opacity)
    explained = target or item.prediction.label or item.prediction.closest
    cols = st.columns(3)
    cols[0].image(blended, caption=f"{method} for {explained}", width="stretch")
    with cols[1]:
        st.plotly_chart(heatmap_figure(heat), key="raw_heatmap", config={"displayModeBar": False})
        st.caption(f"Raw heatmap ({heat.shape[0]} x {heat.shape[1]}), computed in {elapsed * 1000:.0f} ms")
    with cols[2]:
        st.caption(HEATMAP_CAPTION)
        stem = Path(item.name).stem.replace(" ", "_") or "image"
        st.download_button("Download the overlay (PNG)", png_bytes(blended), key="download_overlay",
                           file_name=f"{stem}-{method}-{explained}.png", mime="image/png",
                           on_click="ignore", icon=":material/download:")


def show_detail(clf: Classifier, item: Item) -> None:
    """Everything about one image: card, original and model view, DICOM header, probabilities, heatmaps; or its
    read error.

    The steps that run other models (a chest X-ray's second step, the other tasks' suggestion for a flagged
    image) have their place under the chart but run last, once this model's result and heatmap are drawn.
    """
    st.markdown(f"#### {item.name}")
    if item.error:
        st.error(f"**{item.name}** cannot be used: {item.error}", icon=":material/error:")
        return
    left, right = st.columns(2, gap="large")
    with left:
        result_card(item, clf.classes, clf.spec.positive_class)
        image_pair(clf, item)
        header_panel(item.header, clf.spec, item.prediction)
    with right:
        probability_chart(item.prediction)
        later = st.container()
    cam_panel(clf, item)
    with later:
        follow_up_card(clf, item)
        other_task_card(clf, item)


def screening_summary(card: dict) -> str:
    """Cross-validated (else validation) AUC, sensitivity and specificity of a two-class model, from its card."""
    cv = card.get("crossval") or {}
    folds = cv.get("own_validation", {})
    if {"auc", "sensitivity", "specificity"} <= set(folds):
        return (f"Cross-validated on {cv['own_pooled']['n']:,} images of its dataset (mean ± SD over folds): "
                f"AUC {mean_sd(folds['auc'], False)}, sensitivity {mean_sd(folds['sensitivity'], True)}, "
                f"specificity {mean_sd(folds['specificity'], True)}.")
    v = card.get("validation", {})
    sensitivity, specificity = sensitivity_specificity(card)
    if sensitivity is None or specificity is None or v.get("auc") is None:
        return ""
    return (f"On its validation split: AUC {v['auc']:.3f}, sensitivity {sensitivity:.1%}, "
            f"specificity {specificity:.1%} ({v['n']} images).")


def follow_up_card(clf: Classifier, item: Item) -> None:
    """Two-step triage: an image recognised as a class with a follow-up task also gets that task's verdict."""
    pred = item.prediction
    task = get_task(clf.spec.name).follow_up(pred.label)
    if task is None or flag(pred) or task not in shipped_tasks():
        return
    second, spec = classifier(task).predict(item.image), get_task(task)
    with st.container(border=True, key="follow_up"):
        st.markdown(f"**Second step: {spec.title}**")
        learned = f" It learned from {spec.population} only." if spec.population else ""
        st.caption(f"Run because the first model recognised a {pred.label}. A separate model, trained on other data."
                   f"{learned} A teaching demo, not a diagnosis. {screening_summary(model_card(task))}")
        if not second.in_distribution:
            st.warning(f"No verdict: this {spec.facts(spec.classes[0]).modality or 'image'} is unlike the images the "
                       f"{task} model learned from, so what it would say here means nothing. Scans of other patients (adults, for a model of children), "
                       "hospitals or scanners are outside its training population.", icon=":material/warning:")
        else:
            st.markdown(f"### {second.label}")
            if spec.positive_class and second.threshold is not None:  # a screening task: probability and threshold
                st.progress(second.probabilities[spec.positive_class], text=label_text(second, spec.positive_class))
            else:
                st.progress(second.confidence, text=f"{second.confidence:.1%} (calibrated probability of {second.label})")


def other_task_card(clf: Classifier, item: Item) -> None:
    """For an unfamiliar image: the other shipped tasks whose model recognises it, with a button to switch."""
    if item.prediction.in_distribution:
        return
    others = {}
    for task in shipped_tasks():
        if task != clf.spec.name:
            try:
                others[task] = classifier(task)
            except (OSError, ValueError):  # a damaged model of another task must not take this page down
                continue
    matches = recognising_tasks(item.image, others)
    if not matches:
        return
    with st.container(border=True, key="other_tasks"):
        st.markdown("**Another model knows images like this one**")
        for task, pred in matches:
            spec = get_task(task)
            st.caption(f"It is familiar to the {spec.title} model ({', '.join(spec.classes)}), "
                       f"which would call it {pred.label} ({pred.confidence:.0%}).")
            st.button(f"Open it in {spec.title}", key=f"switch_{task}", on_click=switch_task, args=(task,),
                      icon=":material/swap_horiz:")


def switch_task(task: str) -> None:
    """Button callback: show the same uploads under another task."""
    st.session_state["task"] = task


def verdict_flag(pred: Prediction | None) -> str:
    """The table's flag, agreeing with the command line: 'not recognised' (label None), 'low confidence' (a label
    under LOW_CONFIDENCE, except on a screening task, whose label follows its threshold), 'ok'; or 'cannot read'."""
    if pred is None:
        return "cannot read"
    if pred.label is None:
        return "not recognised"
    return "low confidence" if pred.threshold is None and pred.confidence < LOW_CONFIDENCE else "ok"


def table_row(item: Item) -> dict:
    """One row of the on-page results table (label: the class, or 'not recognised' with the closest class; the
    confidence of a label only: an image not recognised has none, its closest match is in its detail and the CSV)."""
    pred = item.prediction
    if pred is None:
        return {"file": item.name, "thumbnail": None, "label": "", "confidence": None, "flag": "cannot read",
                "decided_by": None}
    return {"file": item.name, "thumbnail": thumbnail_uri(item.image),
            "label": pred.label or f"not recognised (closest: {pred.closest})",
            "confidence": pred.confidence if pred.label is not None else None, "flag": verdict_flag(pred),
            "decided_by": pred.decided_by}


def results_csv(items: list[Item]) -> bytes:
    """All results as CSV: label (empty when not recognised), closest, confidence, flag, what decided and why not
    recognised, every class probability and read errors."""
    rows = []
    for it in items:
        p = it.prediction
        row = {"file": it.name, "label": (p.label or "") if p else "", "closest": p.closest if p else "",
               "confidence": p.confidence if p else None, "flag": verdict_flag(p),
               "decided_by": p.decided_by if p else "", "reason": (p.reason or "") if p else "",
               "in_distribution": p.in_distribution if p else None, "ood_score": p.ood_score if p else None}
        row.update({f"p_{c}": v for c, v in (p.probabilities.items() if p else [])})
        row["error"] = it.error or ""
        rows.append(row)
    df = pd.DataFrame(rows)
    df = df[[c for c in df.columns if c != "error"] + ["error"]]
    return df.to_csv(index=False, float_format="%.4f").encode()


def results_table(items: list[Item]) -> int | None:
    """The results table with CSV download and the read errors; returns the chosen row (or None)."""
    event = st.dataframe(
        pd.DataFrame([table_row(it) for it in items]), key="results_table", on_select="rerun",
        selection_mode="single-row", hide_index=True, row_height=56, placeholder=EMPTY_CELL,
        column_config={
            "file": st.column_config.TextColumn("File"),
            "thumbnail": st.column_config.ImageColumn("Image", width="small"),
            "label": st.column_config.TextColumn("Label"),
            "confidence": st.column_config.ProgressColumn("Confidence", min_value=0.0, max_value=1.0, format="percent"),
            "flag": st.column_config.TextColumn("Flag"),
            "decided_by": st.column_config.TextColumn("Decided by", help="pixels: the image; header: the DICOM "
                                                      "header; both: the two together (see each file's detail)"),
        },
    )
    for it in items:
        if it.error:
            st.error(f"**{it.name}**: {it.error}", icon=":material/error:")
    st.download_button("Download the results (CSV)", results_csv(items), file_name="predictions.csv",
                       mime="text/csv", key="download_csv", on_click="ignore", icon=":material/download:")
    rows = event.selection.rows
    return rows[0] if rows and rows[0] < len(items) else None

