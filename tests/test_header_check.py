"""check_header: the DICOM header's modality and body part against the task registry's class facts."""
from __future__ import annotations

import numpy as np
import pytest

from medimg_core.io.dicom_header import DicomHeader, read_dicom_header
from medimg_core.inference.header_check import HeaderCheck, check_header, header_report
from medimg_core.inference.predict import Prediction
from medimg_core.tasks import TaskSpec, get_task
from tests.imagegen import dicom_bytes

MODALITY, PNEUMONIA, BRAIN = get_task("modality"), get_task("pneumonia"), get_task("brain-tumor")
CODES = {"CT": "CT", "MRI": "MR", "X-ray": "DX"}  # the facts' modality -> a DICOM code that says it


def predicted(label: str, recognised: bool = True) -> Prediction:
    """A prediction of `label` (recognised or flagged as not recognised)."""
    return Prediction(label=label, confidence=0.97, probabilities={label: 0.97}, in_distribution=recognised,
                      ood_score=0.1 if recognised else 9.0)


def header(modality: str | None = None, body_part: str | None = None) -> DicomHeader:
    return DicomHeader(modality=modality, body_part=body_part)


def test_a_header_from_a_file_that_contradicts_the_prediction_says_so_in_one_sentence():
    data = dicom_bytes(np.zeros((16, 16), np.uint16), modality="CT", tags={"BodyPartExamined": "ABDOMEN"})
    check = check_header(read_dicom_header(data), MODALITY, predicted("ChestCT"))
    assert check == HeaderCheck(False, "The header says CT of the ABDOMEN; the image looks like a chest CT.")


def test_an_agreeing_header_gets_a_short_confirmation():
    assert check_header(header("CT", "ABDOMEN"), MODALITY, predicted("AbdomenCT")) == \
        HeaderCheck(True, "The header (CT of the ABDOMEN) agrees with the prediction (abdomen CT).")


@pytest.mark.parametrize("label", MODALITY.classes)
def test_every_scan_type_agrees_with_a_header_written_from_its_own_facts(label):
    facts = MODALITY.facts(label)
    own = header(CODES[facts.modality], facts.body_part.upper())
    assert check_header(own, MODALITY, predicted(label)).agrees is True
    for other in MODALITY.classes:
        same = (MODALITY.facts(other).modality, MODALITY.facts(other).body_part) == (facts.modality, facts.body_part)
        assert check_header(own, MODALITY, predicted(other)).agrees is same, (label, other)


@pytest.mark.parametrize("given,label,note", [
    (header("CR", "CHEST"), "Hand", "The header says X-ray of the CHEST; the image looks like a hand X-ray."),
    (header("MR"), "ChestCT", "The header says MRI; the image looks like a chest CT."),
    (header("OT", "Head"), "AbdomenCT", "The header says the body part is Head; the image looks like an abdomen CT."),
    (header("MG"), "CXR", "The header says mammography of the BREAST; the image looks like a chest X-ray."),
    (header("US", "ABDOMEN"), "AbdomenCT", "The header says ultrasound of the ABDOMEN; the image looks like an abdomen CT."),
])
def test_disagreement_sentences(given, label, note):
    assert check_header(given, MODALITY, predicted(label)) == HeaderCheck(False, note)


def test_a_field_the_header_lacks_is_not_checked():
    assert check_header(header("MR"), MODALITY, predicted("BreastMRI")).agrees is True
    assert check_header(header(None, "THORAX"), MODALITY, predicted("CXR")).agrees is True
    assert check_header(header("CT", "XYZZY"), MODALITY, predicted("HeadCT")).agrees is True


def test_a_header_that_names_nothing_we_know_gives_no_verdict():
    assert check_header(header("OT"), MODALITY, predicted("Hand")) == HeaderCheck(None, "")
    assert check_header(DicomHeader(rows=8, columns=8), MODALITY, predicted("Hand")) == HeaderCheck(None, "")


def test_an_image_the_model_does_not_recognise_gets_no_disagreement():
    check = check_header(header("CT", "ABDOMEN"), MODALITY, predicted("ChestCT", recognised=False))
    assert check == HeaderCheck(None, "The model does not recognise the image, so it gives no label to compare "
                                      "with the header (CT of the ABDOMEN).")


def test_single_modality_tasks_compare_with_the_tasks_own_facts():
    assert check_header(header("CT", "HEAD"), BRAIN, predicted("glioma")) == \
        HeaderCheck(False, "The header says CT of the HEAD; the image looks like a head MRI.")
    assert check_header(header("MR", "BRAIN"), BRAIN, predicted("notumor")).agrees is True
    assert check_header(header("CR", "CHEST"), PNEUMONIA, predicted("pneumonia")).agrees is True
    assert check_header(header("CR", "HAND"), PNEUMONIA, predicted("normal")) == \
        HeaderCheck(False, "The header says X-ray of the HAND; the image looks like a chest X-ray.")


def test_a_flagged_image_whose_header_names_another_kind_than_the_task_says_both():
    check = check_header(header("CT", "HEAD"), BRAIN, predicted("glioma", recognised=False))
    assert check == HeaderCheck(None, "The header says CT of the HEAD, not the head MRI this model is for; the "
                                      "model does not recognise the image either, so it gives no label.")


def test_a_task_without_facts_gives_no_verdict():
    spec = TaskSpec.from_dict({"name": "covid", "title": "COVID", "classes": ["covid", "healthy"], "image_size": 64,
                               "source": {"filename": "covid", "kind": "image-folders"}})
    assert check_header(header("CR", "CHEST"), spec, predicted("covid")).agrees is None


def test_the_report_joins_the_header_and_the_verdict_and_is_none_for_other_files(samples):
    data = dicom_bytes(np.zeros((16, 16), np.uint16), modality="CT", tags={"BodyPartExamined": "ABDOMEN"})
    report = header_report(data, MODALITY, predicted("ChestCT"))
    assert report["modality"] == "CT" and report["body_part"] == "ABDOMEN" and report["agrees"] is False
    assert report["note"].startswith("The header says CT of the ABDOMEN")
    assert header_report(samples.hand_like_png(), MODALITY, predicted("Hand")) is None
