"""Models page: for each task, the compared models side by side, read from their model cards."""
import streamlit as st

from medimg_app import cache
from medimg_app import models_widgets as mw
from medimg_app.widgets import EMPTY_CELL
from medimg_app import roc_widgets
from medimg_core import TASKS
from medimg_core.models.checkpoint import default_model_path, models_dir
from medimg_core.reports.compare import comparison_table, crossval_table, external_table, search_table, training_curves

st.title("Models")
st.caption("Every number here is read from the model cards in `assets/models/`: validation metrics (on each model's "
           "own held-out split, or out-of-fold for a cross-validated model: see 'numbers on'), test numbers where "
           "someone measured the model on data it never saw and recorded them, CPU latency of one image on the "
           "machine that measured it, and training time.")
task = st.selectbox("Task", list(TASKS), format_func=cache.task_title, key="models_task")
path = default_model_path(task)
try:
    cards, search = cache.compared_models(task, str(models_dir()), path.stat().st_mtime_ns if path.is_file() else 0)
    table, curves = comparison_table(cards), training_curves(cards)
    searched = search_table(search) if search else None
except (OSError, ValueError, KeyError, TypeError) as err:
    st.error(f"A model card or search record in `{models_dir()}` cannot be read ({type(err).__name__}: {err}). "
             "Retrain the model or remove the damaged file.")
    st.stop()
if not cards:
    st.info(f"No model of this task is installed yet. Train one with `medimg train --task {task}`.")
    st.stop()

st.subheader("Compared models")
mw.comparison_frame(table, key="models_table")
if not cards[0]["shipped"]:
    st.warning("No shipped model: these are comparison runs only.")
st.caption("Two-class tasks: accuracy, sensitivity and specificity at the operating threshold. "
           "Models on a subset were validated on their own (smaller) split, so compare them with care.")
if cards[0]["shipped"] and cards[0].get("test"):
    test = cards[0]["test"]
    st.caption(f"Test: {test['n']:,} images of {test['data']}, recorded by `{test['command']}` ({test['date']}).")

if cards[0]["shipped"] and cards[0].get("crossval"):
    st.subheader("Cross-validated estimate")
    cv = cards[0]["crossval"]
    st.caption(f"{cv['method']}. One split of a few hundred images says little; these are the numbers on this "
               "dataset with their spread, and the baseline was scored on the same folds. Images of other hospitals "
               "or years can do worse.")
    st.dataframe(crossval_table(cards[0]), hide_index=True, key="models_crossval_table", placeholder=EMPTY_CELL)
    mw.earlier_estimates(cards[0])

if cards[0]["shipped"] and cards[0].get("operating_threshold"):
    st.subheader("Operating point")
    roc_widgets.operating_point_section(cards[0])

st.subheader("On datasets it never saw")
st.caption("Scans from other hospitals are what users drag in, so the shipped model is judged on whole datasets held "
           "out of its training in turn (cross-validation by dataset), not only on a split of its own dataset.")
mw.external_section(cards[0] if cards[0]["shipped"] else {}, external_table(cards[0]))

st.subheader("Confusion matrices (validation)")
mw.confusion_grid(cards)

st.subheader("Training curves")
st.caption("Per epoch on the validation split; accuracy here is of the most probable class (two-class models are "
           "scored in the table at their chosen threshold instead). The kept weights are those of the 'best epoch' in the "
           "table: the last one for models trained with other sources or cross-validated.")
mw.curves_section(curves, key="models_curves")

st.subheader("Hyperparameter search")
if searched is None:
    st.info(f"No search recorded for this task. Run one with `medimg search --task {task} --vary lr=1e-3,3e-3 ...`.")
else:
    st.markdown(f"{search['strategy'].capitalize()}, {len(search['runs'])} runs on {search['images']:,} images "
                f"({search['validation']:,} for validation), best first. Command: `{search['command']}`")
    mw.comparison_frame(searched, key="models_search_table")
    with st.expander("Curves of the search runs"):
        runs = [{"name": r["label"], "training": {"history": r["history"]}} for r in search["runs"]]
        mw.curves_section(training_curves(runs), key="models_search_curves")
