"""AppTest tests of the prediction page (app_pages/predict.py) and its widgets, run in-process."""
from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from medimg_app import predict_widgets, widgets
from medimg_app.cache import shipped_tasks
from medimg_core import get_task
from medimg_core.data.datasets import DataError, dataset_path
from medimg_core.inference.explain import CAM_METHODS, GRADIENT_FREE
from medimg_core.inference.predict import Prediction
from tests.imagegen import dicom_bytes

pytestmark = pytest.mark.skipif("modality" not in shipped_tasks(),
                                reason="no modality model installed (assets/models or $MEDIMG_MODELS_DIR)")
CLASSES = get_task("modality").classes
ROOT = Path(__file__).resolve().parents[1]
PREDICT_PAGE = "app_pages/predict.py"  # as registered in streamlit_app.py's st.navigation
HAS_MEDNIST = dataset_path(get_task("modality")) is not None


def open_predict() -> AppTest:
    """A fresh session of the app, switched to the Predict page."""
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=90)
    at.run()
    at.switch_page(PREDICT_PAGE).run()
    assert not at.exception
    return at


def upload(at: AppTest, *files: tuple[str, bytes, str]) -> AppTest:
    """Put files into the page's uploader and rerun."""
    at.file_uploader(key="uploads").set_value(list(files)).run()
    assert not at.exception
    return at


def markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def captions(at: AppTest) -> str:
    return "\n".join(c.value for c in at.caption)


def chart_keys(at: AppTest) -> list[str]:
    return [c.proto.id.rsplit("-", 1)[-1] for c in at.get("plotly_chart")]


def image_captions(at: AppTest) -> list[str]:
    return [im.proto.imgs[0].caption for im in at.get("image")]


@pytest.fixture
def hand(scans) -> tuple[str, bytes, str]:
    """A real hand X-ray from Medical MNIST (one the model gets right), as an upload."""
    return ("hand.jpeg", scans["Hand"], "image/jpeg")


def test_empty_page_has_task_selector_uploader_and_hint():
    at = open_predict()
    assert at.selectbox(key="task").options == [get_task(t).title for t in shipped_tasks()]
    assert at.file_uploader(key="uploads").accept_multiple_files
    assert any("Drop a scan" in i.value for i in at.info)
    assert not at.get("plotly_chart")


def test_one_real_scan_shows_card_chart_and_heatmap(hand):
    at = upload(open_predict(), hand)
    assert "#### hand.jpeg" in markdown(at)
    assert "## Hand" in markdown(at)
    assert not at.warning
    assert "confident (calibrated)" in at.get("progress")[0].proto.text
    assert chart_keys(at) == ["prob_chart", "raw_heatmap"]
    assert image_captions(at) == ["Original (64 x 64)", "As the model sees it (64 x 64)", "Grad-CAM for Hand"]
    assert "What it does not prove" in captions(at)
    assert at.get("download_button")[0].key == "download_overlay"


def test_the_mirror_toggle_shows_the_test_time_augmented_probabilities(hand):
    from medimg_core import load_classifier, read_image

    at = upload(open_predict(), hand)
    at.toggle(key="tta").set_value(True).run()
    assert not at.exception
    clf, image = load_classifier("modality"), read_image(hand[1])
    assert chart_keys(at)[0] == "prob_chart"
    shown = json.loads(at.get("plotly_chart")[0].proto.spec)
    bars = dict(zip(shown["data"][0]["y"], shown["data"][0]["x"]))
    mirrored = clf.predict(image, tta=True).probabilities
    assert bars == pytest.approx(mirrored, abs=1e-6)
    assert bars != clf.predict(image).probabilities  # the plain prediction differs


def test_every_cam_method_target_and_opacity_render(hand):
    at = upload(open_predict(), hand)
    assert set(at.selectbox(key="cam_method").options) >= {"Grad-CAM", "Grad-CAM++", "EigenCAM", "LayerCAM", "ScoreCAM"}
    for method in CAM_METHODS:
        at.selectbox(key="cam_method").set_value(method).run()
        assert not at.exception and not at.error, method
        assert f"{method} for Hand" in image_captions(at)
        assert ("slower" in captions(at)) == (method in GRADIENT_FREE)
    at.selectbox(key="cam_method").set_value("Grad-CAM")
    at.selectbox(key="cam_target_modality").set_value("CXR")
    at.slider(key="cam_opacity").set_value(0.8).run()
    assert not at.exception
    assert "Grad-CAM for CXR" in image_captions(at)
    assert "## Hand" in markdown(at)  # the label stays the prediction


def test_dicom_upload_is_read(scans):
    from medimg_core import load_classifier, read_image

    pixels = np.asarray(Image.open(io.BytesIO(scans["Hand"])).convert("L"))
    data = dicom_bytes(pixels.astype(np.uint16) * 16)  # 12-bit MONOCHROME2
    expected = load_classifier("modality").predict(read_image(data))
    at = upload(open_predict(), ("hand.dcm", data, "application/dicom"))
    assert not at.error
    assert "#### hand.dcm" in markdown(at)
    assert f"## {expected.label}" in markdown(at) or "## Not recognised" in markdown(at)
    assert chart_keys(at) == ["prob_chart", "raw_heatmap"]


def test_large_image_is_shown_and_classified(samples):
    at = upload(open_predict(), ("big.png", samples.hand_like_png(2400), "image/png"))
    assert not at.error
    assert image_captions(at)[:2] == ["Original (2400 x 2400)", "As the model sees it (64 x 64)"]
    assert chart_keys(at) == ["prob_chart", "raw_heatmap"]


def test_unfamiliar_image_warns_instead_of_a_label(samples):
    at = upload(open_predict(), ("checkerboard.png", samples.checkerboard_png(), "image/png"))
    assert "## Not recognised" in markdown(at)
    assert "does not look like the images this model knows** (AbdomenCT, BreastMRI, CXR" in at.warning[0].value
    assert not any(m == f"## {c}" for m in markdown(at) for c in CLASSES)


def test_broken_file_error_stays_beside_it_and_the_rest_works(samples):
    at = upload(open_predict(), ("bad.png", samples.broken, "image/png"))
    assert "bad.png" in at.error[0].value and "not an image we can read" in at.error[0].value
    at = upload(at, ("hand.png", samples.hand_like_png(), "image/png"), ("bad.png", samples.broken, "image/png"),
                ("checkerboard.png", samples.checkerboard_png(6), "image/png"))
    table = at.dataframe[0].value
    assert list(table["file"]) == ["hand.png", "bad.png", "checkerboard.png"]
    assert list(table.columns) == ["file", "thumbnail", "label", "confidence", "flag", "decided_by"]
    assert table["flag"][1] == "cannot read" and table["flag"][2] == "not recognised"
    assert table["label"][2].startswith("not recognised (closest: ") and table["decided_by"][2] == "pixels"
    assert table["thumbnail"][0].startswith("data:image/png;base64,")
    assert [e.value for e in at.error] == [
        "**bad.png**: This file is not an image we can read (JPEG, PNG, BMP, TIFF, WebP, GIF, JPEG 2000 or DICOM)."]
    assert at.get("download_button")[0].key == "download_csv"
    assert any("Choose a row" in i.value for i in at.info)

    at.session_state["results_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert "#### hand.png" in markdown(at)
    assert chart_keys(at) == ["prob_chart", "raw_heatmap"]

    at.session_state["results_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert "#### bad.png" in markdown(at) and "cannot be used" in at.error[-1].value
    assert "raw_heatmap" not in chart_keys(at)


def test_results_csv_has_every_file_and_probability():
    items = [widgets.Item("a.png", error="broken"),
             widgets.Item("b.png", prediction=Prediction("Hand", 0.9, {c: 0.9 if c == "Hand" else 0.02 for c in CLASSES},
                                                          True, 3.0))]
    lines = predict_widgets.results_csv(items).decode().splitlines()
    assert lines[0] == ("file,label,closest,confidence,flag,decided_by,reason,in_distribution,ood_score,"
                        + ",".join(f"p_{c}" for c in CLASSES) + ",error")
    assert lines[1].startswith("a.png,,,,cannot read,") and lines[1].endswith(",broken")
    assert lines[2].startswith("b.png,Hand,Hand,0.9000,ok,pixels,,True,3.0000,")


def test_the_table_and_the_csv_give_no_label_to_an_image_not_recognised():
    flagged = widgets.Item("c.png", image=np.zeros((8, 8), np.float32),
                           prediction=Prediction("Hand", 0.99, {c: 0.99 if c == "Hand" else 0.002 for c in CLASSES},
                                                 False, 9.0, reason="It is unlike the images it knows."))
    row = predict_widgets.table_row(flagged)
    assert (row["label"], row["flag"]) == ("not recognised (closest: Hand)", "not recognised")
    assert row["confidence"] is None  # no bar at 99% beside "not recognised"
    assert predict_widgets.results_csv([flagged]).decode().splitlines()[1].startswith(
        "c.png,,Hand,0.9900,not recognised,pixels,It is unlike the images it knows.,False,")


@pytest.mark.parametrize("confidence, in_dist, expected", [
    (0.95, True, ""), (widgets.LOW_CONFIDENCE - 0.01, True, "low confidence"),
    (widgets.LOW_CONFIDENCE, True, ""), (0.99, False, "unfamiliar image")])
def test_flag_threshold(confidence, in_dist, expected):
    assert widgets.flag(Prediction("Hand", confidence, {}, in_dist, 0.0)) == expected


def test_uploads_are_read_in_memory_only(monkeypatch, samples):
    class Upload:  # only getvalue(): no path, no file on disk
        name = "hand.png"

        def getvalue(self) -> bytes:
            return samples.hand_like_png()

    def no_disk(*args, **kwargs):
        raise AssertionError("an upload touched the disk")

    monkeypatch.setattr("builtins.open", no_disk)
    items = widgets.read_uploads([Upload()])
    assert items[0].error is None and items[0].image.shape == (96, 96)


@pytest.mark.skipif(not HAS_MEDNIST, reason="MedNIST.tar.gz not found in $MEDIMG_DATA_DIR")
def test_try_an_example_picks_an_image_of_the_chosen_class():
    at = open_predict()
    at.selectbox(key="example_class").set_value("CXR")
    at.button(key="example_button").click().run()
    assert not at.exception
    heading = next(m for m in markdown(at) if m.startswith("#### Example: "))
    assert "/CXR/" in heading
    assert "comes from the **CXR** folder" in captions(at)
    assert chart_keys(at) == ["prob_chart", "raw_heatmap"]
    at.button(key="clear_example").click().run()
    assert not any(m.startswith("#### Example") for m in markdown(at))


def test_without_any_data_an_example_shows_a_label_and_a_heatmap(monkeypatch, tmp_path):
    """A fresh machine: the shipped MedNIST examples work before (and without) any download."""
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))
    at = open_predict()
    assert at.selectbox(key="example_class").options == list(CLASSES)
    at.selectbox(key="example_class").set_value("Hand")
    at.button(key="example_button").click().run()
    assert not at.exception
    heading = next(m for m in markdown(at) if m.startswith("#### Example: "))
    assert heading.startswith("#### Example: modality/Hand/")
    assert "## Hand" in markdown(at) and "comes from the **Hand** folder" in captions(at)
    assert chart_keys(at) == ["prob_chart", "raw_heatmap"]
    assert any(c.startswith("Grad-CAM for Hand") for c in image_captions(at))
    assert "MedNIST images (CC BY-SA 4.0" in captions(at)
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded


@pytest.mark.skipif("pneumonia" not in shipped_tasks(), reason="no pneumonia model installed")
def test_a_task_without_shipped_examples_says_why_and_offers_the_download(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))
    at = open_predict()
    at.selectbox(key="task").set_value("pneumonia").run()
    assert not at.exception
    assert "No example scans of this task ship with the app" in captions(at)
    assert at.button(key="download_dataset_pneumonia") and "example_class" not in [s.key for s in at.selectbox]


def test_missing_dataset_offers_download_with_progress(monkeypatch, tmp_path):
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))
    steps = []

    def fake_download(spec, progress=None, **kwargs):
        for done in (0, 50, 100):
            progress(done, 100)
            steps.append(done)
        (tmp_path / spec.source.filename).write_bytes(b"")  # the dataset now 'exists'
        return tmp_path / spec.source.filename

    monkeypatch.setattr(widgets, "download", fake_download)
    at = open_predict()
    assert any("not downloaded yet" in i.value for i in at.info)
    at.button(key="download_dataset_modality").click().run()
    assert not at.exception and steps == [0, 50, 100]
    assert at.selectbox(key="example_class").options == list(CLASSES)


@pytest.mark.parametrize("message", [
    "Could not download https://x (no network). Without network access, run: medimg download "
    "modality --from PATH",
    "Checksum mismatch for MedNIST.tar.gz."])
def test_failed_download_says_how_to_use_a_local_copy(monkeypatch, tmp_path, message):
    monkeypatch.setenv("MEDIMG_DATA_DIR", str(tmp_path))

    def failing_download(spec, progress=None, **kwargs):
        raise DataError(message)

    monkeypatch.setattr(widgets, "download", failing_download)
    at = open_predict()
    at.button(key="download_dataset_modality").click().run()
    assert not at.exception
    text = at.error[0].value
    assert message in text
    assert text.count("--from PATH") == 1  # the hint is added only when the message lacks it
    assert at.file_uploader(key="uploads")  # the page stays usable


def test_heatmap_has_useful_resolution(scans):
    from medimg_core import load_classifier, read_image

    heat = load_classifier("modality").explain(read_image(scans["Hand"]), method="Grad-CAM")
    assert heat.shape == (64, 64)
    # not 2x2 or 4x4 blocks: many distinct values along a row and a column
    assert len(np.unique(heat.round(3))) > 200
    assert len(np.unique(heat[32].round(4))) > 16 and len(np.unique(heat[:, 32].round(4))) > 16


@pytest.mark.skipif("pneumonia" not in shipped_tasks(), reason="no pneumonia model installed")
def test_a_recognised_chest_xray_also_gets_the_pneumonia_models_verdict(scans):
    at = upload(open_predict(), ("chest.jpeg", scans["CXR"], "image/jpeg"))
    text = "\n".join(markdown(at))
    assert "Second step: Pneumonia on paediatric chest X-rays" in text
    assert "Run because the first model recognised a CXR" in captions(at)
    assert any(f"### {label}" in text for label in ("normal", "pneumonia")) or at.warning


@pytest.mark.skipif("pneumonia" not in shipped_tasks(), reason="no pneumonia model installed")
def test_an_adult_chest_xray_the_pneumonia_model_flags_gets_its_population_and_no_verdict(mednist_images):
    from medimg_core import load_classifier, read_image

    first, second = load_classifier("modality"), load_classifier("pneumonia")
    flagged = [b for b in mednist_images["CXR"]
               if first.predict(read_image(b)).label == "CXR" and not second.predict(read_image(b)).in_distribution]
    if not flagged:
        pytest.skip("the pneumonia model recognises every MedNIST (adult) chest X-ray in the sample")
    at = upload(open_predict(), ("adult-chest.png", flagged[0], "image/png"))
    assert "children aged one to five" in captions(at)
    assert any(w.value.startswith("No verdict") for w in at.warning)
    text = "\n".join(markdown(at))
    assert not any(f"### {label}" in text for label in ("normal", "pneumonia"))
    assert not any("pneumonia," in w.value or "normal," in w.value for w in at.warning)


@pytest.mark.skipif("pneumonia" not in shipped_tasks(), reason="no pneumonia model installed")
def test_other_scan_types_get_no_second_step(scans):
    at = upload(open_predict(), ("hand.jpeg", scans["Hand"], "image/jpeg"))
    assert not any("Second step" in m for m in markdown(at))


@pytest.mark.skipif("brain-tumor" not in shipped_tasks(), reason="no brain tumour model installed")
def test_a_brain_mri_under_the_scan_type_task_is_flagged_and_sent_to_the_brain_task(brain_mri):
    at = upload(open_predict(), ("brain.jpg", brain_mri, "image/jpeg"))
    assert any("does not look like the images this model knows" in w.value for w in at.warning)
    assert "Another model knows images like this one" in "\n".join(markdown(at))
    at.button(key="switch_brain-tumor").click().run()
    assert not at.exception
    assert at.selectbox(key="task").value == "brain-tumor"
    labels = {f"## {c}" for c in get_task("brain-tumor").classes}
    assert labels & set(markdown(at)) or "## Not recognised" in markdown(at)
    assert "Another model knows images like this one" not in "\n".join(markdown(at))


@pytest.mark.skipif("brain-tumor" not in shipped_tasks(), reason="no brain tumour model installed")
def test_a_familiar_scan_gets_no_suggestion_of_another_task(scans):
    at = upload(open_predict(), ("hand.jpeg", scans["Hand"], "image/jpeg"))
    assert "Another model knows images like this one" not in "\n".join(markdown(at))


@pytest.mark.skipif("pneumonia" not in shipped_tasks(), reason="no pneumonia model installed")
def test_a_screening_verdict_states_its_probability_and_threshold_as_the_command_line_does(tmp_path):
    import tarfile

    from medimg_core import load_classifier, read_image
    from medimg_core.inference.verdict import label_text
    from tests.conftest import shared_file

    with tarfile.open(shared_file("chest-xray-pneumonia-224.tar.gz")) as tar:
        member = next(m for m in tar if m.isfile() and "/PNEUMONIA/" in m.name)
        data = tar.extractfile(member).read()
    pred = load_classifier("pneumonia").predict(read_image(data))
    at = open_predict()
    at.selectbox(key="task").set_value("pneumonia").run()
    at = upload(at, ("xray.jpeg", data, "image/jpeg"))
    if pred.label is None:
        assert "## Not recognised" in markdown(at)
    else:
        assert f"## {pred.label}" in markdown(at)
        assert at.get("progress")[0].proto.text == label_text(pred, "pneumonia")
        assert "screening threshold" in at.get("progress")[0].proto.text
