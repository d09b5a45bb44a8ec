"""The explorer's embedding map: one WebGL figure coloured by class, prediction, source or confidence.

Figures are built by plain functions (testable without a running app); `map_controls` reads the
map's own widgets. A map of a task's pool also holds images of other datasets: the same kinds of
scan from other hospitals (the supplement) and images of other kinds ('other'); "Source" colours
them apart from the task's own dataset, to show the domain shift between them.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from medimg_core.reports.embed import Embedding

# D3's category colours without its red and pink, so the red rings of misclassified points stand out
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#17becf", "#7f7f7f", "#bcbd22"]
OTHER_COLOUR = "#3b3b3b"  # the 'other' label (images of other kinds), whatever the number of classes
WRONG_COLOUR = "#d62728"
COLOUR_BY = {"class": "True class", "predicted": "Predicted class", "source": "Source", "confidence": "Confidence"}
PROJECTIONS = {"tsne": "t-SNE", "pca": "PCA"}
# Source groups: the task's own dataset (neutral), the same kinds from other datasets, images of other kinds
OWN, SAME_KINDS, OTHER_KINDS = 0, 1, 2
SOURCE_COLOURS = {OWN: "#c2bbb6", SAME_KINDS: "#1f77b4", OTHER_KINDS: "#ff7f0e"}
LOADED_FROM = {"shipped": "precomputed map shipped with the app", "cache": "map cached on disk", "computed": "map just computed"}


def class_colour(c: int, k: int | None = None) -> str:
    """The fixed colour of label c, shared by every chart (c == k, the 'other' label, has its own)."""
    return OTHER_COLOUR if k is not None and c == k else PALETTE[c % len(PALETTE)]


def shared_folder(files: Sequence[str]) -> str:
    """The longest folder prefix ("a/b/") common to all the file names ("" when none)."""
    prefix = os.path.commonprefix(list(files)) if files else ""
    return prefix[: prefix.rfind("/") + 1]


def source_groups(emb: Embedding) -> np.ndarray:
    """N source groups: OWN, SAME_KINDS (another dataset, a class of the task) or OTHER_KINDS ('other')."""
    return np.where(emb.mine, OWN, np.where(emb.foreign, OTHER_KINDS, SAME_KINDS))


def source_names(emb: Embedding) -> dict[int, str]:
    """Legend names of the source groups present, with their datasets and images counted."""
    groups = source_groups(emb)
    names = {}
    for g, what in ((OWN, f"{emb.own} (own dataset)"), (SAME_KINDS, "same kinds, other datasets"),
                    (OTHER_KINDS, "other kinds ('other')")):
        members = groups == g
        if members.any():
            datasets = "" if g == OWN else f"{len(np.unique(emb.origin[members]))} datasets, "
            names[g] = f"{what} ({datasets}{int(members.sum()):,})"
    return names


def legend_traces(emb: Embedding, colour_by: str) -> list[go.Scattergl]:
    """Point-less traces (meta "legend"), one per class or source group, so rings never show in the legend."""
    if colour_by == "source":
        return [go.Scattergl(x=[None], y=[None], mode="markers", name=name, legendgroup=f"source{g}", meta="legend",
                             marker=dict(size=8, color=SOURCE_COLOURS[g])) for g, name in source_names(emb).items()]
    key, k = (emb.labels if colour_by == "class" else emb.answers), len(emb.classes)
    shown = range(k + 1) if (key == k).any() else range(k)  # 'other' only where there is some
    return [go.Scattergl(x=[None], y=[None], mode="markers", name=f"{emb.names[c]} ({int((key == c).sum()):,})",
                         legendgroup=str(c), marker=dict(size=8, color=class_colour(c, k)), meta="legend")
            for c in shown]


def point_trace(emb: Embedding, xy: np.ndarray, idx: np.ndarray, label: tuple[int, int, int], colour_by: str,
                highlight_wrong: bool) -> go.Scattergl:
    """The points idx of one (source group, true label, answer) group, with their names in the hover.

    Both label names and the files' shared folder go into the trace's hover template once; per point
    the browser gets only x, y, customdata [embedding row, confidence] and the rest of the file's name
    (plus the dataset's name for images of other datasets).
    """
    k, (group, t, a) = len(emb.classes), label
    wrong = t != a
    files = [emb.files[j] for j in idx]
    folder = shared_folder(files)
    text = [name[len(folder):] for name in files]
    if group != OWN:
        text = [f"{name}<br>dataset: {emb.origin[j]}" for name, j in zip(text, idx)]
    marker = dict(size=9 if wrong and highlight_wrong else (3 if group == OWN else 5), opacity=1.0 if wrong else 0.7)
    if colour_by == "confidence":
        marker.update(color=emb.confidence[idx].astype(np.float32), coloraxis="coloraxis")
    else:
        shown = t if colour_by == "class" else a
        marker.update(color=SOURCE_COLOURS[group] if colour_by == "source" else class_colour(shown, k))
    if wrong and highlight_wrong:
        marker.update(line=dict(color=WRONG_COLOUR, width=2))
    said = "not recognised" if a == k else f"{emb.names[a]} (%{{customdata[1]:.0%}})"
    legend = f"source{group}" if colour_by == "source" else str(t if colour_by == "class" else a)
    return go.Scattergl(
        x=xy[idx, 0], y=xy[idx, 1], mode="markers", meta="points", marker=marker, legendgroup=legend, showlegend=False,
        name=f"{emb.names[t]} → {emb.names[a]}", customdata=np.column_stack([idx, emb.confidence[idx]]).astype(np.float32),
        text=text, hovertemplate=f"<b>{emb.names[t]}</b> → {said}<br>{folder}%{{text}}<extra></extra>")


def embedding_figure(emb: Embedding, method: str = "tsne", colour_by: str = "class", highlight_wrong: bool = True,
                     height: int = 620) -> go.Figure:
    """The embedding map: one WebGL figure, a scattergl trace per (own or not, true label, answer) group.

    The task's own images are drawn first, other datasets' above them, misclassified ones last, larger
    and ringed in red (for an image of another kind: not flagged). Traces with points have meta
    "points"; the legend comes from point-less traces (meta "legend").
    """
    xy = emb.coords[method].astype(np.float32)
    n = len(emb.names)
    key = (~emb.mine).astype(np.int64) * n * n + emb.labels * n + emb.answers
    order = sorted(np.unique(key).tolist(), key=lambda p: ((p % (n * n)) // n != p % n, p))  # correct first
    fig = go.Figure(legend_traces(emb, colour_by) if colour_by != "confidence" else [])
    for p in order:
        elsewhere, (t, a) = p >= n * n, divmod(p % (n * n), n)
        group = (OTHER_KINDS if t == n - 1 else SAME_KINDS) if elsewhere else OWN
        fig.add_trace(point_trace(emb, xy, np.flatnonzero(key == p), (group, t, a), colour_by, highlight_wrong))
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


def map_caption(emb: Embedding, method: str, colour_by: str = "class") -> str:
    """What the map shows, what its colours mean, where it came from, and how to use it."""
    dim = emb.meta.get("feature_dim")
    text = (f"{PROJECTIONS[method]} of the model's {f'{dim}-dimensional ' if dim else ''}penultimate features for "
            f"{len(emb):,} images ({LOADED_FROM.get(emb.loaded_from, emb.loaded_from)}); {int(emb.wrong.sum()):,} "
            f"misclassified (red rings). ")
    if colour_by == "source":
        text += source_caption(emb)
    elif emb.foreign.any():
        text += (f"'{emb.names[-1]}' (dark grey) marks images of other kinds, which the model should flag as not "
                 f"recognised; a red ring there means it did not. ")
    return text + "Drag to select a box, click a point, or pick lasso/zoom in the toolbar; double-click resets."


def source_caption(emb: Embedding) -> str:
    """What the Source colours show, for a presenter."""
    names = source_names(emb)
    if len(names) == 1:
        return f"Every point is of {emb.own}, the task's own dataset: this map holds no other source. "
    parts = [f"grey: {emb.own}, the task's own dataset"]
    if SAME_KINDS in names:
        parts.append("blue: the same kinds of scan from other hospitals and datasets")
    if OTHER_KINDS in names:
        parts.append("orange: images of other kinds, which the model should flag as not recognised")
    return ("Source: " + "; ".join(parts) + ". Hover a point for its dataset. Blue points inside the grey cluster of "
            "their class mean the model sees other hospitals' scans as it sees its own; blue islands apart from "
            "the grey show a domain shift (switch to True class to see which cluster is which). ")


def map_controls() -> tuple[str, str, bool]:
    """Projection, colouring and misclassified-ring choices of the map."""
    c = st.columns([2, 4, 2], vertical_alignment="bottom")
    method = c[0].segmented_control("Projection", list(PROJECTIONS), format_func=PROJECTIONS.get, default="tsne",
                                    key="explorer_projection") or "tsne"
    colour = c[1].segmented_control("Colour by", list(COLOUR_BY), format_func=COLOUR_BY.get, default="class",
                                    key="explorer_colour") or "class"
    ring = c[2].toggle("Ring misclassified images", value=True, key="explorer_ring")
    return method, colour, ring
