"""The presentation page's parts: projector style, step controls, one renderer per story step.

The story itself (titles, text, speaker notes) is `medimg_core.reports.story.STEPS`, shared with the slide
export; each renderer draws its step with the other pages' components (widgets, predict_widgets,
explorer_widgets).
`examples_grid` is shared with the background page.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from medimg_core import get_task
from medimg_core.data.datasets import DataError
from medimg_core.reports.class_examples import ClassExample, cam_overlay, showcase, upscale
from medimg_core.reports.deck import PPTX_MIME
from medimg_core.reports.story import STEPS, facts, handover, headline_numbers, step_text
from medimg_core.tasks import TASKS, TaskSpec

from . import cache, predict_widgets, widgets
from . import explorer_widgets as ew
from .home import home_page

STEP_KEY = "presentation_step"  # 0-based index of the shown step (session state); the URL holds ?step=N (1-based)
TASK_KEY = "presentation_task"
PROJECTOR_CSS = """
<style>
/* presenting: nothing but the slide on screen */
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"], [data-testid="stExpandSidebarButton"],
[data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"] { display: none !important; }
[data-testid="stMainBlockContainer"] { padding: 1.2rem 3rem 3rem 3rem; max-width: 100%; }
/* projector-sized text (prose only: buttons and widget labels keep their size) */
[data-testid="stMain"] h1 { font-size: 3.1rem; padding-top: 0.4rem; }
.st-key-presentation_headline h3 { font-size: 2.0rem; color: #c03a1c; font-weight: 600; }
.st-key-presentation_body [data-testid="stMarkdown"] p,
.st-key-presentation_body [data-testid="stMarkdown"] li { font-size: 1.5rem; line-height: 1.45; }
.st-key-presentation_body [data-testid="stCaptionContainer"] p { font-size: 1.1rem; }
.st-key-presentation_body [data-testid="stMetricValue"] p { font-size: 2.8rem; font-weight: 600; }
.st-key-presentation_body [data-testid="stMetricLabel"] p { font-size: 1.2rem; }
.st-key-presentation_notes [data-testid="stMarkdown"] p { font-size: 1.15rem; }
</style>
"""


@dataclass
class Context:
    """What every step renderer gets: the task, its card, the dataset (if any) and the step's text."""

    task: str
    spec: TaskSpec
    card: dict
    source: tuple[str, int] | None  # (dataset path, mtime) or None when not downloaded
    points: list[str]

    def examples(self) -> list[ClassExample]:
        """Mean image, typical example and Grad-CAM per class ([] without the dataset)."""
        if self.source is None:
            return []
        try:
            return cache.class_examples(self.task, *self.source, cache.model_stamp(self.task))
        except DataError as err:
            st.error(f"The examples cannot be read: {err}")
            return []

    def classifier(self):
        return cache.classifier(self.task)


def projector_style() -> None:
    """Hide the navigation, header and toolbar, and enlarge the text (this page only)."""
    st.markdown(PROJECTOR_CSS, unsafe_allow_html=True)


def current_step() -> int:
    """The shown step's index: session state, first set from the URL's ?step=N."""
    if STEP_KEY not in st.session_state:
        try:
            wanted = int(st.query_params.get("step", 1)) - 1
        except ValueError:
            wanted = 0
        st.session_state[STEP_KEY] = min(max(wanted, 0), len(STEPS) - 1)
    return st.session_state[STEP_KEY]


def go(delta: int) -> None:
    """Button callback: move delta steps, within the story."""
    st.session_state[STEP_KEY] = min(max(st.session_state.get(STEP_KEY, 0) + delta, 0), len(STEPS) - 1)


def choose_task(tasks: Sequence[str]) -> str:
    """The presented task: the first shipped one, or the one chosen on the first step."""
    if st.session_state.get(TASK_KEY) not in tasks:
        st.session_state[TASK_KEY] = tasks[0]
    return st.session_state[TASK_KEY]


def task_picker(tasks: Sequence[str]) -> None:
    """On the first step only, and only with several shipped models: which one to present."""
    if len(tasks) > 1:
        st.selectbox("Model to present", tasks, index=list(tasks).index(st.session_state[TASK_KEY]),
                     format_func=cache.task_title, key="presentation_task_choice",
                     on_change=lambda: st.session_state.update({TASK_KEY: st.session_state["presentation_task_choice"]}))


def controls(index: int, task: str, source: tuple[str, int] | None) -> None:
    """The slim bar above the slide: where we are, back/next (arrow keys), the slide export, exit."""
    step = STEPS[index]
    bar = st.columns([5, 1.3, 1.3, 2.2, 1.1], vertical_alignment="center")
    bar[0].caption(f"Step {index + 1} of {len(STEPS)} · presenter {step.presenter} · "
                   + " › ".join(f"**{s.title}**" if i == index else s.title for i, s in enumerate(STEPS)))
    bar[1].button("Back", key="presentation_back", on_click=go, args=(-1,), disabled=index == 0,
                  icon=":material/arrow_back:", shortcut="Left", width="stretch")
    bar[2].button("Next", key="presentation_next", on_click=go, args=(1,), disabled=index == len(STEPS) - 1,
                  icon=":material/arrow_forward:", shortcut="Right", width="stretch", type="primary")
    archive, stamp = source or (None, None)
    bar[3].download_button("Slides (PPTX)", partial(cache.slide_deck, task, cache.model_stamp(task), archive, stamp),
                           file_name=f"medimg-{task}-presentation.pptx", mime=PPTX_MIME, key="presentation_deck",
                           on_click="ignore", icon=":material/download:", width="stretch",
                           help="The steps' figures and numbers as a slide deck, with the speaker notes.")
    bar[4].page_link(home_page(), label="Exit", icon=":material/close:")


def bullets(points: Sequence[str]) -> None:
    """The step's points as a large bullet list."""
    if points:
        st.markdown("\n".join(f"- {p}" for p in points))


def speaker_notes(index: int, notes: str) -> None:
    """Collapsed speaker notes, with the hand-over to the other presenter when the next step is theirs."""
    with st.container(key="presentation_notes"):
        with st.expander(f"Speaker notes · presenter {STEPS[index].presenter}", icon=":material/record_voice_over:"):
            st.markdown(notes)
            if handover(index):
                st.markdown(f"**{handover(index)}**")


# --- Shared with the background page -----------------------------------------------------------


def examples_grid(examples: Sequence[ClassExample], with_mean: bool = True, with_cam: bool = True,
                  size: int = 256) -> None:
    """One column per class: mean image, typical example and its Grad-CAM overlay, with captions."""
    cols = st.columns(len(examples))
    for col, e in zip(cols, examples):
        with col:
            st.markdown(f"**{e.name}**" + (f" · {e.modality}" if e.modality else ""))
            if with_mean:
                st.image(upscale(e.mean, size), caption=f"Mean of {e.n} validation images", width="stretch", clamp=True)
            st.image(upscale(e.image, size), caption="Typical example", width="stretch", clamp=True)
            if with_cam:
                st.image(cam_overlay(e, size), width="stretch",
                         caption=f"{e.method}: predicted {e.label} ({confidence_text(e.confidence)})")


def confidence_text(p: float) -> str:
    """As on the result card: 'over 99.9%' rather than a rounded 100%."""
    return "over 99.9%" if p > 0.999 else f"{p:.1%}"


# --- One renderer per step ---------------------------------------------------------------------


def render_question(ctx: Context) -> None:
    examples = ctx.examples()
    left, right = st.columns([5, 6], gap="large")
    with left:
        bullets(ctx.points)
    if examples:
        with right:
            for start in range(0, len(examples), 3):
                for col, e in zip(st.columns(3), examples[start : start + 3]):
                    col.image(upscale(e.image, 256), width="stretch", caption=f"{e.name} · {e.modality}".rstrip(" ·"))


def render_data(ctx: Context) -> None:
    left, right = st.columns([5, 6], gap="large")
    with left:
        bullets(ctx.points)
    with right:
        if ctx.source is not None:
            try:
                fig = ew.counts_figure(cache.split_counts(ctx.task, *ctx.source))
                st.plotly_chart(fig.update_layout(font=dict(size=18), height=480), key="presentation_counts",
                                config={"displayModeBar": False})
                return
            except DataError as err:
                st.error(f"The dataset cannot be read: {err}")
        per_class = ctx.card.get("validation", {}).get("per_class", {})
        if per_class:
            st.markdown("**Validation images per class** (from the model card)")
            st.dataframe(pd.DataFrame({"class": list(per_class), "images": [v.get("support") for v in per_class.values()]}),
                         hide_index=True, placeholder=widgets.EMPTY_CELL)
        widgets.offer_download(ctx.spec)


def render_model(ctx: Context) -> None:
    numbers = headline_numbers(ctx.card)[:5]
    for col, (name, value) in zip(st.columns(len(numbers) or 1), numbers):
        col.metric(name, value)
    left, right = st.columns([5, 4], gap="large")
    with left:
        bullets(ctx.points)
    v = ctx.card.get("validation", {})
    if v.get("confusion_matrix"):
        with right:
            fig = ew.confusion_figure(np.asarray(v["confusion_matrix"]), v.get("classes", ctx.spec.classes))
            st.plotly_chart(fig.update_layout(font=dict(size=17)), key="presentation_confusion",
                            config={"displayModeBar": False})
    others = [t for t in cache.shipped_tasks() if t != ctx.task]
    if others:
        rows = [{"model": get_task(t).title, **dict(headline_numbers(cache.model_card(t)))}
                for t in [ctx.task, *others]]
        st.dataframe(pd.DataFrame(rows), hide_index=True, placeholder=widgets.EMPTY_CELL)


def live_item(ctx: Context, examples: Sequence[ClassExample]) -> widgets.Item | None:
    """The example picked on the live step (or on Predict), else the typical example with the most contrast."""
    item = widgets.current_example(ctx.spec)
    if item is None and examples:
        e = showcase(examples)
        item = widgets.Item(f"Typical {e.name} example: {e.file}", image=e.image, truth=e.name)
    return item


def render_live(ctx: Context) -> None:
    examples = ctx.examples()
    left, right = st.columns([4, 5], gap="large")
    with left:
        if ctx.source is not None:
            widgets.example_picker(ctx.spec)
            item = live_item(ctx, examples)
        else:
            st.caption("The dataset is not downloaded: drop a scan to predict it.")
            upload = st.file_uploader(widgets.UPLOAD_LABEL, key="presentation_upload")
            uploads = widgets.read_uploads([upload] if upload else [])
            item = uploads[0] if uploads else None
    if item is None or item.error:
        with right:
            if item is not None:
                st.error(f"**{item.name}** cannot be used: {item.error}")
            bullets(ctx.points)
        return
    widgets.predict_items(ctx.classifier(), [item])
    with left:
        predict_widgets.result_card(item, ctx.spec.classes)
        st.caption(item.name)
    with right:
        inner = st.columns([2, 3])
        inner[0].image(upscale(ctx.classifier().model_view(item.image), 256, smooth=False),
                       width="stretch", caption="As the model sees it")
        with inner[1]:
            predict_widgets.probability_chart(item.prediction, key="presentation_probabilities")
        bullets(ctx.points)


def render_explain(ctx: Context) -> None:
    examples = ctx.examples()
    bullets(ctx.points)
    item = live_item(ctx, examples)
    if item is not None:
        widgets.predict_items(ctx.classifier(), [item])
        st.caption(f"The live example: {item.name}")
        predict_widgets.cam_panel(ctx.classifier(), item)
    if examples:
        st.markdown("#### Every class: mean image, typical example and its Grad-CAM")
        examples_grid(examples)


def render_limits(ctx: Context) -> None:
    bullets(ctx.points)
    ood = ctx.card.get("ood", {})
    if isinstance(ood.get("validation_flag_rate"), (int, float)):
        st.caption(f"Out-of-distribution check: {ood.get('method', '')}; threshold at the "
                   f"{ood.get('quantile', 0):.1%} quantile of validation scores.")


RENDERERS: dict[str, Callable[[Context], None]] = {
    "question": render_question, "data": render_data, "model": render_model, "live": render_live,
    "explain": render_explain, "limits": render_limits,
}


def show(tasks: Sequence[str]) -> None:
    """The whole presentation page (tasks: the shipped ones, at least one)."""
    projector_style()
    index = current_step()
    st.query_params["step"] = str(index + 1)
    task = choose_task(tasks)
    spec, card = get_task(task), cache.model_card(task)
    source = cache.data_source(task)
    controls(index, task, source)
    step = STEPS[index]
    counts = None
    if step.key == "data" and source is not None:
        try:
            table = cache.split_counts(task, *source)
            counts = table.groupby("class", sort=False)["images"].sum().to_dict()
        except DataError:
            counts = None
    upcoming = [t for name, t in TASKS.items() if name not in tasks]
    headline, points, notes = step_text(step, facts(card, spec, counts, upcoming))
    with st.container(key="presentation_body"):
        st.title(step.title)
        with st.container(key="presentation_headline"):
            st.markdown(f"### {headline}")
        if index == 0:
            task_picker(tasks)
        RENDERERS[step.key](Context(task, spec, card, source, points))
    speaker_notes(index, notes)
