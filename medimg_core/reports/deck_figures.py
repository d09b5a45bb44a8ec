"""The slide deck's figures as PNG bytes, drawn with matplotlib (Agg; no pyplot, so no global state).

Each figure is about slide size (inches) at DPI, so matplotlib's default fonts read as true size on a
slide. Not here: which figure goes on which slide (`medimg_core.reports.deck`) or how each class's typical
example is picked (`medimg_core.reports.class_examples`).
"""
from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from itertools import product

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import StrMethodFormatter

from .class_examples import ClassExample, cam_overlay

DPI = 200
SPLIT_COLOURS = {"train": "#4c78a8", "val": "#f58518", "test": "#54a24b", "unused": "#bab0ac"}
HIGHLIGHT, GREY = "#e4572e", "#9aa5b1"


def png(fig: Figure) -> bytes:
    """PNG bytes of a figure, rendered by Agg at DPI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, backend="agg", facecolor="white")
    return buf.getvalue()


def _show(ax: Axes, image: np.ndarray, caption: str = "", smooth: bool = True) -> None:
    """A [0, 1] grey (or uint8 RGB) image on ax without ticks, captioned below."""
    ax.imshow(image, cmap="gray", vmin=0, vmax=1, interpolation="bicubic" if smooth else "nearest")
    ax.set(xticks=[], yticks=[], xlabel=caption)


def counts_png(counts: Mapping[str, Mapping[str, int]], title: str = "Images per class and split") -> bytes:
    """Stacked bars: images per class (keys), one colour per split, with totals on top."""
    classes = list(counts)
    splits = [s for s in SPLIT_COLOURS if any(counts[c].get(s) for c in classes)] + \
        sorted({s for c in classes for s in counts[c]} - set(SPLIT_COLOURS))
    ax = Figure(figsize=(6.4, 4.4), layout="constrained").subplots()
    table = np.array([[counts[c].get(s, 0) for c in classes] for s in splits]).reshape(len(splits), len(classes))
    for s, values, below in zip(splits, table, table.cumsum(0) - table):
        ax.bar(classes, values, bottom=below, color=SPLIT_COLOURS.get(s, GREY), label=s)
    ax.bar_label(ax.bar(classes, table.sum(0), fill=False, linewidth=0), fmt="{:,.0f}", padding=2)  # the totals
    ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    ax.spines[["top", "right"]].set_visible(False)
    ax.legend(frameon=False, ncols=len(splits), loc="lower right", bbox_to_anchor=(1, 1))
    ax.set_title(title, loc="left")
    return png(ax.figure)


def confusion_png(cm: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    """Annotated confusion matrix (rows: true class, columns: predicted), blue by log count."""
    cm, k = np.asarray(cm, dtype=np.int64), len(classes)
    ax = Figure(figsize=(1.6 + 0.75 * k, 1.2 + 0.65 * k), layout="constrained").subplots()
    shade = np.log1p(cm) / (np.log1p(cm.max()) or 1.0)
    ax.imshow(shade, cmap="Blues", vmin=0, vmax=1)
    for (i, j), n in np.ndenumerate(cm):
        ax.text(j, i, f"{n:,}", ha="center", va="center", color="white" if shade[i, j] > 0.55 else "black")
    ax.set_xticks(range(k), classes, rotation=30, ha="right")
    ax.set_yticks(range(k), classes)
    ax.set(xlabel="predicted", ylabel="true")
    return png(ax.figure)


def prediction_png(example: ClassExample) -> bytes:
    """An example image beside the bars of every class's probability (the prediction highlighted)."""
    names, p = list(example.probabilities), list(example.probabilities.values())
    sure = "over 99.9%" if example.confidence > 0.999 else f"{example.confidence:.1%}"
    fig = Figure(figsize=(6.4, max(3.2, 1.2 + 0.35 * len(names))), layout="constrained")
    image, bars = fig.subplots(1, 2, width_ratios=(1, 1.5))
    fig.suptitle(f"{example.label}: {sure} sure", x=0.02, ha="left", fontsize="x-large")
    _show(image, example.image, f"a {example.name} image\nfrom the validation set", smooth=False)
    colours = [HIGHLIGHT if n == example.label else GREY for n in names]
    bars.bar_label(bars.barh(names, p, color=colours), fmt="{:.1%}", padding=3)
    bars.set(xlim=(0, 1.25), xticks=[], ylim=(len(names) - 0.5, -0.5))  # the first class on top
    bars.spines[["top", "right", "bottom"]].set_visible(False)
    return png(fig)


def examples_png(examples: Sequence[ClassExample], cell: int = 200) -> bytes:
    """One column per class; rows: its mean image, its typical example and the Grad-CAM overlay (cell in pixels)."""
    rows = {"mean image": lambda e: e.mean, "typical example": lambda e: e.image, "Grad-CAM": lambda e: cam_overlay(e, cell)}
    fig = Figure(figsize=(0.4 + len(examples) * cell / DPI, 0.5 + len(rows) * cell / DPI), layout="constrained")
    axes = fig.subplots(len(rows), len(examples), squeeze=False)
    for (r, (row, draw)), (j, e) in product(enumerate(rows.items()), enumerate(examples)):
        _show(axes[r, j], draw(e))
        axes[r, j].set(title=f"{e.name}\n{e.modality}" if r == 0 else "", ylabel=row if j == 0 else "")
    return png(fig)


def gallery_png(examples: Sequence[ClassExample], columns: int = 3, cell: int = 300) -> bytes:
    """The typical examples in a grid, each captioned "class · modality" (cell in pixels)."""
    rows = -(-len(examples) // columns)
    fig = Figure(figsize=(columns * cell / DPI, rows * (cell / DPI + 0.3)), layout="constrained")
    for k, e in enumerate(examples):
        _show(fig.add_subplot(rows, columns, k + 1), e.image, " · ".join(filter(None, (e.name, e.modality))))
    return png(fig)
