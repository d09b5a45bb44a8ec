"""The slide deck's figures (medimg_core.reports.deck_figures): PNGs of slide proportions, drawn without pyplot."""
from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from medimg_core.reports.deck_figures import confusion_png, counts_png, examples_png, gallery_png, prediction_png
from tests.test_deck import SPEC, fake_examples


def opened(data: bytes) -> Image.Image:
    """The PNG as PIL reads it (and proof that it is a PNG)."""
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return image


def test_counts_stack_every_split_and_take_unknown_splits_too():
    counts = {"glioma": {"train": 1200, "val": 300, "holdout": 50}, "no tumour": {"train": 5}, "empty": {}}
    w, h = opened(counts_png(counts, "Validation images per class")).size
    assert w > h >= 600  # a slide's landscape proportions, sharp at slide size


def test_confusion_matrix_of_three_classes_is_smaller_than_of_six():
    three = opened(confusion_png([[50, 2, 0], [1, 40, 3], [0, 0, 60]], ["glioma", "meningioma", "pituitary tumour"]))
    six = opened(confusion_png(np.eye(6, dtype=int) * 900, SPEC.classes))
    assert min(three.size) >= 300 and three.width < six.width and three.height < six.height


def test_prediction_puts_the_image_beside_the_bars():
    w, h = opened(prediction_png(fake_examples()[0])).size
    assert w >= 2 * h * 0.9 and h >= 600


def test_examples_grid_has_a_column_per_class_of_about_cell_pixels():
    small, large = opened(examples_png(fake_examples(3), cell=100)), opened(examples_png(fake_examples(3), cell=200))
    assert large.width - small.width >= 3 * 100 * 0.9  # three columns, each 100 px wider
    assert opened(examples_png(fake_examples(6))).width > large.width


def test_gallery_wraps_into_rows_of_columns():
    one_row, two_rows = opened(gallery_png(fake_examples(3))), opened(gallery_png(fake_examples(4)))
    assert one_row.width == two_rows.width == 3 * 300 and two_rows.height > 1.8 * one_row.height


def test_drawing_leaves_pyplot_alone():
    code = ("import sys; from tests.test_deck import fake_examples; from medimg_core.reports.deck_figures import gallery_png; "
            "gallery_png(fake_examples(2)); print('matplotlib.pyplot' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.stdout.strip() == "False"  # no global figure manager, nothing to close
