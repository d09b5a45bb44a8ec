"""The Predict page's DICOM header panel: what the file says it is, and whether the model agrees.

The header is read in memory from the uploaded bytes by `medimg_core.io.dicom_header`, which reads an
allow-list of descriptive fields only: no identifying field ever reaches this module, the page,
a log or an export. The cross-check sentence comes from `medimg_core.inference.header_check`.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import streamlit as st

from medimg_core.io.dicom_header import DicomHeader
from medimg_core.inference.header_check import check_header
from medimg_core.tasks import TaskSpec

if TYPE_CHECKING:
    from medimg_core.inference.predict import Prediction

MISSING = "not in the header"


def header_rows(header: DicomHeader) -> list[tuple[str, str]]:
    """(field, value) pairs of the panel, in reading order; a field the file leaves out says so."""
    name = header.modality_name
    modality = f"{header.modality} ({name})" if header.modality and name and name != header.modality else header.modality
    spacing = header.pixel_spacing
    return [
        ("Modality", modality or MISSING),
        ("Body part examined", header.body_part or MISSING),
        ("Study description", header.study_description or MISSING),
        ("Series description", header.series_description or MISSING),
        ("View", header.view or MISSING),
        ("Pixel spacing", f"{spacing[0]:.3g} x {spacing[1]:.3g} mm" if spacing else MISSING),
        ("Size", f"{header.columns} x {header.rows} pixels" if header.rows and header.columns else MISSING),
        ("Window used", window_text(header)),
    ]


def window_text(header: DicomHeader) -> str:
    """How the image was windowed for display and for the model, in words."""
    w = header.window
    if w is None:
        return "its own range of values (0.5th to 99.5th percentile)"
    where = "stored in the file" if w.source == "file" else f"the default for {header.modality}"
    return f"centre {w.center:g}, width {w.width:g} ({where})"


def escape(text: str) -> str:
    """Text from a file shown literally in Markdown (no emphasis, links, maths, HTML or table breaks)."""
    return re.sub(r"([\\`*_\[\]<>|~$])", r"\\\1", text)


def header_panel(header: DicomHeader | None, spec: TaskSpec, prediction: Prediction | None) -> None:
    """Draw the header's fields and the cross-check (a warning when it disagrees); nothing for a non-DICOM."""
    if header is None:
        return
    with st.container(border=True, key="dicom_header"):
        st.markdown("**What the DICOM header says**")
        if prediction is not None:
            check = check_header(header, spec, prediction)
            if prediction.label is None and prediction.decided_by != "pixels":
                st.caption("What this header says took part in the verdict above (see why there).")
            elif check.agrees is False:
                st.warning(escape(check.note), icon=":material/report:")
            elif check.note:
                st.caption(escape(check.note))
        st.markdown("\n".join(["| Field | In the file |", "| --- | --- |",
                               *(f"| {field} | {escape(value)} |" for field, value in header_rows(header))]))
