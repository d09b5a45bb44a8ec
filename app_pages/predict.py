"""Predict page: drag in scans (or try an example) and see the label, the confidence and where the model looked."""
import streamlit as st

from medimg_app import predict_widgets, widgets
from medimg_app.cache import classifier, model_card, shipped_tasks, task_title, warm_models
from medimg_core import get_task
from medimg_core.reports.story import mean_sd


def model_summary(task: str) -> str:
    """One line about the shipped model, from its card."""
    card = model_card(task)
    v, cv = card.get("validation", {}), (card.get("crossval") or {}).get("own_validation", {})
    if "accuracy" in cv:
        return (f"Cross-validated accuracy {mean_sd(cv['accuracy'], True)} "
                f"({v.get('n', 0):,} images, each judged by a model that never saw it).")
    if "accuracy" not in v:
        return ""
    n = v.get("n")
    return f"Validation accuracy {v['accuracy']:.2%}" + (f" on {n:,} held-out images." if n else ".")


st.title("Predict")
tasks = shipped_tasks()
if not tasks:
    st.error("No trained model is installed. Train one with `medimg train --task modality`.")
    st.stop()

top = st.columns([2, 3], vertical_alignment="bottom")
task = top[0].selectbox("Task", tasks, format_func=task_title, key="task")
spec = get_task(task)
top[1].caption(f"{spec.description} {model_summary(task)} A teaching and demo tool, not a diagnostic device.")
try:
    clf = classifier(task)
except (OSError, ValueError) as err:
    st.error(f"The {task} model cannot be loaded: {err}")
    st.stop()
warm_models()  # the other tasks' models (second step, suggestions) load in the background, once

left, right = st.columns(2, gap="large")
with left:
    uploads = st.file_uploader(widgets.UPLOAD_LABEL, accept_multiple_files=True, key="uploads",
                               on_change=widgets.clear_example)
    tta = clf.can_flip and st.toggle("Average with the mirror image", key="tta",
                                     help="Test-time augmentation: the probabilities of the scan and of its left-right "
                                          "mirror, averaged. The 'not recognised' check uses the scan as it is.")
with right:
    widgets.example_picker(spec)

example = widgets.current_example(spec)
items = widgets.predict_items(clf, [example] if example else widgets.read_uploads(uploads), tta)
if example and uploads:
    st.caption("Showing the example; clear it to see your uploads again.")

if not items:
    st.info("Drop a scan above, or try an example, to see what the model makes of it.")
elif len(items) == 1:
    predict_widgets.show_detail(clf, items[0])
else:
    st.subheader(f"{len(items)} files")
    row = predict_widgets.results_table(items)
    if row is None:
        st.info("Choose a row (the box at its left) to see its detail and heatmap.")
    else:
        predict_widgets.show_detail(clf, items[row])
