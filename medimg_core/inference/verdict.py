"""One verdict from everything a file says: the picture, the model's reading of it, and the DICOM header.

`decide` gives an image its label (None: not recognised), who decided ("pixels", "header" or "both"), the reason
when it is not recognised, and one sentence saying what decided. Neither source overrides the other blindly:
headers are often wrong (Body Part Examined in about 15% of images, Güld et al. 2002) and models meet images
unlike their training set, so the rule is explicit and each step says which source spoke:

1. No scan, no label: a picture that `picture_check` refuses (blank, noise, a pattern) is not recognised,
   whatever its header says (the pixels decide).
2. A modality that no class of the task has (ultrasound, PET, mammography ... for a task of CT, MRI and X-ray
   classes) makes it not recognised.
3. Body parts (BodyPartExamined, else the words of the study and series descriptions) that no class of that
   modality shows (an MRI of the knee, a CT of the neck) make it not recognised.
4. A modality that contradicts the class the image points to (the header says MRI, the image looks like a chest
   CT) gives the class that agrees with the header when the image supports it (it is the image's second guess
   with at least SUPPORT probability) and either the model recognises the image or the header's modality and
   body part together single out that class (MRI of the BREAST); else not recognised.
5. A body part that contradicts the class leaves the image's label, with a warning (the header check's sentence).
6. An image the model does not recognise stays so, unless the header singles out one class by its modality and
   body part together and that class is the image's closest: then the two sources name it together.
A header that names nothing comparable (no modality we know, no body part) leaves the verdict to the pixels.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..io.dicom_header import DicomHeader
from .header_check import article, header_phrase, kind_of, part_fits
from ..tasks import ClassFacts, TaskSpec

if TYPE_CHECKING:
    from .prediction import Prediction

SUPPORT = 0.10  # the least probability with which the image must support the class its header names (step 4)
DECIDERS = ("pixels", "header", "both")


@dataclass(frozen=True)
class Verdict:
    """label: a class, or None when not recognised; decided_by: one of DECIDERS; reason: why it is not recognised
    (None when labelled); basis: one sentence saying what decided."""

    label: str | None
    decided_by: str
    reason: str | None
    basis: str


@dataclass(frozen=True)
class Reading:
    """What the pixels say: each class's probability, the class the image points to (closest), whether the model
    recognises the image, the model's P(other) (None without a rejection output) and the picture check's refusal."""

    probs: Mapping[str, float]
    closest: str
    recognised: bool
    p_other: float | None = None
    not_scan: str | None = None


def decide(spec: TaskSpec, reading: Reading, header: DicomHeader | None = None) -> Verdict:
    """The verdict on one image of a task from its pixels and, for a DICOM, its header (the rule of this module)."""
    if reading.not_scan:
        return Verdict(None, "pixels", reading.not_scan, "Decided by the picture itself, before the model.")
    if header is None:
        return pixels_alone(spec, reading)
    said = header_phrase(header)
    if not said:
        return pixels_alone(spec, reading, "; its DICOM header names no modality or body part to compare")
    if not any(spec.facts(c).modality or spec.facts(c).body_part for c in spec.classes):
        return pixels_alone(spec, reading, f"; its DICOM header says {said}, but this task's classes name no modality "
                                           "or body part to compare it with")
    modality = header.modality_name
    parts = header.named_anatomy[0]
    refusal = header_refusal(spec, modality, parts, said)
    if refusal:
        return refused_by_header(spec, reading, refusal)
    fitting = [c for c in spec.classes if fits(spec, c, modality, parts)]
    if not modality_fits(spec, reading.closest, modality):
        return header_switch(spec, reading, fitting, modality, bool(parts), said)
    if reading.recognised:
        if parts and not part_fits_class(spec, reading.closest, parts):
            return Verdict(reading.closest, "pixels", None,
                           f"Decided by the image; its DICOM header says {said}, which does not fit "
                           f"{article(plain(spec, reading.closest))} {plain(spec, reading.closest)} (headers are "
                           "sometimes wrong).")
        return Verdict(reading.closest, "both", None, f"The image and its DICOM header ({said}) agree.")
    if modality and parts and fitting == [reading.closest]:
        name = plain(spec, reading.closest)
        return Verdict(reading.closest, "both", None,
                       f"The model finds the image unfamiliar, but its closest class, {name}, is what its DICOM header "
                       f"says ({said}), so the two together name it.")
    return pixels_alone(spec, reading, f"; its DICOM header ({said}) cannot make an unfamiliar image "
                                       "recognised")


def pixels_alone(spec: TaskSpec, reading: Reading, about_header: str = "") -> Verdict:
    """The verdict of the image alone (no header, or one that says nothing to compare)."""
    if reading.recognised:
        return Verdict(reading.closest, "pixels", None,
                       f"Decided by the image{about_header}." if about_header else "Decided by the image alone.")
    return Verdict(None, "pixels", unfamiliar(spec, reading), f"Decided by the image{about_header}.")


def unfamiliar(spec: TaskSpec, reading: Reading) -> str:
    """Why the model does not recognise an image, in one sentence."""
    kinds = (f"{kind_of(ClassFacts(spec.modality, spec.body_part))} images" if spec.modality
             else ", ".join(spec.classes))
    if reading.p_other is not None and reading.p_other >= 0.5:
        return (f"The {spec.name} model finds it {reading.p_other:.0%} likely to be none of the kinds of image it "
                f"knows ({kinds}).")
    return f"It is unlike the images the {spec.name} model was trained on ({kinds})."


def header_refusal(spec: TaskSpec, modality: str | None, parts: frozenset[str], said: str) -> str | None:
    """Steps 2 and 3: the reason when the header names a modality, or body parts, that no class has; else None."""
    known = sorted({spec.facts(c).modality for c in spec.classes})
    if modality and "" not in known and modality.lower() not in {m.lower() for m in known}:
        return f"Its DICOM header says {said}; the {spec.name} model knows only {join(known)} images."
    same = [c for c in spec.classes if modality_fits(spec, c, modality)]
    shown = sorted({spec.facts(c).body_part for c in same})
    if parts and same and "" not in shown and not any(part_fits(p, parts) for p in shown):
        which = f"{modality} classes" if modality and len(same) < len(spec.classes) else "classes"
        return f"Its DICOM header says {said}; the {spec.name} model's {which} show only the {join(shown)}."
    return None


def refused_by_header(spec: TaskSpec, reading: Reading, reason: str) -> Verdict:
    """Not recognised because of the header: decided by it alone, or by both when the model does not recognise the
    image either."""
    if not reading.recognised:
        return Verdict(None, "both", reason, "Decided by the DICOM header and the image: the model does not recognise "
                                             "the image either.")
    name, p = plain(spec, reading.closest), reading.probs[reading.closest]
    return Verdict(None, "header", reason,
                   f"Decided by the DICOM header: the image alone looks like {article(name)} {name} ({p:.0%}).")


def header_switch(spec: TaskSpec, reading: Reading, fitting: list[str], modality: str, with_part: bool,
                  said: str) -> Verdict:
    """Step 4: the header's modality contradicts the image's class; the class that agrees with the header (fitting)
    when the image supports it, else not recognised. with_part: the header names a body part too."""
    ranked = sorted(spec.classes, key=lambda c: -reading.probs[c])
    first, p_first = plain(spec, reading.closest), reading.probs[reading.closest]
    best = max(fitting, key=lambda c: reading.probs[c]) if fitting else None
    named = len(fitting) == 1 and with_part  # the header's modality and body part single out one class
    supported = best is not None and ranked.index(best) <= 1 and reading.probs[best] >= SUPPORT
    if supported and (reading.recognised or named):
        return Verdict(best, "header", None,
                       f"Decided by the DICOM header: it says {said}, which {article(first)} {first} (the image's "
                       f"first guess, {p_first:.0%}) is not; {plain(spec, best)}, the image's next guess "
                       f"({reading.probs[best]:.0%}), is.")
    others = ", ".join(f"{plain(spec, c)} {reading.probs[c]:.1%}" for c in fitting) or "none"
    reason = (f"Its DICOM header says {said}, but the image looks like {article(first)} {first} ({p_first:.0%}), not "
              f"like any {modality} class this model knows ({others}).")
    return refused_by_header(spec, reading, reason)


def fits(spec: TaskSpec, name: str, modality: str | None, parts: frozenset[str]) -> bool:
    """Whether a class agrees with everything the header names (its modality, and one of its body parts)."""
    return modality_fits(spec, name, modality) and (not parts or part_fits_class(spec, name, parts))


def modality_fits(spec: TaskSpec, name: str, modality: str | None) -> bool:
    """Whether a class can have the header's modality (True when either says none)."""
    own = spec.facts(name).modality
    return not modality or not own or own.lower() == modality.lower()


def part_fits_class(spec: TaskSpec, name: str, parts: frozenset[str]) -> bool:
    """Whether a class shows one of the body parts the header names (True when the class says none)."""
    own = spec.facts(name).body_part
    return not own or part_fits(own, parts)


def plain(spec: TaskSpec, name: str) -> str:
    """A class as a kind of image in plain words: "chest CT", or for a task of one kind "chest X-ray (normal)"."""
    if spec.modality:
        return f"{kind_of(ClassFacts(spec.modality, spec.body_part))} ({name})"
    return spec.facts(name).plain_name or name


def join(words: list[str]) -> str:
    """'CT, MRI and X-ray'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def label_text(prediction: Prediction, positive_class: str | None = None) -> str:
    """A prediction's verdict in words, as the command line and the Predict page say it: "HeadCT (97.3%)"; for a
    screening task "pneumonia: 27% probability, above the 25% screening threshold"; "not recognised, so no label
    (closest: Hand)" (no probability: the closest class of an image the model does not recognise is no finding)."""
    if prediction.label is None:
        return f"not recognised, so no label (closest: {prediction.closest})"
    if positive_class and prediction.threshold is not None and positive_class in prediction.probabilities:
        p, threshold = prediction.probabilities[positive_class], prediction.threshold
        if prediction.label == positive_class:
            return f"{positive_class}: {p:.0%} probability, above the {threshold:.0%} screening threshold"
        return (f"{prediction.label}: {p:.0%} probability of {positive_class}, below the {threshold:.0%} screening "
                "threshold")
    return f"{prediction.label} ({prediction.confidence:.1%})"
