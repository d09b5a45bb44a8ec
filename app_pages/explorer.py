"""Dataset explorer page: class distributions, galleries, the embedding map and the validation errors."""
import streamlit as st

from medimg_app import cache
from medimg_app import explorer_map as em
from medimg_app import explorer_widgets as ew
from medimg_core.models.checkpoint import default_model_path
from medimg_core.data.datasets import DataError

VIEWS = ["Embedding map", "Summary", "Gallery", "Validation errors"]

st.title("Dataset explorer")
tasks = cache.shipped_tasks()
if not tasks:
    st.error("No trained model is installed. Train one with `medimg train --task modality`.")
    st.stop()

top = st.columns([2, 3], vertical_alignment="bottom")
task = top[0].selectbox("Task", tasks, format_func=cache.task_title, key="explorer_task")
typed = top[1].text_input("Dataset", key="explorer_data", placeholder="the downloaded dataset (or type a local path)",
                          help="An archive, a folder of <class>/<image> files or a MedMNIST .npz; blank: the downloaded one.")
model_fp = cache.model_fingerprint(task, default_model_path(task).stat().st_mtime_ns)

ds, source = None, cache.data_source(task, typed.strip() or None)
if source is None:
    where = f"`{typed}` does not exist" if typed.strip() else "The dataset is not downloaded"
    st.info(f"{where}: the map below is the shipped one (numbers only). To see images, download the data with "
            f"`medimg download {task}` (or from the Predict page).")
else:
    try:
        ds = cache.explorer_dataset(task, *source)
    except DataError as err:
        st.error(f"The dataset cannot be read: {err}")

try:
    emb_key = (task, model_fp, ds.fingerprint if ds is not None else None)
    emb = cache.stored_embedding(*emb_key)
except LookupError:
    emb, emb_key = None, None
rows = cache.embedding_rows(*emb_key, *source) if emb is not None and ds is not None else None

views = st.tabs(VIEWS, key="explorer_view", on_change="rerun", bind="query-params")
with views[0]:
    if views[0].open:
        if emb is None:
            if ds is not None:
                ew.compute_offer(task, *source, len(ds))
            else:
                st.warning("No embedding map is shipped for this model; download the dataset to compute one.")
        else:
            method, colour, ring = em.map_controls()
            method = method if method in emb.coords else next(iter(emb.coords))
            left, right = st.columns([3, 2], gap="medium")
            with left:
                event = st.plotly_chart(cache.embedding_figure(*emb_key, method, colour, ring), key="explorer_map",
                                        on_select="rerun", selection_mode=("points", "box", "lasso"),
                                        config={"displaylogo": False, "scrollZoom": True})
                st.caption(em.map_caption(emb, method, colour))
            with right:
                ew.selection_panel(emb, em.selected_indices(event), ds, rows)
with views[1]:
    if views[1].open:
        if ds is None:
            st.info("The summary needs the dataset.")
        else:
            ew.summary_section(ds, cache.dataset_summary(task, *source, ds.fingerprint))
with views[2]:
    if views[2].open:
        if ds is None:
            st.info("The gallery needs the dataset.")
        else:
            ew.gallery_section(ds, emb, rows)
with views[3]:
    if views[3].open:
        if emb is None:
            st.info("The validation view needs the embedding map (predictions for every image): see the first tab.")
        else:
            ew.validation_section(emb, ds, rows, cache.model_card(task))
