"""Widgets shared by several pages and light enough for the home page: uploads and examples read into Items, the
dataset download, the example picker.

Nothing here imports torch or Grad-CAM (a test checks it), so the home page paints fast; the drawing of results
and heatmaps is in `predict_widgets`. Uploaded bytes are decoded in memory only (never written to disk or logged).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from medimg_core import ImageReadError, read_image
from medimg_core.data.datasets import DataError, download
from medimg_core.io.dicom_header import DicomHeader, read_dicom_header
from medimg_core.io.imaging import SUPPORTED
from medimg_core.tasks import TaskSpec

from .cache import data_source, example_images, shipped_examples

if TYPE_CHECKING:
    from medimg_core.inference.predict import Classifier, Prediction

LOW_CONFIDENCE = 0.6  # below this calibrated confidence the page names the label with a warning (flag: "low confidence")
EMPTY_CELL = "–"  # what every table of the app shows in a cell without a value (st.dataframe's placeholder)
HEATMAP_CAPTION = (
    "**What the heatmap shows:** the parts of the image that most raised the model's score for the chosen "
    "class (red = strong, blue = weak), measured on a coarser grid inside the network and smoothed up to the "
    "image size. **What it does not prove:** that the model is right, that it uses medically meaningful "
    "features, or that anything abnormal is there. It shows where the evidence came from, not why; different "
    "methods can disagree."
)
UPLOAD_LABEL = f"Drop one or several scans here ({SUPPORTED})"
SHIPPED_CREDIT = ("Built-in examples: MedNIST images (CC BY-SA 4.0; TCIA, RSNA Bone Age Challenge, NIH Chest X-ray; "
                  "made available by Dr. Bradley J. Erickson, Mayo Clinic), see assets/examples/README.md.")
NO_SHIPPED_EXAMPLES = ("No example scans of this task ship with the app: the app bundles only a few MedNIST images "
                       "(for the scan-type task) and never images of other datasets, so this task's examples need "
                       "its dataset.")


@dataclass
class Item:
    """One image on the page (an upload or an example) with its prediction or its read error."""

    name: str
    image: np.ndarray | None = None
    prediction: Prediction | None = None
    error: str | None = None
    truth: str | None = None
    header: DicomHeader | None = None  # an uploaded DICOM's descriptive header (never an identifying field)


def read_uploads(files: list) -> list[Item]:
    """Decode uploaded files in memory; an unreadable file becomes an Item with a plain-words error."""
    items = []
    for f in files or []:
        try:
            data = f.getvalue()
            items.append(Item(f.name, image=read_image(data), header=read_dicom_header(data)))
        except ImageReadError as err:
            items.append(Item(f.name, error=str(err)))
        except Exception as err:  # noqa: BLE001 - never a stack trace on the page
            items.append(Item(f.name, error=f"This file could not be read ({type(err).__name__})."))
    return items


def predict_items(clf: Classifier, items: list[Item], tta: bool = False) -> list[Item]:
    """Fill in the predictions of the readable items, in one batch (tta: average each with its mirror image)."""
    ok = [it for it in items if it.image is not None]
    if ok:
        preds = clf.predict_batch([it.image for it in ok], tta=tta, headers=[it.header for it in ok])
        for it, pred in zip(ok, preds):
            it.prediction = pred
    return items


def flag(pred: Prediction) -> str:
    """Why a prediction must not be shown as a confident label ('' when it can)."""
    if not pred.in_distribution:
        return "unfamiliar image"
    if pred.confidence < LOW_CONFIDENCE:
        return "low confidence"
    return ""


def clear_example() -> None:
    """Forget the chosen example (UI state), so the uploads show again."""
    st.session_state.pop("example", None)


def offer_download(spec: TaskSpec, note: str = "Examples come from the {file} dataset, which is not downloaded yet.") -> None:
    """Say the dataset is missing (`note`, with {file} for its file name) and offer its download with a progress bar."""
    st.info(note.format(file=spec.source.filename))
    if not st.button(f"Download {spec.source.filename}", key=f"download_dataset_{spec.name}",
                     icon=":material/cloud_download:"):
        return
    bar = st.progress(0.0, text="Starting the download...")

    def progress(done: int, total: int) -> None:
        if total:
            bar.progress(min(done / total, 1.0), text=f"Downloaded {done / 2**20:.0f} of {total / 2**20:.0f} MB")
        else:
            bar.progress(0.0, text=f"Downloaded {done / 2**20:.0f} MB")

    try:
        download(spec, progress=progress)
    except DataError as err:
        hint = "" if "--from" in str(err) else (
            f" Without internet, get the file elsewhere and run `medimg download {spec.name} --from PATH`.")
        st.error(f"The download failed. {err}{hint}", icon=":material/cloud_off:")
        return
    bar.progress(1.0, text="Download complete")
    st.rerun()


def examples(spec: TaskSpec) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per class: the shipped examples and, when the dataset is downloaded, its validation images (read once)."""
    return example_images(spec.name, *(data_source(spec.name) or (None, None)))


def example_picker(spec: TaskSpec) -> None:
    """'Try an example': one click picks a random image of the chosen class, shipped or from the downloaded dataset."""
    st.markdown("**Try an example**")
    shipped, downloaded = shipped_examples(spec.name), data_source(spec.name) is not None
    if not shipped and not downloaded:
        st.caption(NO_SHIPPED_EXAMPLES)
        offer_download(spec)
        return
    c1, c2 = st.columns(2, vertical_alignment="bottom")
    chosen = c1.selectbox("Class", spec.classes if downloaded else [c for c in spec.classes if c in shipped],
                          key="example_class")
    if c2.button("Random example", key="example_button", icon=":material/casino:", width="stretch"):
        try:
            images, _ = examples(spec).get(chosen, ((), []))
        except DataError as err:
            st.error(f"The examples cannot be read: {err}")
            return
        if len(images):
            pick = int(np.random.default_rng().integers(len(images)))
            st.session_state["example"] = {"task": spec.name, "class": chosen, "index": pick}
    if st.session_state.get("example"):
        st.button("Clear the example", key="clear_example", on_click=clear_example, type="tertiary")
    if shipped:
        st.caption(SHIPPED_CREDIT)
    if not downloaded:
        offer_download(spec, "More examples (hundreds a class) come from the {file} dataset, which is not downloaded yet.")


def current_example(spec: TaskSpec) -> Item | None:
    """The example picked for this task, as an Item (None when there is none)."""
    ex = st.session_state.get("example")
    if not ex or ex.get("task") != spec.name:
        return None
    try:
        images, files = examples(spec)[ex["class"]]
        image = images[ex["index"]].astype(np.float32) / 255.0
    except (DataError, KeyError, IndexError):
        return None
    return Item(f"Example: {files[ex['index']]}", image=image, truth=ex["class"])
