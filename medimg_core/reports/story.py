"""The group presentation's story: its steps, their text, and the numbers they quote from a model card.

The story is told in fixed steps (`STEPS`): each has a title, a headline, bullet points and
speaker notes written as templates whose `{placeholders}` are filled from a model card
(`facts`), so every number on a slide or on the presentation page is read from the card. The
app's presentation page and the slide deck (`medimg_core.reports.deck`) both tell it. Text only: this
module imports neither torch nor an imaging library, so the app's home page stays light.
"""
from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..tasks import SOURCES, TaskSpec

DISCLAIMER = "A teaching and demo tool, not a diagnostic device."

@dataclass(frozen=True)
class Step:
    """One step of the presentation; text fields are templates filled by `facts` (see `fill`)."""

    key: str
    title: str
    headline: str
    points: tuple[str, ...]
    notes: str
    presenter: int  # 1 or 2: who speaks in this step


STEPS: tuple[Step, ...] = (
    Step(
        key="question",
        title="The question",
        headline="{question}",
        points=(
            "Input: one grayscale medical image. Output: one of {n_classes} labels, how sure the model is, "
            "and a heatmap of where it looked.",
            "The labels: {class_list}.",
            "A small, well-defined problem for learning how an image classifier is built, measured and "
            "explained, and where it fails.",
            DISCLAIMER,
        ),
        notes=(
            "Presenter 1. Open with the question on the slide and show one typical image of each class. "
            "Point out that the classes differ in both the scanner (CT, MRI, X-ray) and the body part. "
            "Say early that this is a teaching tool: it recognises the kind of scan, it does not diagnose anything."
        ),
        presenter=1,
    ),
    Step(
        key="data",
        title="The data",
        headline="{images} public images ({image_sources}), {n_classes} classes",
        points=(
            "Licence and origin: {licence}.",
            "{other_sources}",
            "Every image is read, made grayscale and {fit_words} to {input_size} pixels: the same code at "
            "training and at prediction time.",
            "Split: {split}.",
            "{duplicates} exact duplicate images found; each duplicate group stays on one side of the split.",
            "Images per class: from {smallest_count} ({smallest_class}) to {largest_count}.",
        ),
        notes=(
            "Presenter 1. Walk through where the images come from and how many there are per class (the bar chart). "
            "Explain why duplicates must not be split between training and validation: otherwise the model is "
            "tested on images it has already seen and the numbers look better than they are."
        ),
        presenter=1,
    ),
    Step(
        key="model",
        title="The model and its numbers",
        headline="{accuracy} validation accuracy on {n_val} held-out images",
        points=(
            "A small convolutional network ({architecture}, {parameters} parameters, {size_mb} MB), trained for "
            "{epochs} epochs on {hardware}.",
            "Macro-F1 {macro_f1}, ROC AUC {auc}; {errors} of {n_val} validation images misclassified.",
            "Probabilities calibrated by {calibration}: expected calibration error {ece}.",
            "Baseline {baseline_model}: {baseline_accuracy} accuracy, so the task is easy even for a linear model.",
        ),
        notes=(
            "Presenter 1. Read the headline number, then the confusion matrix: "
            "which classes are confused, if any. Compare with the simple baseline to show how easy this task is. "
            "Then: 'Now my colleague will show the model live.'"
        ),
        presenter=1,
    ),
    Step(
        key="live",
        title="A live prediction",
        headline="Pick an example and see the label, the confidence and every class's probability",
        points=(
            "The probabilities are calibrated: a confidence of 90% should be right about 9 times in 10.",
            "Images unlike the training data are flagged as unfamiliar ({ood_method}); "
            "{ood_rate} of validation images are flagged.",
            "Low-confidence or unfamiliar images are reported as 'unknown' instead of a label.",
        ),
        notes=(
            "Presenter 2. Click 'Random example' for two or three classes and read out the label and the "
            "confidence. If there is time, drag in a photo that is not a scan (from the Predict page) to show the "
            "'unknown' answer. If the live demo fails, the slide deck has a saved example."
        ),
        presenter=2,
    ),
    Step(
        key="explain",
        title="How it decides",
        headline="Grad-CAM shows which parts of an image raised the score of a class",
        points=(
            "The heatmap comes from the last convolutional block ({cam_layer}), a {input_size} image seen through "
            "a coarse grid, smoothed up to the image size.",
            "Mean images show what is typical of each class: overall shape and brightness already separate "
            "most classes.",
            "A heatmap shows where the evidence came from, not why; it does not prove that the model uses "
            "medically meaningful features.",
        ),
        notes=(
            "Presenter 2. Show the heatmap of the live example, then the grid: mean image, a typical example and "
            "its Grad-CAM per class. Ask the audience what they would look at to tell the classes apart, and "
            "compare with the heatmaps."
        ),
        presenter=2,
    ),
    Step(
        key="limits",
        title="Limitations and next steps",
        headline="High accuracy on a clean benchmark is not clinical performance",
        points=(
            "{independent_check}",
            "Images are shrunk to {input_size} pixels, and the classes differ in body part as well as scanner, "
            "which makes the task easier than real-world triage.",
            "It recognises the type of scan, not disease. " + DISCLAIMER,
            "Next tasks: {next_tasks}.",
            "Then: test on images from other hospitals and scanners, and ask radiographers what would make it useful.",
        ),
        notes=(
            "Presenter 2. Be honest about what the numbers do and do not mean. End with the next steps and invite "
            "questions; the slides with all figures and numbers are exported from the app's presentation page."
        ),
        presenter=2,
    ),
)


def fill(template: str, facts: Mapping[str, str]) -> str | None:
    """The template with its {placeholders} filled, or None when a placeholder has no value."""
    names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
    if any(facts.get(n) in (None, "") for n in names):
        return None
    return template.format_map(facts)


def step_text(step: Step, facts: Mapping[str, str]) -> tuple[str, list[str], str]:
    """(headline, bullet points, speaker notes) of a step, filled from facts; points lacking a value are dropped."""
    headline = fill(step.headline, facts) or step.title
    points = [p for p in (fill(t, facts) for t in step.points) if p]
    notes = fill(step.notes, facts) or step.notes
    return headline, points, notes


def handover(index: int) -> str:
    """'Hand over to presenter N' when the next step's presenter differs ('' otherwise)."""
    if index + 1 < len(STEPS) and STEPS[index + 1].presenter != STEPS[index].presenter:
        return f"Hand over to presenter {STEPS[index + 1].presenter}."
    return ""


# --- Numbers from the model card ---------------------------------------------------------------


def pct(x: float, digits: int = 2) -> str:
    """0.99981 -> '99.98%'."""
    return f"{x:.{digits}%}"


def mean_sd(entry: Mapping | None, percent: bool) -> str | None:
    """{'mean', 'std'} over folds as '95.1% ± 0.8%' (percent) or '0.990 ± 0.003' (None when absent)."""
    if not entry:
        return None
    if percent:
        return f"{pct(entry['mean'], 1)} ± {pct(entry['std'], 1)}"
    return f"{entry['mean']:.3f} ± {entry['std']:.3f}"


NEW_SOURCES = "Unseen datasets: right, not flagged"  # scans of the task's kinds from datasets held out in training
OTHER_KINDS = "Unseen other kinds: flagged"  # images of other kinds from datasets held out in training


def headline_numbers(card: Mapping) -> list[tuple[str, str]]:
    """(name, value) of a model card's headline numbers, in a fixed order; only those the card has."""
    rows: list[tuple[str, str]] = []
    v = card.get("validation", {}) or {}
    cv = (card.get("crossval") or {}).get("own_validation") or {}
    for key, name, percent in (("accuracy", "Cross-validated accuracy", True), ("auc", "Cross-validated AUC", False),
                               ("sensitivity", "Sensitivity (cross-validated)", True),
                               ("specificity", "Specificity (cross-validated)", True)):
        if key in cv:
            rows.append((name, mean_sd(cv[key], percent)))
    pooled_n = ((card.get("crossval") or {}).get("own_pooled") or {}).get("n", v.get("n"))  # out-of-fold images
    if cv and isinstance(pooled_n, int):
        rows.append(("Images, each judged by a model that never saw it", f"{pooled_n:,}"))
    for key, name, form in () if cv else (
        ("accuracy", "Validation accuracy", pct),
        ("sensitivity", "Sensitivity", pct),
        ("specificity", "Specificity", pct),
        ("macro_f1", "Macro-F1", "{:.4f}".format),
        ("auc", "ROC AUC", "{:.4f}".format),
        ("ece", "Calibration error (ECE)", "{:.4f}".format),
        ("n", "Validation images", "{:,}".format),
    ):
        if isinstance(v.get(key), (int, float)):
            rows.append((name, form(v[key])))
    t = card.get("test", {}) or {}
    if isinstance(t.get("accuracy"), (int, float)):
        rows.append(("Test accuracy", pct(t["accuracy"])))
    held = (card.get("external", {}) or {}).get("held_out", {}) or {}
    for key, name in (("right_not_flagged", NEW_SOURCES), ("foreign_flagged", OTHER_KINDS)):
        if isinstance(held.get(key), (int, float)):
            rows.append((name, pct(held[key], 1)))
    b = card.get("baseline", {}) or {}
    if isinstance(b.get("accuracy"), (int, float)):
        rows.append(("Baseline accuracy", pct(b["accuracy"])))
    m = card.get("model", {}) or {}
    if isinstance(m.get("parameters"), int):
        rows.append(("Parameters", f"{m['parameters']:,}"))
    return rows


def facts(card: Mapping, spec: TaskSpec, counts: Mapping[str, int] | None = None,
          other_tasks: Sequence[TaskSpec] = ()) -> dict[str, str]:
    """Every template value of the story, as display strings read from the model card.

    Args:
        card: the task's model card; spec: the task; counts: images per class in the dataset (optional);
        other_tasks: tasks named as next steps (e.g. those without a shipped model).
    """
    def section(name: str) -> dict:
        return card.get(name) or {}

    v, d, m, tr = section("validation"), section("data"), section("model"), section("training")
    ood, b = section("ood"), section("baseline")
    classes = tuple(card.get("classes") or spec.classes)
    source = d.get("source", spec.source.filename)
    out = dict(
        question=spec.description or spec.title, title=spec.title, n_classes=str(len(classes)),
        class_list=", ".join(_class_label(spec, c) for c in classes),
        source=source, licence=next((s.licence for s in SOURCES.values() if s.filename == source), spec.source.licence),
        architecture=m.get("architecture", spec.architecture), cam_layer=m.get("cam_layer", ""),
        hardware=training_hardware(card), image_sources=_image_sources(d, source), other_sources=_other_sources(d),
        fit_words=_fit_words(card, spec), split=_split_words(d), independent_check=independent_check(card),
        calibration=section("calibration").get("method", "").replace(" on validation", ""),
        ood_method=_short_ood(ood.get("method", "")), baseline_model=b.get("model", "").split(" (")[0],
        next_tasks="; ".join(t.title[:1].lower() + t.title[1:] for t in other_tasks),
    )
    size = (card.get("input", {}) or {}).get("size") or [spec.image_size, spec.image_size]
    out["input_size"] = f"{size[1]} × {size[0]}"
    for key, value, form in (
        ("images", d.get("images"), "{:,}"), ("train", d.get("train"), "{:,}"),
        ("validation", d.get("validation"), "{:,}"), ("duplicates", d.get("duplicate_images"), "{:,}"),
        ("parameters", m.get("parameters"), "{:,}"), ("size_mb", m.get("size_mb"), "{:.2f}"),
        ("epochs", (tr.get("config") or {}).get("epochs"), "{}"), ("n_val", v.get("n"), "{:,}"),
        ("macro_f1", v.get("macro_f1"), "{:.4f}"), ("auc", v.get("auc"), "{:.4f}"), ("ece", v.get("ece"), "{:.4f}"),
    ):
        if isinstance(value, (int, float)):
            out[key] = form.format(value)
    for key, value in (("accuracy", v.get("accuracy")), ("baseline_accuracy", b.get("accuracy")),
                       ("ood_rate", ood.get("validation_flag_rate"))):
        if isinstance(value, (int, float)):
            out[key] = pct(value, 1 if key == "ood_rate" else 2)
    cm = v.get("confusion_matrix")
    if cm:
        cm = np.asarray(cm)
        out["errors"] = f"{int(cm.sum() - np.trace(cm)):,}"
    if counts:
        small, large = min(counts, key=counts.get), max(counts, key=counts.get)
        out.update(smallest_class=small, smallest_count=f"{counts[small]:,}", largest_class=large,
                   largest_count=f"{counts[large]:,}")
    return out


def training_hardware(card: Mapping) -> str:
    """Where a model trained, from its card: 'one NVIDIA H200 GPU' or '2 CPU cores' ('' when the card does not say)."""
    tr = card.get("training") or {}
    parts = [p.strip() for p in (tr.get("hardware") or "").split(",") if p.strip()]
    if tr.get("device") == "cuda":
        gpu = parts[-1] if len(parts) >= 4 and not parts[-1].startswith(("torch", "trained")) else ""
        return f"one {gpu} GPU" if gpu else "a GPU"
    return next((p for p in parts if p.endswith("CPU cores")), ", ".join(parts))


def _own_counts(d: Mapping) -> tuple[int, dict]:
    """(images of the task's own dataset, {other dataset: {label: images}}) from the card's data section.

    The own dataset is the first of `sources` (a pool puts the task's own images first)."""
    own = sum(v for v in (d.get("train"), d.get("validation")) if isinstance(v, int))
    others: dict[str, dict[str, int]] = {}
    for origin, parts in list((d.get("sources") or {}).items())[1:]:
        for counts in parts.values():
            for label, n in counts.items():
                others.setdefault(origin, {})[label] = others.get(origin, {}).get(label, 0) + n
    return own, others


def _image_sources(d: Mapping, source: str) -> str:
    """'53,059 from MedNIST.tar.gz and 1,563 from 56 other datasets' (or 'all from <source>')."""
    own, others = _own_counts(d)
    rest = d.get("images", own) - own if isinstance(d.get("images"), int) else 0
    if not own or rest <= 0:
        return f"all from {source}"
    return f"{own:,} from {source} and {rest:,} from {len(others)} other datasets"


def _other_sources(d: Mapping) -> str:
    """What the other datasets add: scans of the task's kinds, and images of other kinds it learns to flag ('' if none)."""
    _, others = _own_counts(d)
    same = {o: sum(n for lab, n in c.items() if lab != "other") for o, c in others.items()}
    other = {o: c.get("other", 0) for o, c in others.items()}
    parts = []
    if sum(same.values()):
        parts.append(f"{sum(same.values()):,} scans of its kinds from {sum(1 for n in same.values() if n)} other datasets")
    if sum(other.values()):
        parts.append(f"{sum(other.values()):,} images of other kinds from {sum(1 for n in other.values() if n)} "
                     "datasets, which it learns to flag as not recognised")
    return ("Besides its own dataset: " + " and ".join(parts) + ".") if parts else ""


def _split_words(d: Mapping) -> str:
    """The card's split: 'N images for training, M held out for validation', or its own words (cross-validation)."""
    train, val = d.get("train"), d.get("validation")
    if isinstance(train, int) and isinstance(val, int) and val > 0:
        return f"{train:,} images for training, {val:,} held out for validation"
    return d.get("split", "")


def _fit_words(card: Mapping, spec: TaskSpec) -> str:
    """How an image becomes the square input, as the card (else the task) says: 'letterboxed' or 'squashed'."""
    how = ((card.get("input") or {}).get("preprocessing") or "").lower()
    fit = "squash" if "squash" in how else "letterbox" if "letterbox" in how else spec.fit
    return "squashed (aspect ratio not kept)" if fit == "squash" else "letterboxed"


def independent_check(card: Mapping) -> str:
    """What the card says about data the model never trained on: its test section, its held-out datasets, or that
    there is none (then its numbers come from the collections it was trained on)."""
    parts = []
    test = card.get("test") or {}
    if isinstance(test.get("accuracy"), (int, float)):
        parts.append(f"on a test set ({test.get('data', 'recorded')}): {pct(test['accuracy'])} accuracy of {test.get('n', 0):,} images")
    held = (card.get("external") or {}).get("held_out") or {}
    rows = held.get("per_dataset") or {}
    in_kind = sum(1 for r in rows.values() if r.get("in_kind"))
    foreign = sum(1 for r in rows.values() if r.get("foreign"))
    if isinstance(held.get("right_not_flagged"), (int, float)):
        parts.append(f"{pct(held['right_not_flagged'], 1)} of {held.get('in_kind', 0):,} scans of its kinds from "
                     f"{in_kind} datasets it never saw named right and not flagged")
    if isinstance(held.get("foreign_flagged"), (int, float)):
        parts.append(f"{pct(held['foreign_flagged'], 1)} of {held.get('foreign', 0):,} images of other kinds from "
                     f"{foreign} unseen datasets flagged")
    if not parts:
        return "Validation images come from the same collections as the training images: no external test set yet."
    return "Checked beyond its own validation split: " + "; ".join(parts) + "."


def _class_label(spec: TaskSpec, name: str) -> str:
    """A class with its modality when the task's classes differ in modality ('ChestCT (CT)')."""
    modality = spec.facts(name).modality
    return f"{name} ({modality})" if modality and name in spec.class_facts and not spec.modality else name


def _short_ood(method: str) -> str:
    if "Mahalanobis" not in method:
        return method
    own = " or its own 'other' output (learned from images of other kinds)" if "other" in method else ""
    return "distance from the training images in the model's feature space" + own
