"""AppTest tests of the background page (app_pages/background.py): the text, the table, real examples with Grad-CAM."""
from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from medimg_app.cache import model_card, shipped_tasks
from medimg_core import get_task
from medimg_core.data.datasets import dataset_path

ROOT = Path(__file__).resolve().parents[1]
PAGE = "app_pages/background.py"  # as registered in streamlit_app.py's st.navigation
SPEC = get_task("modality")


def open_background() -> AppTest:
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def page_text(at: AppTest) -> str:
    """The page's markdown as plain words (no bold marks, one space between words)."""
    return " ".join(" ".join(m.value.replace("**", "").split()) for m in at.markdown)


def test_the_text_covers_formation_radiation_contrast_mri_types_and_uses(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))  # no data: the text and the table alone
    at = open_background()
    assert at.title[0].value == "MRI vs CT vs X-ray"
    headers = [h.value for h in at.header]
    for wanted in ("How each one makes an image", "Radiation", "Contrast agents", "Open and closed MRI",
                   "What each is typically used for", "Side by side"):
        assert wanted in headers
    text = page_text(at)
    for phrase in ("ionising radiation", "MRI uses no ionising radiation.", "gadolinium", "iodinated",
                   "Allergic-type reactions", "Kidneys", "claustrophobia", "open MRI", "multiple sclerosis",
                   "aneurysms", "stroke", "tumours", "damage after a heart attack", "blood flow", "joints",
                   "breast", "X-ray or ultrasound is inconclusive", "blood vessels, soft tissue and bone"):
        assert phrase in text, phrase
    assert "not a diagnostic device" in at.info[0].value


def test_the_comparison_table_has_the_three_modalities_and_the_datasets_classes(tmp_path, monkeypatch):
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))
    at = open_background()
    table = at.table[0].value
    assert list(table.columns) == ["X-ray", "CT", "MRI"]
    assert table.loc["Ionising radiation", "MRI"] == "None"
    assert table.loc["Classes in this app's dataset"].tolist() == ["CXR, Hand", "AbdomenCT, ChestCT, HeadCT", "BreastMRI"]
    if "modality" in shipped_tasks():  # without the data, the examples section offers the download
        assert "download_dataset_modality" in [b.key for b in at.button]


@pytest.mark.skipif("modality" not in shipped_tasks(), reason="no modality model installed")
@pytest.mark.skipif(dataset_path(SPEC) is None, reason="MedNIST.tar.gz is not in $MEDIMG_DATA_DIR")
def test_real_examples_show_mean_image_typical_example_and_gradcam_per_class():
    at = open_background()
    images = at.get("image")
    captions = [im.proto.imgs[0].caption for im in images]
    assert len(images) == 3 * len(SPEC.classes)
    for name in SPEC.classes:
        assert f"Grad-CAM: predicted {name} " in "\n".join(captions) + " "
    assert sum(c.startswith("Mean of ") for c in captions) == len(SPEC.classes)
    cm = model_card("modality")["validation"]["confusion_matrix"]
    n = sum(map(sum, cm))
    assert f"Of its {n:,} validation images" in page_text(at) or f"all {n:,} of its validation images" in page_text(at)
