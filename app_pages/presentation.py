"""Presentation mode: the project's story in fixed steps for a projector, with speaker notes and a slide export."""
import streamlit as st

from medimg_app.cache import shipped_tasks
from medimg_app.presentation import show

tasks = shipped_tasks()
if not tasks:
    st.title("Presentation")
    st.error("No trained model is installed. Train one with `medimg train --task modality`.")
    st.stop()
show(tasks)
