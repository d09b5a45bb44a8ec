"""Does what the DICOM header says agree with what the model sees?

Scanners and archives often write the wrong modality or body part into a file. `check_header`
compares a `DicomHeader` with the class facts of the task registry (`TaskSpec.facts`: modality and
body part of the predicted class, or of the whole task for single-modality tasks) and says, in
one plain sentence, where they differ. Only the fields the header and the facts both name are
compared; an image the model does not recognise gets no verdict, only a sentence saying so.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..io.dicom_header import DicomHeader, read_dicom_header
from ..io.imaging import ImageSource
from ..tasks import ClassFacts, TaskSpec

if TYPE_CHECKING:
    from .prediction import Prediction


@dataclass(frozen=True)
class HeaderCheck:
    """The verdict: agrees is True / False, or None when nothing could be compared; note is one sentence
    for the user ("" when there is nothing to say)."""

    agrees: bool | None
    note: str = ""


def check_header(header: DicomHeader, spec: TaskSpec, prediction: Prediction) -> HeaderCheck:
    """Compare the header's modality and body part with the facts of the predicted class of `spec`.

    Example: a header CT / ABDOMEN against a prediction of ChestCT gives
    HeaderCheck(False, "The header says CT of the ABDOMEN; the image looks like a chest CT.").
    """
    says = header_phrase(header)
    if not says:
        return HeaderCheck(None)
    if not prediction.in_distribution:
        if prediction.decided_by != "pixels" and prediction.reason:
            return HeaderCheck(False, prediction.reason)  # the header itself ruled every class out (verdict.py)
        return HeaderCheck(None, unrecognised_note(header, spec, says))
    facts = spec.facts(prediction.label)
    compared = compare(header, facts)
    if not compared:
        return HeaderCheck(None)
    looks = kind_of(facts)
    if all(compared.values()):
        return HeaderCheck(True, f"The header ({says}) agrees with the prediction ({looks}).")
    return HeaderCheck(False, f"The header says {says}; the image looks like {article(looks)} {looks}.")


def compare(header: DicomHeader, facts: ClassFacts) -> dict[str, bool]:
    """Per field that both name ("modality", "body_part"): whether the header agrees with the facts."""
    out = {}
    if header.modality_name and facts.modality:
        out["modality"] = header.modality_name.lower() == facts.modality.lower()
    parts, _ = header.named_anatomy
    if parts and facts.body_part:
        out["body_part"] = part_fits(facts.body_part, parts)
    return out


def part_fits(body_part: str, named: frozenset[str]) -> bool:
    """Whether a class's body part is among those a header names (an abdomen class also covers the pelvis, whose
    slices an abdomen CT includes)."""
    part = body_part.lower()
    return part in named or (part == "abdomen" and "pelvis" in named)


def unrecognised_note(header: DicomHeader, spec: TaskSpec, says: str) -> str:
    """The sentence for an image the model does not recognise: no verdict, but a header that names another
    kind than a single-kind task's own is worth saying."""
    task = ClassFacts(spec.modality, spec.body_part)
    if not all(compare(header, task).values()):
        kind = kind_of(task)
        return (f"The header says {says}, not the {kind} this model is for; the model does not recognise the "
                "image either, so it gives no label.")
    return f"The model does not recognise the image, so it gives no label to compare with the header ({says})."


def header_phrase(header: DicomHeader) -> str:
    """What the header says the image is, as the file writes it ("CT of the ABDOMEN"); "" when it names nothing
    we can compare (no known modality, no known body part)."""
    name = header.modality_name
    parts, where = header.named_anatomy
    if name is None and not parts:
        return ""
    part = None
    if parts:  # as the file writes it, else implied by the modality (mammography: breast) or named by a description
        part = header.body_part if where == "body part" else ", ".join(sorted(parts)).upper()
    if name and part:
        return f"{name} of the {part}"
    return name or f"the body part is {part}"


def kind_of(facts: ClassFacts) -> str:
    """The kind of image the facts describe, in plain words ("chest CT", "head MRI", "X-ray")."""
    return " ".join(word for word in (facts.body_part, facts.modality) if word)


def article(words: str) -> str:
    """'a' or 'an' before words ("an abdomen CT", "an X-ray", "an MRI", "a chest CT")."""
    return "an" if words[:1].lower() in tuple("aeiou") or words.startswith(("X-", "MR", "MRI")) else "a"


def header_report(source: ImageSource, spec: TaskSpec, prediction: Prediction) -> dict | None:
    """predict's `dicom` object for one file: its header fields with `agrees` and `note`; None if not a DICOM."""
    return header_dict(read_dicom_header(source), spec, prediction)


def header_dict(header: DicomHeader | None, spec: TaskSpec, prediction: Prediction) -> dict | None:
    """header_report for a header already read (None for a file that is not a DICOM)."""
    if header is None:
        return None
    check = check_header(header, spec, prediction)
    return {**header.to_dict(), "agrees": check.agrees, "note": check.note}
