"""Audit page components: opening an audit folder (cached), the verdict counts, the crosstab, the studies, the
disagreements with thumbnails and the filtered file table.

The page reads what `medimg audit` wrote; it never runs an audit. A thumbnail is read from the file's own path
(or its zip archive) in memory, only while the page draws it, and the page says so when the file is gone.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from medimg_core.inference.audit_summary import (FILES, FLAGS, HEADER_DISAGREES, PARTS, VERDICTS, Audit,
                                                 duplicates_sentence, kind_column, read_audit)
from medimg_core.io.imaging import ImageReadError, read_image, to_uint8

from .widgets import EMPTY_CELL

GALLERY = 12  # disagreements shown with a thumbnail
TABLE_COLUMNS = ["path", "verdict", "label", "confidence", "closest", "modality", "body_part", "header_note", "study",
                 "identical", "group", "group_size", "flags", "format", "size", "error"]


def audit_stamp(folder: str) -> int:
    """mtime (ns) of an audit's results, so the cache follows an audit that is still being written; 0 if none."""
    base = Path(folder).expanduser()
    for path in (base / FILES, base / PARTS):
        if path.exists():
            return path.stat().st_mtime_ns
    return 0


@st.cache_data(show_spinner="Reading the audit...", max_entries=4)
def load_audit(folder: str, stamp: int) -> Audit:
    """The audit in a folder (see audit_summary.read_audit); `stamp` (audit_stamp) keys the cache."""
    return read_audit(folder)


def summary_section(summary: dict) -> None:
    """What the audit found at a glance: files per verdict, flags, duplicates, and whether it ran to the end."""
    if summary.get("complete") is False:
        st.warning(f"This audit was stopped before the end: {summary['rows']:,} of {summary.get('files') or '?'} "
                   "files were audited, and the numbers below are of those.")
    cells = st.columns(len(VERDICTS))
    for cell, (verdict, n) in zip(cells, summary["verdicts"].items()):
        cell.metric(verdict, f"{n:,}")
    flags, dup = summary["flags"], summary["duplicates"]
    mixed = sum(1 for s in summary["studies"] if s["agrees"] is False)
    st.markdown(f"**{flags[HEADER_DISAGREES]:,}** files whose DICOM header disagrees with the image; "
                f"**{len(summary['studies']):,}** studies, **{mixed:,}** whose images disagree; "
                f"{duplicates_sentence(dup, bold=True)}.")
    if summary.get("seconds"):
        st.caption(f"{summary.get('files', summary['rows']):,} files, task {summary.get('task')} "
                   f"({summary.get('model')}), {summary.get('workers')} workers, {summary['seconds']:.0f} s on "
                   f"{summary.get('engine')}. Studies are named by a salted hash of their StudyInstanceUID: the UID "
                   "itself was never stored.")


def crosstab_frame(summary: dict) -> pd.DataFrame:
    """The summary's header modality x predicted kind table as a DataFrame."""
    table = summary["crosstab"]
    return pd.DataFrame(table["counts"], index=pd.Index(table["header"], name="header modality"),
                        columns=table["predicted"])


def thumbnail(row: pd.Series) -> np.ndarray | str:
    """The file's picture (uint8, read in memory from its path or zip archive), or the sentence saying why not."""
    from medimg_core.inference.audit_files import item_bytes

    archive = row["archive"] if isinstance(row["archive"], str) else None
    item = {"path": row["path"], "archive": archive, "member": row["member"] if archive else None}
    if not Path(archive or row["path"]).is_file():
        return f"The file is no longer at {archive or row['path']}."
    try:
        return to_uint8(read_image(item_bytes(item)))
    except ImageReadError as err:
        return f"The file cannot be shown: {err}"


def disagreement_gallery(rows: pd.DataFrame) -> None:
    """The first GALLERY files whose header disagrees with the image: thumbnail, name and the check's sentence."""
    found = rows[rows["flags"].map(lambda fl: HEADER_DISAGREES in fl)]
    if found.empty:
        st.success("No DICOM header disagrees with its image.")
        return
    if len(found) > GALLERY:
        st.caption(f"The first {GALLERY} of {len(found):,}; filter the table below by the flag for all of them.")
    cells = st.columns(4)
    for k, (_, row) in enumerate(found.head(GALLERY).iterrows()):
        with cells[k % 4]:
            picture = thumbnail(row)
            if isinstance(picture, str):
                st.info(picture)
            else:
                st.image(picture, width=160)
            st.caption(f"`{Path(row['path']).name}`: {row['header_note']}")


def filter_choices(rows: pd.DataFrame) -> tuple[list[str], list[str], list[str]]:
    """The verdicts, kinds and flags the user picks for the file table (empty = all)."""
    left, middle, right = st.columns(3)
    verdicts = left.multiselect("Verdict", VERDICTS, key="audit_verdicts", placeholder="all verdicts")
    kinds = middle.multiselect("Kind", sorted(kind_column(rows).unique()), key="audit_kinds", placeholder="all kinds")
    flags = right.multiselect("Flag", FLAGS, key="audit_flags", placeholder="any flag or none",
                              help="Files with every chosen flag: header disagrees (DICOM header vs image), "
                                   "identical file (another file of the audit has the same bytes), copy (in a group "
                                   "of copies or near copies), study disagrees (its study's images do not agree).")
    return verdicts, kinds, flags


def files_table(rows: pd.DataFrame, total: int) -> None:
    """The chosen files, one row each (flags joined for reading)."""
    shown = rows[[c for c in TABLE_COLUMNS if c in rows]].assign(flags=rows["flags"].map(", ".join))
    st.caption(f"{len(rows):,} of {total:,} files.")
    st.dataframe(shown, hide_index=True, key="audit_files", placeholder=EMPTY_CELL, column_config={
        "confidence": st.column_config.NumberColumn("confidence", format="percent"),
        "size": st.column_config.NumberColumn("size (bytes)", format="localized"),
        "identical": st.column_config.NumberColumn("same bytes", help="Files of the audit with exactly this file's "
                                                   "bytes, itself included.")})
