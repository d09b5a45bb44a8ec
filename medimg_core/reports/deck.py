"""The group presentation as a PPTX slide deck (no Streamlit in here).

The story (steps, text, numbers from the model card) is `medimg_core.reports.story`; each class's typical
example is `medimg_core.reports.class_examples`, the figures `medimg_core.reports.deck_figures`; this module
writes the slides.

From the command line::

    python -m medimg_core.reports.deck --task modality --out slides.pptx
"""
from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from .class_examples import ClassExample, class_examples, showcase, validation_pool
from .deck_figures import confusion_png, counts_png, examples_png, gallery_png, prediction_png
from .story import DISCLAIMER, STEPS, facts, handover, headline_numbers, step_text
from ..tasks import TASKS, TaskSpec

PPTX_MIME = "application/vnd.openxmlformats-officedocument.presentationml.presentation"


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
            title = TASKS[task].title if task in TASKS else other.get("title", task)  # the task's, not an old card's
            rows.append((title, ", ".join(f"{k} {numbers[k]}" for k in ("Validation accuracy", "Macro-F1",
                                                                       "Validation images") if k in numbers)))
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
    from ..models.checkpoint import default_model_path, read_card
    from ..data.datasets import dataset_path, load_dataset
    from .explore import class_split_counts, model_split
    from ..inference.predict import load_classifier
    from ..tasks import get_task

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
    """`python -m medimg_core.reports.deck --task modality --out slides.pptx`."""
    parser = argparse.ArgumentParser(prog="python -m medimg_core.reports.deck", description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="modality")
    parser.add_argument("--data", help="the dataset (default: the downloaded one; figures need it)")
    parser.add_argument("--out", default="medimg-presentation.pptx")
    args = parser.parse_args(argv)
    Path(args.out).write_bytes(build_deck(args.task, args.data))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
