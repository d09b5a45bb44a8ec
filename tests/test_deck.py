"""The presentation story and its PPTX export (medimg_core.reports.deck), read back with python-pptx."""
from __future__ import annotations

import copy
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medimg_core import get_task
from medimg_core.models.checkpoint import default_model_path
from medimg_core.reports.class_examples import ClassExample
from medimg_core.reports.deck import build_pptx, build_slides
from medimg_core.reports.deck_figures import confusion_png, counts_png, examples_png, gallery_png, prediction_png
from medimg_core.reports.story import STEPS, facts, fill, handover, headline_numbers, step_text

pptx = pytest.importorskip("pptx", reason="python-pptx is not installed (pip install -r requirements.txt)")

ROOT = Path(__file__).resolve().parents[1]
SPEC = get_task("modality")
SHIPPED_CARD = ROOT / "assets" / "models" / "modality.json"
STORY = ("question", "data", "model", "live", "explain", "limits")


@pytest.fixture(scope="module")
def card() -> dict:
    """The shipped model card when there is one, else a small made-up card of the same shape."""
    if SHIPPED_CARD.is_file():
        return json.loads(SHIPPED_CARD.read_text())
    cm = np.diag([90, 80, 90, 90, 90, 89]).tolist()
    cm[0][3] = 1
    return {
        "task": "modality", "title": SPEC.title, "classes": list(SPEC.classes), "input": {"size": [64, 64]},
        "model": {"architecture": "compact-cnn", "parameters": 144438, "size_mb": 0.55, "cam_layer": "block3"},
        "training": {"config": {"epochs": 8}, "hardware": "x86_64, 2 CPU cores, torch, no GPU", "created": "2026-01-01 00:00:00 UTC"},
        "data": {"source": "MedNIST.tar.gz", "images": 5300, "train": 4770, "validation": 530, "duplicate_images": 4},
        "validation": {"n": 530, "accuracy": 0.99811, "macro_f1": 0.99812, "auc": 0.99999, "ece": 0.0012,
                       "classes": list(SPEC.classes), "confusion_matrix": cm,
                       "per_class": {c: {"support": int(sum(row))} for c, row in zip(SPEC.classes, cm)}},
        "calibration": {"method": "temperature scaling on validation"},
        "ood": {"method": "Mahalanobis distance", "validation_flag_rate": 0.0051},
        "baseline": {"model": "PCA(64) + logistic regression (scikit-learn)", "accuracy": 0.9907},
    }


def fake_examples(n_classes: int = 6, size: int = 64) -> list[ClassExample]:
    """Class examples drawn in code (no model, no data): a bright disc per class at a different place."""
    yy, xx = np.mgrid[:size, :size] / size
    out = []
    for c, name in enumerate(SPEC.classes[:n_classes]):
        image = (((xx - 0.2 - 0.1 * c) ** 2 + (yy - 0.5) ** 2) < 0.04).astype(np.float32)
        probs = {k: (0.95 if k == name else 0.01) for k in SPEC.classes}
        out.append(ClassExample(name, "CT", image * 0.5, 10, image, f"{name}/0.jpeg", name, 0.95, probs,
                                np.clip(image + 0.1, 0, 1).astype(np.float32)))
    return out


def read_back(data: bytes):
    """The deck as python-pptx sees it, and per slide: title, all text, tables' cells, picture count, notes."""
    deck = pptx.Presentation(io.BytesIO(data))
    slides = []
    for slide in deck.slides:
        texts, cells, pictures = [], [], 0
        for shape in slide.shapes:
            if shape.has_text_frame:
                texts.append(shape.text_frame.text)
            if getattr(shape, "has_table", False) and shape.has_table:
                cells += [[cell.text for cell in row.cells] for row in shape.table.rows]
            if shape.shape_type == pptx.enum.shapes.MSO_SHAPE_TYPE.PICTURE:
                pictures += 1
        notes = slide.notes_slide.notes_text_frame.text if slide.has_notes_slide else ""
        slides.append({"title": slide.shapes.title.text, "text": "\n".join(texts), "cells": cells,
                       "pictures": pictures, "notes": notes})
    return deck, slides


def test_the_story_has_six_fixed_steps_for_two_presenters():
    assert tuple(s.key for s in STEPS) == STORY
    assert {s.presenter for s in STEPS} == {1, 2}
    assert all(s.title and s.headline and s.points and s.notes for s in STEPS)
    handovers = [i for i in range(len(STEPS)) if handover(i)]
    assert handovers and all(STEPS[i + 1].presenter != STEPS[i].presenter for i in handovers)
    assert handover(len(STEPS) - 1) == ""


def test_fill_leaves_out_points_whose_numbers_are_missing():
    assert fill("{a} of {b}", {"a": "1", "b": "2"}) == "1 of 2"
    assert fill("{a} of {b}", {"a": "1"}) is None
    assert fill("no numbers", {}) == "no numbers"
    headline, points, notes = step_text(STEPS[2], {})  # the model step with an empty card: no invented numbers
    assert headline == STEPS[2].title and points == [] and notes


def test_facts_and_headline_numbers_come_from_the_card(card):
    v = card["validation"]
    values = facts(card, SPEC, {"AbdomenCT": 10, "BreastMRI": 8})
    assert values["accuracy"] == f"{v['accuracy']:.2%}"
    assert values["macro_f1"] == f"{v['macro_f1']:.4f}"
    assert values["n_val"] == f"{v['n']:,}"
    assert values["images"] == f"{card['data']['images']:,}"
    assert values["baseline_accuracy"] == f"{card['baseline']['accuracy']:.2%}"
    assert values["errors"] == f"{int(np.sum(v['confusion_matrix']) - np.trace(v['confusion_matrix'])):,}"
    assert (values["smallest_class"], values["smallest_count"]) == ("BreastMRI", "8")
    numbers = dict(headline_numbers(card))
    assert numbers["Validation accuracy"] == f"{v['accuracy']:.2%}"
    assert numbers["ROC AUC"] == f"{v['auc']:.4f}"
    assert numbers["Baseline accuracy"] == f"{card['baseline']['accuracy']:.2%}"
    changed = copy.deepcopy(card)
    changed["validation"]["accuracy"] = 0.5
    assert dict(headline_numbers(changed))["Validation accuracy"] == "50.00%"  # nothing is hard-coded


def test_figures_are_pngs():
    examples = fake_examples()
    counts = {c: {"train": 90, "val": 10} for c in SPEC.classes}
    for data in (counts_png(counts), confusion_png(np.eye(6, dtype=int) * 9, SPEC.classes),
                 prediction_png(examples[0]), examples_png(examples), gallery_png(examples)):
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG" and min(image.size) >= 300


def test_deck_without_data_has_every_step_and_the_cards_numbers(card):
    data = build_pptx(build_slides(card, SPEC))
    deck, slides = read_back(data)
    assert deck.slide_width > deck.slide_height  # 16:9
    assert [s["title"] for s in slides[1:]] == [s.title for s in STEPS]
    assert "not a diagnostic device" in slides[0]["text"]
    by_title = {s["title"]: s for s in slides}
    model = by_title["The model and its numbers"]
    cells = dict(tuple(row) for row in model["cells"])
    v = card["validation"]
    assert cells["Validation accuracy"] == f"{v['accuracy']:.2%}"
    assert cells["Macro-F1"] == f"{v['macro_f1']:.4f}"
    assert cells["Validation images"] == f"{v['n']:,}"
    assert f"{v['accuracy']:.2%} validation accuracy" in model["text"]
    assert model["pictures"] == 1  # the confusion matrix
    assert by_title["The data"]["pictures"] == 1  # validation images per class, from the card
    assert all(s["notes"] for s in slides)
    assert "Hand over to presenter 2" in model["notes"]


def test_deck_with_examples_has_a_figure_per_step(card):
    counts = {c: {"train": 90, "val": 10} for c in SPEC.classes}
    others = {"pneumonia": {"title": "Pneumonia", "validation": {"accuracy": 0.91, "n": 100}}}
    slides = build_slides(card, SPEC, fake_examples(), counts, others, [get_task("brain-tumor")])
    _, read = read_back(build_pptx(slides))
    assert [s["title"] for s in read] == ["Medical image classification: " + SPEC.title,  # the task's title
                                          *[s.title for s in STEPS], "All shipped models"]
    pictures = {s["title"]: s["pictures"] for s in read}
    assert all(pictures[s.title] == 1 for s in STEPS if s.key != "limits")
    assert "Images per class: from 100 (AbdomenCT) to 100." in read[2]["text"]
    assert "brain tumour type on MRI" in read[6]["text"]
    assert any("91.00%" in cell for row in read[-1]["cells"] for cell in row)


@pytest.mark.skipif(not default_model_path("modality").is_file(), reason="no modality model installed")
def test_command_line_builds_the_deck_from_the_shipped_model_and_the_data(tmp_path, mednist):
    from medimg_core.reports.deck import main
    from medimg_core.models.checkpoint import read_card

    out = tmp_path / "slides.pptx"
    assert main(["--task", "modality", "--data", str(mednist), "--out", str(out)]) == 0
    card = read_card(default_model_path("modality"))
    _, slides = read_back(out.read_bytes())
    assert [s["title"] for s in slides[1 : 1 + len(STEPS)]] == [s.title for s in STEPS]
    assert all(s["pictures"] == 1 for s in slides[1 : 1 + len(STEPS)] if s["title"] != "Limitations and next steps")
    model = next(s for s in slides if s["title"] == "The model and its numbers")
    assert dict(map(tuple, model["cells"]))["Validation accuracy"] == f"{card['validation']['accuracy']:.2%}"
    data = next(s for s in slides if s["title"] == "The data")
    assert f"{card['data']['images']:,} public images" in data["text"]


def test_a_cross_validated_card_headlines_its_mean_and_spread_not_one_split(card):
    crossvalidated = {**card, "crossval": {"own_validation": {"accuracy": {"mean": 0.959, "std": 0.003},
                                                              "auc": {"mean": 0.993, "std": 0.0014}}}}
    numbers = dict(headline_numbers(crossvalidated))
    assert numbers["Cross-validated accuracy"] == "95.9% ± 0.3%" and numbers["Cross-validated AUC"] == "0.993 ± 0.001"
    assert "Validation accuracy" not in numbers
