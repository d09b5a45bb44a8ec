"""The home page's parts: what the app does, the shipped models' headline numbers, the data, the way around."""
from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from medimg_core import get_task
from medimg_core.data.datasets import dataset_path
from medimg_core.reports.story import DISCLAIMER, NEW_SOURCES, OTHER_KINDS, headline_numbers

from . import widgets
from .cache import model_card, shipped_tasks

HOME_URL_PATH = "home"  # url_path of the home page; a Page with it routes to the registered home (see home_page)
INTRO = (
    "medimg recognises what kind of medical image it is shown: drop an X-ray, CT or MRI image into **Predict** and "
    "it names the scan type, says how sure it is and shows where it looked (Grad-CAM). "
    "It also sorts paediatric chest X-rays into normal and pneumonia, and brain MRI slices by tumour type. "
    "The other pages show the data it learned from, how the models compare, how the three imaging methods differ, "
    "and the model's numbers and limits as a presentation with downloadable slides."
)
NOT_A_DEVICE = (f"**{DISCLAIMER}** It has not been validated for clinical use; never use it to make decisions about "
                "anyone's health.")
DESCRIPTIONS = {  # by url_path: every page of the navigation has one
    "predict": "Classify your own scans or random examples; see the confidence and the Grad-CAM heatmap.",
    "explorer": "Class counts, galleries, the embedding map and the validation errors of the dataset.",
    "models": "Every task's compared models side by side: accuracy, F1, AUC, size, CPU speed, training time, "
              "confusion matrices, training curves and the hyperparameter search.",
    "background": "How MRI, CT and X-ray make an image, radiation and contrast agents, typical uses; "
                  "real examples and what the model attends to.",
    "audit": "Open a finished `medimg audit` of a whole archive: what is in it, where DICOM headers disagree with "
             "the images, its studies, its copies and every file.",
    "presentation": "The project in six steps for a projector, with speaker notes and a one-click slide deck (PPTX).",
}
HEADLINE = ("Cross-validated accuracy", "Cross-validated AUC", "Validation accuracy", "Macro-F1", "Test accuracy",
            NEW_SOURCES, OTHER_KINDS, "Validation images")  # metrics shown per model, those its card has


def home_page() -> st.Page:
    """A Page that `st.page_link`/`st.switch_page` route to the app's home page.

    Page identity is the url_path, and streamlit_app.py registers its home function with HOME_URL_PATH, so this
    stand-in (never run itself) leads to the real home page from any other page.
    """
    return st.Page(lambda: None, title="Home", icon=":material/home:", url_path=HOME_URL_PATH)


def models_section() -> None:
    """One card per shipped model with its headline numbers, all read from its model card."""
    st.subheader("Shipped models")
    tasks = shipped_tasks()
    if not tasks:
        st.error("No trained model is installed. Train one with `medimg train --task modality`.")
        return
    for task in tasks:
        card = model_card(task)
        numbers = dict(headline_numbers(card))
        with st.container(border=True, key=f"home_model_{task}"):
            st.markdown(f"**{get_task(task).title}**")  # the task's title: an older card keeps an older one
            shown = [k for k in HEADLINE if k in numbers]
            for col, name in zip(st.columns(max(len(shown), 1)), shown):
                col.metric(name, numbers[name])
            st.caption(model_caption(card))


def model_caption(card: dict) -> str:
    """Classes, architecture and training facts of a model card, in one line."""
    m, tr = card.get("model", {}), card.get("training", {})
    parts = [f"{len(card.get('classes', []))} classes: {', '.join(card.get('classes', []))}"]
    if m.get("architecture"):
        parts.append(f"{m['architecture']} with {m.get('parameters', 0):,} parameters")
    if tr.get("created"):
        parts.append(f"trained {tr['created'][:10]}")
    if card.get("baseline", {}).get("model"):
        parts.append(f"baseline: {card['baseline']['model']}")
    if card.get("external", {}).get("folds"):
        parts.append(f"'unseen' numbers: {len(card['external']['folds'])}-fold cross-validation by dataset "
                     "(see the Models page)")
    return " · ".join(parts) + "."


def data_section() -> None:
    """Whether each shipped task's dataset is downloaded; the download (with progress) for a missing one."""
    st.subheader("Datasets")
    missing = []
    for task in shipped_tasks():
        spec = get_task(task)
        path = dataset_path(spec)
        if path is None:
            missing.append(spec)
            st.markdown(f":material/cloud_off: **{spec.source.filename}** ({spec.title}): not downloaded.")
        else:
            st.markdown(f":material/check_circle: **{spec.source.filename}** ({spec.title}): downloaded, "
                        f"{path.stat().st_size / 2**20:,.0f} MB in `{path.parent}`.")
    for spec in missing:
        widgets.offer_download(spec)
    st.caption("The images are used for examples, the explorer and the background page; prediction works without them.")


def links_section(pages: Sequence[st.Page]) -> None:
    """A link with one line of description to every other page of the app."""
    st.subheader("Where to go")
    others = [p for p in pages if p.url_path]  # the home page itself has the empty url_path
    for start in range(0, len(others), 2):
        for col, page in zip(st.columns(2), others[start : start + 2]):
            with col.container(border=True):
                st.page_link(page, label=f"**{page.title}**", icon=page.icon or None)
                if page.url_path in DESCRIPTIONS:
                    st.caption(DESCRIPTIONS[page.url_path])


def render(pages: Sequence[st.Page]) -> None:
    """The whole home page; `pages` are the app's navigation pages."""
    st.title("medimg: medical image classification studio")
    st.markdown(INTRO)
    st.warning(NOT_A_DEVICE, icon=":material/health_and_safety:")
    links_section(pages)
    models_section()
    data_section()
