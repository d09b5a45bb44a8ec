"""The deck states the training facts its cards hold: hardware, image counts by source, checks on unseen data."""
from __future__ import annotations

import copy
import json

import pytest

from medimg_core.models.checkpoint import ASSETS_DIR
from medimg_core.reports.deck import build_slides
from medimg_core.reports.story import facts, independent_check, training_hardware
from medimg_core.tasks import get_task

CARDS = {t: json.loads((ASSETS_DIR / f"{t}.json").read_text()) for t in ("modality", "pneumonia", "brain-tumor")}


def slide_text(task: str, card: dict | None = None) -> str:
    """Every headline and bullet of a task's deck, built from its card (no data, no figures)."""
    slides = build_slides(card or CARDS[task], get_task(task))
    return "\n".join([s.headline for s in slides] + [b for s in slides for b in s.bullets])


def test_a_model_trained_on_a_gpu_is_said_to_be_trained_on_that_gpu():
    card = CARDS["modality"]
    assert card["training"]["device"] == "cuda"
    assert training_hardware(card) == f"one {card['training']['hardware'].split(', ')[-1]} GPU"
    assert "CPU cores" not in slide_text("modality") and "on one NVIDIA" in slide_text("modality")


def test_a_model_trained_on_the_cpu_is_said_to_be_trained_on_its_cores():
    card = CARDS["pneumonia"]
    assert card["training"]["device"] == "cpu" and training_hardware(card) == card["training"]["hardware"].split(", ")[1]


def test_the_image_count_names_how_many_come_from_the_tasks_own_dataset():
    d = CARDS["modality"]["data"]
    own = d["train"] + d["validation"]
    text = slide_text("modality")
    assert f"{d['images']:,} public images ({own:,} from {d['source']} and {d['images'] - own:,} from" in text
    assert f"{d['images']:,} public images from" not in text


def test_a_card_with_unseen_datasets_is_not_said_to_lack_an_external_check():
    held = CARDS["modality"]["external"]["held_out"]
    text = slide_text("modality")
    assert "no external test set yet" not in text
    assert f"{held['right_not_flagged']:.1%} of {held['in_kind']:,} scans of its kinds from 20 datasets it never saw" in text


def test_a_card_without_any_check_on_unseen_data_says_so():
    card = copy.deepcopy(CARDS["brain-tumor"])
    card.pop("external")
    assert "no external test set yet" in independent_check(card)
    card["test"] = {"data": "Testing folder", "n": 1311, "accuracy": 0.9}
    assert "on a test set (Testing folder): 90.00% accuracy of 1,311 images" in independent_check(card)


@pytest.mark.parametrize("task", list(CARDS))
def test_every_shipped_cards_deck_quotes_its_split_and_its_sources(task):
    values = facts(CARDS[task], get_task(task))
    assert values["split"] and not values["split"].startswith(f"{CARDS[task]['data']['train']:,} images for training, 0 ")
    assert values["image_sources"].startswith(f"{CARDS[task]['data']['train'] + CARDS[task]['data']['validation']:,}")
