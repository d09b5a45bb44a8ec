"""The app's caches: models once per process (cache_resource), derived data in cache_data."""
from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from medimg_core import TASKS, get_task
from medimg_core.models.checkpoint import default_model_path, read_card

if TYPE_CHECKING:
    from medimg_core.inference.predict import Classifier, Prediction

# torch threads for one request in the server. A 64-128 px image gains nothing from more (2-9 ms to predict
# on one thread), while several sessions at once, each with torch's pool of spinning threads, fight over the
# cores (one prediction took 2 ms on one thread and 240 ms on two, on 2 busy cores).
INFERENCE_THREADS = 1


def use_inference_threads() -> None:
    """Make the calling thread run torch on INFERENCE_THREADS threads (torch keeps the setting per thread)."""
    import torch

    if torch.get_num_threads() != INFERENCE_THREADS:
        torch.set_num_threads(INFERENCE_THREADS)


class SharedClassifier:
    """A shipped Classifier shared by every session of the server: predictions one at a time, heatmaps one per core.

    Eight sessions dropping a scan at the same moment would otherwise run the model eight times side by side,
    each with torch's own pool of threads, on the same cores. Here each model makes one prediction at a time
    (a few milliseconds each, so a queue of eight drains at once), and a prediction never waits behind a
    heatmap, which takes ten times longer: a heatmap has its own turn, at most one per CPU core. Each runs on
    INFERENCE_THREADS torch threads. Anything else (spec, classes, model_view, ood, infer over a whole
    dataset) is the wrapped Classifier's, not serialised.
    """

    def __init__(self, clf: Classifier):
        self.classifier = clf
        self.predicting = threading.Lock()
        self.explaining = threading.BoundedSemaphore(os.cpu_count() or 1)

    def __getattr__(self, name: str):
        """Attributes other than the serialised calls are the wrapped Classifier's."""
        if name in ("classifier", "predicting", "explaining"):  # not set yet (e.g. while copying): no recursion
            raise AttributeError(name)
        return getattr(self.classifier, name)

    def predict_batch(self, images: list[np.ndarray], tta: bool = False, headers=None) -> list[Prediction]:
        """Classifier.predict_batch (headers: each image's DICOM header or None), in this model's turn."""
        with self.predicting:
            use_inference_threads()
            return self.classifier.predict_batch(images, tta=tta, headers=headers)

    def predict(self, image: np.ndarray, tta: bool = False, header=None) -> Prediction:
        """Classifier.predict, in this model's turn."""
        return self.predict_batch([image], tta=tta, headers=[header])[0]

    def explain(self, image: np.ndarray, method: str = "Grad-CAM", target: str | None = None) -> np.ndarray:
        """Classifier.explain (a heatmap), once one of this model's heatmap turns is free."""
        with self.explaining:
            use_inference_threads()
            return self.classifier.explain(image, method=method, target=target)


@st.cache_resource(show_spinner="Loading the model...")
def classifier(task: str) -> SharedClassifier:
    """The task's shipped Classifier, loaded once per process and shared by all sessions (see SharedClassifier).

    One heatmap is computed at load time, so the first visitor's Grad-CAM is as fast as the rest.
    """
    from medimg_core.inference.predict import load_classifier

    use_inference_threads()
    clf = load_classifier(task)
    size = clf.spec.image_size
    clf.explain(np.zeros((size, size), np.float32))
    return SharedClassifier(clf)


@st.cache_resource(show_spinner=False)
def loaded_models(tasks: tuple[str, ...]) -> tuple[str, ...]:
    """Load the models of `tasks` into the cache; returns those that loaded (run by warm_models' thread).

    Being a cached function itself, it keeps `classifier`'s spinner away from this thread, which has no page.
    A model that fails is left out: the page that asks for it gets the error (errors are not cached) and says so.
    """
    loaded = []
    for task in tasks:
        try:
            classifier(task)
            loaded.append(task)
        except (OSError, ValueError):
            continue
    return tuple(loaded)


@st.cache_resource(show_spinner=False)
def warm_models() -> threading.Thread:
    """Load every shipped model in a background thread, once per server process (the Predict page calls this).

    A chest X-ray's second step and a flagged image's "another model knows it" use the other tasks' models;
    warmed at the first visit, they are ready before a class drops its first scans.
    """
    # Not a daemon (a thread started by a daemon thread, as a page's is, would be one by default): a process
    # that ends while torch loads a model in a daemon thread aborts ("terminate called without an active
    # exception"), so the process waits the few seconds the loading takes.
    thread = threading.Thread(target=loaded_models, args=(tuple(shipped_tasks()),), name="medimg-warm-models",
                              daemon=False)
    thread.start()
    return thread


def shipped_tasks() -> list[str]:
    """Tasks that have a model file, in registry order (new tasks appear when they ship)."""
    return [name for name in TASKS if default_model_path(name).is_file()]


@st.cache_data(show_spinner=False)
def model_card(task: str) -> dict:
    """The shipped model card of a task ({} if none)."""
    return read_card(default_model_path(task))


def task_title(task: str) -> str:
    """Human title of a task, for select boxes."""
    return get_task(task).title


EXAMPLES_PER_CLASS = 300  # example images kept in memory per class


@st.cache_resource(show_spinner="Reading the example images (once; up to a minute the first time)...", max_entries=4)
def example_pool(task: str, archive: str, stamp: int) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per class: up to EXAMPLES_PER_CLASS validation-split images (N x S x S uint8) and their file names.

    `archive` and `stamp` (its mtime) key the cache, so a fresh download is picked up.
    """
    from medimg_core.data.datasets import load_dataset
    from medimg_core.reports.class_examples import validation_pool

    return validation_pool(load_dataset(get_task(task), archive), model_card(task), EXAMPLES_PER_CLASS)


@st.cache_resource(show_spinner=False)
def shipped_examples(task: str) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per class: the example scans shipped in assets/examples (N x S x S uint8) and their names; {} for none."""
    from medimg_core.io.examples import read_examples

    return read_examples(get_task(task))


@st.cache_resource(show_spinner=False, max_entries=4)
def example_images(task: str, archive: str | None = None,
                   stamp: int | None = None) -> dict[str, tuple[np.ndarray, list[str]]]:
    """Per class: the shipped examples, then (with a downloaded `archive`) its EXAMPLES_PER_CLASS validation images.

    Without an archive these are the shipped examples alone, so "Try an example" works before any download.
    `archive` and `stamp` are `data_source(task)`, so a fresh download is picked up.
    """
    from medimg_core.io.examples import add_pool

    if archive is None:
        return shipped_examples(task)
    return add_pool(shipped_examples(task), example_pool(task, archive, stamp))


# --- Dataset explorer -------------------------------------------------------------------------


def data_source(task: str, path: str | None = None) -> tuple[str, int] | None:
    """(resolved dataset path, its mtime in ns) for cache keys; None when the task's data is not downloaded."""
    from pathlib import Path

    from medimg_core.data.datasets import dataset_path

    p = Path(path).expanduser() if path else dataset_path(get_task(task))
    if p is None or not p.exists():
        return None
    return str(p.resolve()), p.stat().st_mtime_ns


@st.cache_resource(show_spinner="Reading the dataset (a few seconds; minutes the very first time)...", max_entries=2)
def explorer_dataset(task: str, path: str, stamp: int):
    """The whole preprocessed dataset (modality: 53,059 x 64 x 64 uint8, about 220 MB), shared by all sessions.

    READ-ONLY: cache_resource hands every session the same arrays (cache_data would pickle
    220 MB on every access), so never modify `images`, `labels` or `files` in place.
    `stamp` (the file's mtime) keys the cache, so a fresh download is picked up.
    """
    from medimg_core.data.datasets import load_dataset

    ds = load_dataset(get_task(task), path)
    ds.images.setflags(write=False)
    ds.labels.setflags(write=False)
    return ds


@st.cache_data(show_spinner=False, max_entries=8)
def model_fingerprint(task: str, stamp: int) -> str:
    """Hash of the task's checkpoint bytes (`stamp`: the file's mtime, so a new model gets a new hash)."""
    from medimg_core.reports.embed import file_fingerprint

    return file_fingerprint(default_model_path(task))


@st.cache_resource(show_spinner="Loading the embedding map...", max_entries=4)
def stored_embedding(task: str, model_fp: str, data_fp: str | None):
    """The shipped or disk-cached embedding of a model (and dataset, or a pool around it); read-only, shared by sessions.

    Raises:
        LookupError: none is stored yet (exceptions are not cached, so a later computation is found).
    """
    from medimg_core.reports.embed import find_embedding

    emb = find_embedding(task, model_fp, data_fp)
    if emb is None:
        raise LookupError(f"no stored embedding of model {model_fp} on data {data_fp}")
    return emb


@st.cache_data(show_spinner="Summarising the dataset...", max_entries=4)
def dataset_summary(task: str, path: str, stamp: int, fingerprint: str) -> dict:
    """Counts per class and split, pixel histograms, per-image mean intensity and per-class mean images."""
    from medimg_core.reports.explore import class_split_counts, mean_images, mean_intensity, model_split, pixel_histograms

    ds = explorer_dataset(task, path, stamp)
    edges, hist = pixel_histograms(ds.images, ds.labels, len(ds.classes))
    return {
        "counts": class_split_counts(ds.labels, model_split(ds, model_card(task)), ds.classes),
        "edges": edges, "pixel_hist": hist, "mean_intensity": mean_intensity(ds.images),
        "mean_images": mean_images(ds.images, ds.labels, len(ds.classes)),
    }


@st.cache_data(show_spinner=False, max_entries=8)
def embedding_figure(task: str, model_fp: str, data_fp: str | None, method: str, colour_by: str, ring: bool):
    """The map's plotly figure as a dict, built once per choice (53k points take a second to build)."""
    from .explorer_map import embedding_figure as build

    return build(stored_embedding(task, model_fp, data_fp), method, colour_by, ring).to_dict()


@st.cache_data(show_spinner=False, max_entries=4)
def embedding_rows(task: str, model_fp: str, emb_data_fp: str | None, path: str, stamp: int):
    """Dataset row of each embedding point (-1 where the dataset lacks the file), N int64."""
    from medimg_core.reports.embed import align

    emb = stored_embedding(task, model_fp, emb_data_fp)
    return align(emb.files, explorer_dataset(task, path, stamp).files)


# --- Background page, presentation and slide deck ----------------------------------------------


def model_stamp(task: str) -> int:
    """mtime (ns) of a task's model file, so caches of derived figures follow a new model."""
    return default_model_path(task).stat().st_mtime_ns


@st.cache_data(show_spinner="Picking a typical example of each class (a few seconds, once)...", max_entries=4)
def class_examples(task: str, archive: str, stamp: int, model: int) -> list:
    """Per class: mean image, typical validation example, its prediction and Grad-CAM (a medimg_core ClassExample).

    `archive`/`stamp` (the dataset and its mtime) and `model` (model_stamp) key the cache.
    """
    from medimg_core.reports.class_examples import class_examples as build

    return build(classifier(task), example_pool(task, archive, stamp))


@st.cache_data(show_spinner="Counting the images per class...", max_entries=4)
def split_counts(task: str, archive: str, stamp: int):
    """Images per class and split (long table: class, split, images), with the shipped model's split."""
    from medimg_core.data.datasets import load_dataset
    from medimg_core.reports.explore import class_split_counts, model_split

    ds = load_dataset(get_task(task), archive)
    return class_split_counts(ds.labels, model_split(ds, model_card(task)), ds.classes)


@st.cache_data(show_spinner=False, max_entries=4)
def slide_deck(task: str, model: int, archive: str | None, stamp: int | None) -> bytes:
    """The presentation as PPTX bytes: numbers from the model cards, figures from the dataset when it is there."""
    from medimg_core.reports.deck import build_pptx, build_slides, counts_by_class

    examples, counts = ([], None) if archive is None else (
        class_examples(task, archive, stamp, model), counts_by_class(split_counts(task, archive, stamp)))
    others = {t: model_card(t) for t in shipped_tasks() if t != task}
    return build_pptx(build_slides(model_card(task), get_task(task), examples, counts, others or None,
                                   [spec for name, spec in TASKS.items() if name not in shipped_tasks()]))


# --- Models page ------------------------------------------------------------------------------


@st.cache_data(show_spinner=False, max_entries=8)
def compared_models(task: str, folder: str, stamp: int) -> tuple[list[dict], dict | None]:
    """The task's model cards (shipped first) and its search record; `folder` and `stamp` key a model change."""
    from medimg_core.reports.compare import compared_cards
    from medimg_core.training.search import read_search

    return compared_cards(task), read_search(task)
