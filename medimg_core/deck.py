"""The group presentation as a PPTX slide deck (no Streamlit in here).

The story (steps, text, numbers from the model card) is `medimg_core.story`; each class's typical
example is `medimg_core.class_examples`; this module draws the figures and writes the slides.

From the command line::

    python -m medimg_core.deck --task modality --out slides.pptx
"""
from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .class_examples import ClassExample, cam_overlay, class_examples, showcase, upscale, validation_pool
from .story import DISCLAIMER, STEPS, facts, handover, headline_numbers, step_text
from .tasks import TaskSpec

PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


# --- Figures (PNG bytes, drawn with PIL) -------------------------------------------------------

SPLIT_COLOURS = {"train": "#4c78a8", "val": "#f58518", "test": "#54a24b", "unused": "#bab0ac"}
HIGHLIGHT, GREY, INK = "#e4572e", "#9aa5b1", "#1f2933"


def font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans when installed, else Pillow's built-in scalable font."""
    for name in ("DejaVuSans.ttf", "LiberationSans-Regular.ttf"):
        try:
            return ImageFont.truetype(name, size)
        except OSError:
            continue
    return ImageFont.load_default(size=size)


def png(image: Image.Image) -> bytes:
    """PNG bytes of a PIL image."""
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _gray(image: np.ndarray, size: int, smooth: bool = True) -> Image.Image:
    return Image.fromarray((upscale(image, size, smooth) * 255).round().astype(np.uint8)).convert("RGB")


def _text_centre(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, f, fill=INK) -> None:
    draw.text(xy, text, font=f, fill=fill, anchor="mm")


def counts_png(counts: Mapping[str, Mapping[str, int]], title: str = "Images per class and split") -> bytes:
    """Stacked bars: images per class (keys), one colour per split, with totals on top."""
    classes = list(counts)
    splits = [s for s in SPLIT_COLOURS if any(counts[c].get(s) for c in classes)] + \
        sorted({s for c in classes for s in counts[c]} - set(SPLIT_COLOURS))
    W, H, left, right, top, bottom = 1400, 900, 110, 30, 110, 120
    im = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(im)
    f, small = font(30), font(24)
    draw.text((left, 20), title, font=font(36), fill=INK)
    totals = {c: sum(counts[c].values()) for c in classes}
    top_value = max(totals.values()) * 1.12 or 1
    plot_h = H - top - bottom
    step = (W - left - right) / max(len(classes), 1)
    draw.line((left, H - bottom, W - right, H - bottom), fill=INK, width=2)
    for tick in _ticks(top_value):
        y = H - bottom - tick / top_value * plot_h
        draw.line((left - 8, y, W - right, y), fill="#e4e7eb", width=1)
        draw.text((left - 14, y), f"{tick:,.0f}", font=small, fill=INK, anchor="rm")
    for i, c in enumerate(classes):
        x0, x1, base = left + i * step + step * 0.15, left + (i + 1) * step - step * 0.15, H - bottom
        for s in splits:
            h = counts[c].get(s, 0) / top_value * plot_h
            if h > 0:
                draw.rectangle((x0, base - h, x1, base), fill=SPLIT_COLOURS.get(s, GREY))
                base -= h
        _text_centre(draw, ((x0 + x1) / 2, base - 22), f"{totals[c]:,}", small)
        _text_centre(draw, ((x0 + x1) / 2, H - bottom + 30), c, f)
    x = left
    for s in splits:  # legend
        draw.rectangle((x, H - 45, x + 26, H - 19), fill=SPLIT_COLOURS.get(s, GREY))
        draw.text((x + 36, H - 32), s, font=f, fill=INK, anchor="lm")
        x += 60 + draw.textlength(s, font=f) + 30
    return png(im)


def _ticks(top: float) -> list[float]:
    raw = top / 5
    magnitude = 10 ** int(np.floor(np.log10(raw))) if raw > 0 else 1
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [k * step for k in range(int(top // step) + 1)]


def confusion_png(cm: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    """Annotated confusion matrix (rows: true class, columns: predicted), blue by log count."""
    cm = np.asarray(cm, dtype=np.int64)
    k = len(classes)
    f, small = font(26), font(30)
    label_w = int(max(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(c, font=f) for c in classes)) + 70
    cell = 150 if k <= 6 else 110
    W, H = label_w + k * cell + 30, 150 + k * cell + 30
    im = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(im)
    _text_centre(draw, (label_w + k * cell / 2, 25), "predicted", font(28), "#52606d")
    draw.text((20, 150 + k * cell / 2), "true", font=font(28), fill="#52606d", anchor="lm")
    top = 150
    scale = np.log1p(cm.max()) or 1.0
    for j, c in enumerate(classes):
        _text_centre(draw, (label_w + (j + 0.5) * cell, top - 35), c if len(c) <= 11 else c[:10] + "…", f)
    for i, c in enumerate(classes):
        draw.text((label_w - 15, top + (i + 0.5) * cell), c, font=f, fill=INK, anchor="rm")
        for j in range(k):
            t = np.log1p(cm[i, j]) / scale
            colour = tuple(int(a + (b - a) * t) for a, b in zip((247, 251, 255), (8, 69, 148)))
            box = (label_w + j * cell, top + i * cell, label_w + (j + 1) * cell - 3, top + (i + 1) * cell - 3)
            draw.rectangle(box, fill=colour, outline="#ffffff" if i != j else "#52606d", width=1 if i != j else 2)
            _text_centre(draw, ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2), f"{cm[i, j]:,}", small,
                         "white" if t > 0.55 else INK)
    return png(im)


def prediction_png(example: ClassExample) -> bytes:
    """An example image beside the bars of every class's probability (the prediction highlighted)."""
    side, bar_left, W = 480, 560, 1400
    names = list(example.probabilities)
    H = max(side + 160, 140 + 70 * len(names))
    im = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(im)
    im.paste(_gray(example.image, side, smooth=False), (20, 90))
    sure = "over 99.9%" if example.confidence > 0.999 else f"{example.confidence:.1%}"
    draw.text((20, 20), f"{example.label}: {sure} sure", font=font(40), fill=INK)
    draw.text((20, 100 + side), f"a {example.name} image from the validation set", font=font(24), fill="#52606d")
    f = font(28)
    label_w = max(draw.textlength(n, font=f) for n in names) + 20
    x0, x1 = bar_left + label_w, W - 150
    for r, name in enumerate(names):
        y = 110 + r * 70
        p = example.probabilities[name]
        draw.text((x0 - 15, y + 22), name, font=f, fill=INK, anchor="rm")
        draw.rectangle((x0, y, x0 + max(p * (x1 - x0), 2), y + 44), fill=HIGHLIGHT if name == example.label else GREY)
        draw.text((x0 + max(p * (x1 - x0), 2) + 10, y + 22), f"{p:.1%}", font=f, fill=INK, anchor="lm")
    return png(im)


def examples_png(examples: Sequence[ClassExample], cell: int = 200, with_mean: bool = True,
                 with_cam: bool = True) -> bytes:
    """One column per class: its mean image, its typical example and the Grad-CAM overlay (rows)."""
    rows = [("mean image", lambda e: _gray(e.mean, cell))] if with_mean else []
    rows.append(("typical example", lambda e: _gray(e.image, cell)))
    if with_cam:
        rows.append(("Grad-CAM", lambda e: Image.fromarray(cam_overlay(e, cell))))
    f, small = font(28), font(24)
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    label_w = int(max(measure.textlength(name, font=small) for name, _ in rows)) + 30 if len(rows) > 1 else 0
    gap, head = 14, 90
    W = label_w + len(examples) * (cell + gap) + gap
    H = head + len(rows) * (cell + gap) + gap
    im = Image.new("RGB", (W, H), "white")
    draw = ImageDraw.Draw(im)
    for j, e in enumerate(examples):
        x = label_w + gap + j * (cell + gap)
        _text_centre(draw, (x + cell / 2, 28), e.name, f)
        if e.modality:
            _text_centre(draw, (x + cell / 2, 62), e.modality, small, "#52606d")
        for r, (_, make) in enumerate(rows):
            im.paste(make(e), (x, head + r * (cell + gap)))
    if label_w:
        for r, (name, _) in enumerate(rows):
            draw.text((label_w - 10, head + r * (cell + gap) + cell / 2), name, font=small, fill=INK, anchor="rm")
    return png(im)


def gallery_png(examples: Sequence[ClassExample], columns: int = 3, cell: int = 300) -> bytes:
    """The typical examples in a grid, each captioned with its class and modality."""
    gap, label = 20, 50
    rows = -(-len(examples) // columns)
    im = Image.new("RGB", (columns * (cell + gap) + gap, rows * (cell + label + gap) + gap), "white")
    draw = ImageDraw.Draw(im)
    f = font(30)
    for k, e in enumerate(examples):
        x, y = gap + (k % columns) * (cell + gap), gap + (k // columns) * (cell + label + gap)
        im.paste(_gray(e.image, cell), (x, y))
        name = f"{e.name} · {e.modality}" if e.modality else e.name
        _text_centre(draw, (x + cell / 2, y + cell + label / 2), name, f)
    return png(im)


# --- Slides ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """A picture on a slide: PNG bytes and a caption."""

    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class Slide:
    """One slide as data: what build_pptx writes and what the tests read back."""

    title: str
    headline: str = ""
    bullets: tuple[str, ...] = ()
    notes: str = ""
    figure: Figure | None = None
    table: tuple[tuple[str, str], ...] = ()  # (name, value) rows, e.g. the card's headline numbers
    key: str = ""


def build_slides(card: Mapping, spec: TaskSpec, examples: Sequence[ClassExample] = (),
                 counts: Mapping[str, Mapping[str, int]] | None = None,
                 other_cards: Mapping[str, Mapping] | None = None, other_tasks: Sequence[TaskSpec] = ()) -> list[Slide]:
    """The presentation as slides: a title slide, then one slide per step (plus all shipped models when several).

    Args:
        card: the presented task's model card; spec: its task.
        examples: class_examples of the presented model (figures are left out when empty).
        counts: per class, images per split (from the dataset; without it, the card's validation counts).
        other_cards: the other shipped tasks' cards, by task name (a comparison slide when given).
        other_tasks: tasks to name as next steps.
    """
    totals = {c: sum(s.values()) for c, s in counts.items()} if counts else None
    values = facts(card, spec, totals, other_tasks)
    v = card.get("validation", {}) or {}
    classes = list(card.get("classes") or spec.classes)
    slides = [Slide(
        title=f"Medical image classification: {values['title']}",
        headline="Group presentation",
        bullets=(f"Model trained {((card.get('training') or {}).get('created') or '')[:10]}; every number comes from "
                 "its model card.", DISCLAIMER),
        notes="Presenter 1 introduces the group and the question.", key="cover",
    )]
    for index, step in enumerate(STEPS):
        headline, points, notes = step_text(step, values)
        if handover(index):
            notes = f"{notes} {handover(index)}"
        figure, table = None, ()
        if step.key == "question" and examples:
            figure = Figure(gallery_png(examples), "One typical image of each class")
        elif step.key == "data":
            if counts:
                figure = Figure(counts_png(counts),
                                "Images per class; colours: the model's training and validation split")
            elif v.get("per_class"):
                support = {c: {"val": int(v["per_class"][c].get("support", 0))} for c in classes if c in v["per_class"]}
                figure = Figure(counts_png(support, "Validation images per class"), "Validation images per class")
        elif step.key == "model":
            table = tuple((k, val) for k, val in headline_numbers(card) if k != "Parameters")  # those are in a bullet
            if v.get("confusion_matrix"):
                figure = Figure(confusion_png(v["confusion_matrix"], v.get("classes", classes)),
                                "Confusion matrix on the validation images")
        elif step.key == "live" and examples:
            pick = showcase(examples)
            figure = Figure(prediction_png(pick), f"Saved example: a typical {pick.name} image")
        elif step.key == "explain" and examples:
            figure = Figure(examples_png(examples), "Per class: mean image, typical example, Grad-CAM of the "
                            "predicted class (red = strong)")
        slides.append(Slide(step.title, headline, tuple(points), notes, figure, table, step.key))
    if other_cards:
        rows = []
        for task, other in {spec.name: card, **dict(other_cards)}.items():
            numbers = dict(headline_numbers(other))
            rows.append((other.get("title", task), ", ".join(f"{k} {numbers[k]}" for k in
                                                              ("Validation accuracy", "Macro-F1", "Validation images")
                                                              if k in numbers)))
        slides.append(Slide("All shipped models", "Headline numbers from each model card", table=tuple(rows),
                            notes="Optional slide: every model the app ships, for questions.", key="models"))
    return slides


# --- PPTX --------------------------------------------------------------------------------------


def build_pptx(slides: Sequence[Slide]) -> bytes:
    """The slides as a 16:9 PowerPoint file (bytes), speaker notes included."""
    from pptx import Presentation
    from pptx.dml.color import RGBColor
    from pptx.enum.text import PP_ALIGN
    from pptx.util import Emu, Inches, Pt

    prs = Presentation()
    prs.slide_width, prs.slide_height = Inches(13.333), Inches(7.5)
    ink, accent, muted = RGBColor(0x1F, 0x29, 0x33), RGBColor(0xC0, 0x3A, 0x1C), RGBColor(0x52, 0x60, 0x6D)

    def text(slide, box, lines, size, colour=ink, bold=False, bullets=False):
        frame = slide.shapes.add_textbox(*box).text_frame
        frame.word_wrap = True
        for i, line in enumerate(lines):
            para = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
            para.text = f"•  {line}" if bullets else line
            para.font.size, para.font.bold, para.font.color.rgb = Pt(size), bold, colour
            para.space_after = Pt(10 if bullets else 4)
        return frame

    def picture(slide, figure: Figure, left, top, width, height):
        w, h = Image.open(io.BytesIO(figure.png)).size
        scale = min(width / w, height / h)
        pw, ph = int(w * scale), int(h * scale)
        slide.shapes.add_picture(io.BytesIO(figure.png), Emu(left + (width - pw) // 2), Emu(top), Emu(pw), Emu(ph))
        if figure.caption:
            text(slide, (Emu(left), Emu(top + ph + Inches(0.05)), Emu(width), Inches(0.4)), [figure.caption], 12, muted)

    def table(slide, rows, left, top, width, row_h):
        shape = slide.shapes.add_table(len(rows), 2, left, top, width, row_h * len(rows))
        grid = shape.table
        grid.columns[0].width, grid.columns[1].width = int(width * 0.6), width - int(width * 0.6)
        for r, (name, value) in enumerate(rows):
            grid.rows[r].height = row_h
            for c, content in enumerate((name, value)):
                cell = grid.cell(r, c)
                cell.text = content
                cell.margin_top = cell.margin_bottom = Inches(0.03)
                cell.text_frame.paragraphs[0].font.size = Pt(15)
                cell.text_frame.paragraphs[0].font.bold = c == 1
        return shape

    title_layout = prs.slide_layouts[5]  # "Title Only": a real title placeholder, read back as slide.shapes.title
    for s in slides:
        slide = prs.slides.add_slide(title_layout)
        title = slide.shapes.title
        title.left, title.top, title.width, title.height = Inches(0.5), Inches(0.3), Inches(12.3), Inches(1.0)
        title.text = s.title
        para = title.text_frame.paragraphs[0]
        para.font.size, para.font.bold, para.font.color.rgb = Pt(40 if s.key == "cover" else 34), True, ink
        para.alignment = PP_ALIGN.LEFT
        if s.key == "cover":
            title.top, title.height = Inches(2.0), Inches(1.6)
            text(slide, (Inches(0.5), Inches(3.8), Inches(12), Inches(0.8)), [s.headline], 28, accent, bold=True)
            text(slide, (Inches(0.5), Inches(4.8), Inches(12), Inches(1.6)), list(s.bullets), 20, muted)
        else:
            if s.headline:
                text(slide, (Inches(0.5), Inches(1.25), Inches(12.3), Inches(0.8)), [s.headline], 24, accent, bold=True)
            has_right = s.figure is not None
            # the left column: the table of numbers first (when there is one), then the bullet points
            left_w = (Inches(6.8) if s.table else Inches(6.1)) if has_right else Inches(12.3)
            y = Inches(2.25)
            if s.table:
                row_h = Inches(0.34)
                table(slide, s.table, Inches(0.5), y, left_w, row_h)
                y += row_h * len(s.table) + Inches(0.2)
            if s.bullets:
                size = 15 if s.table else (17 if has_right else 20)
                text(slide, (Inches(0.5), y, left_w, Inches(6.9) - y), list(s.bullets), size, bullets=True)
            if has_right:
                x = Inches(7.6) if s.table else Inches(6.9)
                picture(slide, s.figure, x, Inches(2.15), Inches(12.9) - x, Inches(4.6))
        text(slide, (Inches(0.5), Inches(7.0), Inches(12.3), Inches(0.4)),
             [f"medimg · {DISCLAIMER} · numbers from the model card"], 10, muted)
        if s.notes:
            slide.notes_slide.notes_text_frame.text = s.notes
    buf = io.BytesIO()
    prs.save(buf)
    return buf.getvalue()


def counts_by_class(table) -> dict[str, dict[str, int]]:
    """{class: {split: images}} from explore.class_split_counts's long table (class, split, images)."""
    out: dict[str, dict[str, int]] = {}
    for row in table.itertuples(index=False):
        out.setdefault(str(row[0]), {})[str(row[1])] = int(row[2])
    return out


def build_deck(task: str, data: str | Path | None = None, per_class: int = 300) -> bytes:
    """Build the PPTX for a shipped task: the card's numbers, plus data figures when the dataset is there.

    Args:
        task: a task with a model in the models folder; data: its dataset (default: the downloaded one).
    """
    from .checkpoint import default_model_path, read_card
    from .data import dataset_path, load_dataset
    from .explore import class_split_counts, model_split
    from .predict import load_classifier
    from .tasks import TASKS, get_task

    spec = get_task(task)
    card = read_card(default_model_path(task))
    others = {t: read_card(default_model_path(t)) for t in TASKS if t != task and default_model_path(t).is_file()}
    path = Path(data) if data else dataset_path(spec)
    examples, counts = [], None
    if path is not None and path.exists():
        ds = load_dataset(spec, path)
        counts = counts_by_class(class_split_counts(ds.labels, model_split(ds, card), ds.classes))
        examples = class_examples(load_classifier(task), validation_pool(ds, card, per_class))
    slides = build_slides(card, spec, examples, counts, others or None,
                          [t for name, t in TASKS.items() if name != task and name not in others])
    return build_pptx(slides)


def main(argv: list[str] | None = None) -> int:
    """`python -m medimg_core.deck --task modality --out slides.pptx`."""
    parser = argparse.ArgumentParser(prog="python -m medimg_core.deck", description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="modality")
    parser.add_argument("--data", help="the dataset (default: the downloaded one; figures need it)")
    parser.add_argument("--out", default="medimg-presentation.pptx")
    args = parser.parse_args(argv)
    Path(args.out).write_bytes(build_deck(args.task, args.data))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
