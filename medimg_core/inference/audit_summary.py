"""What an audit holds: the row schema, the verdicts, the summary, and reading it all back.

`medimg audit` (audit.py, on Ray Data) writes one Parquet row per input file into <out>/parts/ while it
runs, each part complete before it appears (written under a temporary name, then renamed). `finish_audit`
then adds what needs every row at once (near-duplicate groups, per-study agreement, flags), writes
<out>/files.parquet and <out>/summary.json, and removes the parts. `read_audit` opens either form (a
stopped audit's parts are finished in memory), so the app's Audit page and a notebook read the same thing.

This module does not import Ray: reading results needs only pyarrow and pandas. Studies appear only as the
salted hash the audit gave them; no identifying DICOM field is ever a column.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..data.duplicates import DEFAULT_MAX_DISTANCE, hash_groups

FILES, SUMMARY, PARTS = "files.parquet", "summary.json", "parts"
LIST_LIMIT = 1000  # longest list (disagreements, not medical, errors) kept in summary.json; files.parquet has all

RECOGNISED, NOT_RECOGNISED, NOT_AN_IMAGE, UNREADABLE = "recognised", "not recognised", "not an image", "unreadable"
VERDICTS = (RECOGNISED, NOT_RECOGNISED, NOT_AN_IMAGE, UNREADABLE)
HEADER_DISAGREES, IDENTICAL, COPY, STUDY_DISAGREES = "header disagrees", "identical file", "copy", "study disagrees"
FLAGS = (HEADER_DISAGREES, IDENTICAL, COPY, STUDY_DISAGREES)
NO_HEADER = "no DICOM header"

ROW_SCHEMA = pa.schema([
    ("path", pa.string()), ("archive", pa.string()), ("member", pa.string()), ("size", pa.int64()),
    ("format", pa.string()), ("error", pa.string()), ("verdict", pa.string()), ("label", pa.string()),
    ("closest", pa.string()), ("confidence", pa.float64()), ("in_distribution", pa.bool_()),
    ("rejection_score", pa.float64()), ("other_probability", pa.float64()), ("decided_by", pa.string()),
    ("reason", pa.string()), ("modality", pa.string()), ("body_part", pa.string()),
    ("study_description", pa.string()), ("series_description", pa.string()), ("view", pa.string()),
    ("spacing_row_mm", pa.float64()), ("spacing_col_mm", pa.float64()), ("header_rows", pa.int64()),
    ("header_columns", pa.int64()), ("header_agrees", pa.bool_()), ("header_note", pa.string()),
    ("study", pa.string()), ("phash", pa.string()), ("digest", pa.string()),
])
# files.parquet: the rows with their near-duplicate group and its size (null without an image), how many files
# of the audit have the same bytes (null without bytes), and their flags
FILES_SCHEMA = pa.schema([*ROW_SCHEMA, ("group", pa.int64()), ("group_size", pa.int64()), ("identical", pa.int64()),
                          ("flags", pa.list_(pa.string()))])
NULLABLE = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}  # pandas types that keep nulls as <NA>


class AuditError(ValueError):
    """An audit that cannot be run or read; the message says why in one sentence."""


@dataclass
class Audit:
    """A finished or stopped audit: one row per file (ROW_SCHEMA + group, group_size, flags), its studies and
    its summary (summary["complete"] is False for a stopped one)."""

    folder: Path
    rows: pd.DataFrame
    studies: pd.DataFrame
    summary: dict


def write_part(rows: pa.Table, folder: Path, index: int) -> Path:
    """Write one part of an audit's rows; the file appears only once complete (a temporary name, then renamed)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"part-{index:06d}.parquet"
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(rows.cast(ROW_SCHEMA), tmp)
    os.replace(tmp, path)
    return path


def read_parts(folder: Path) -> tuple[pd.DataFrame, int]:
    """The rows of every readable part in a folder, and how many parts could not be read."""
    tables, damaged = [], 0
    for path in sorted(folder.glob("part-*.parquet")):
        try:
            tables.append(pq.read_table(path, schema=ROW_SCHEMA))
        except (OSError, pa.ArrowException):
            damaged += 1
    table = pa.concat_tables(tables) if tables else ROW_SCHEMA.empty_table()
    return to_frame(table), damaged


def to_frame(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as pandas, integers and booleans with missing values kept as <NA> (not float NaN)."""
    return table.to_pandas(types_mapper=NULLABLE.get)


def is_false(column: pd.Series) -> pd.Series:
    """Where a nullable boolean column is False (missing counts as not False)."""
    return column.eq(False).fillna(False).astype(bool)


def finish_rows(rows: pd.DataFrame, max_distance: int = DEFAULT_MAX_DISTANCE) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Rows sorted by path with their near-duplicate group and flags added, and the table of studies."""
    rows = rows.sort_values("path", kind="stable").reset_index(drop=True)
    rows = add_identical(add_groups(rows, max_distance))
    studies = study_table(rows)
    mixed = set(studies.loc[studies["agrees"].map(lambda a: a is False), "study"])
    flags = []
    for disagrees, same, size, study in zip(is_false(rows["header_agrees"]), rows["identical"].fillna(0),
                                            rows["group_size"].fillna(0), rows["study"]):
        found = ((HEADER_DISAGREES, disagrees), (IDENTICAL, same > 1), (COPY, size > 1),
                 (STUDY_DISAGREES, study in mixed))
        flags.append([flag for flag, on in found if on])
    return rows.assign(flags=flags), studies


def add_groups(rows: pd.DataFrame, max_distance: int) -> pd.DataFrame:
    """Near-duplicate group id (0, 1, ... in order of first appearance) and group size of every row with a
    perceptual hash (pHash within max_distance bits, directly or through a chain)."""
    has = rows["phash"].notna().to_numpy()
    hashes = np.array([int(h, 16) for h in rows.loc[has, "phash"]], dtype=np.uint64)
    ids = hash_groups(hashes, max_distance)  # exact copies (distance 0) and near copies alike
    group = pd.array([pd.NA] * len(rows), dtype="Int64")
    size = pd.array([pd.NA] * len(rows), dtype="Int64")
    group[has], size[has] = ids, np.bincount(ids)[ids] if len(ids) else ids
    return rows.assign(group=group, group_size=size)


def add_identical(rows: pd.DataFrame) -> pd.DataFrame:
    """How many files of the audit have each row's exact bytes (its salted digest), itself included; <NA> for a
    row without bytes (and for every row of an audit made before digests were kept)."""
    counts = rows.groupby("digest")["digest"].transform("size")
    return rows.assign(identical=pd.array(counts.where(rows["digest"].notna()), dtype="Int64"))


def study_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per study (its salted hash): files, predicted kinds, header modalities, header disagreements, and
    whether its images agree (one predicted kind, no header disagreement; None when none is recognised)."""
    out = []
    for study, part in rows[rows["study"].notna()].groupby("study", sort=True):
        kinds = sorted(part.loc[part["verdict"] == RECOGNISED, "label"].dropna().unique())
        disagreeing = int(is_false(part["header_agrees"]).sum())
        out.append({"study": study, "files": len(part), "kinds": ", ".join(kinds),
                    "header_modalities": ", ".join(sorted(part["modality"].dropna().unique())),
                    "header_disagreements": disagreeing,
                    "agrees": None if not kinds else (len(kinds) == 1 and disagreeing == 0)})
    columns = ["study", "files", "kinds", "header_modalities", "header_disagreements", "agrees"]
    return pd.DataFrame(out, columns=columns).astype({"agrees": object})


def kind_column(rows: pd.DataFrame) -> pd.Series:
    """What each file is, for tables: its predicted kind when recognised, else its verdict."""
    return rows["label"].where(rows["verdict"] == RECOGNISED, rows["verdict"]).fillna(rows["verdict"])


def filter_rows(rows: pd.DataFrame, verdicts: list[str] | None = None, kinds: list[str] | None = None,
                flags: list[str] | None = None) -> pd.DataFrame:
    """The rows with one of the verdicts, one of the kinds (kind_column) and every one of the flags; an empty or
    None choice keeps all."""
    keep = pd.Series(True, index=rows.index)
    if verdicts:
        keep &= rows["verdict"].isin(verdicts)
    if kinds:
        keep &= kind_column(rows).isin(kinds)
    for flag in flags or ():
        keep &= rows["flags"].map(lambda fl, flag=flag: flag in fl)
    return rows[keep]


def crosstab(rows: pd.DataFrame) -> pd.DataFrame:
    """Files per header modality (as the DICOM writes it; NO_HEADER for other files) x predicted kind."""
    if rows.empty:
        return pd.DataFrame()
    header = rows["modality"].fillna(NO_HEADER).rename("header modality")
    return pd.crosstab(header, kind_column(rows).rename("predicted"))


def build_summary(rows: pd.DataFrame, studies: pd.DataFrame, meta: dict) -> dict:
    """The summary: counts per verdict and flag, the crosstab, studies, duplicates, and the lists (first LIST_LIMIT)."""
    table = crosstab(rows)
    sizes = rows.drop_duplicates("group")["group_size"].dropna() if len(rows) else pd.Series(dtype="Int64")
    disagreements = rows[is_false(rows["header_agrees"])]
    not_medical = rows[not_medical_rows(rows)]
    errors = rows[rows["error"].notna()]
    identical = rows["identical"].fillna(0) > 1
    return {
        **meta,
        "rows": len(rows),
        "verdicts": {v: int((rows["verdict"] == v).sum()) for v in VERDICTS},
        "flags": {f: int(rows["flags"].map(lambda fl, f=f: f in fl).sum()) for f in FLAGS},
        "crosstab": {"header": table.index.tolist(), "predicted": table.columns.tolist(),
                     "counts": table.to_numpy().tolist()},
        "duplicates": {"max_distance": meta.get("max_distance", DEFAULT_MAX_DISTANCE),
                       "groups": int((sizes > 1).sum()), "files": int(sizes[sizes > 1].sum()),
                       "identical_groups": int(rows.loc[identical, "digest"].nunique()),
                       "identical_files": int(identical.sum())},
        "studies": records(studies),
        "disagreements_total": len(disagreements),
        "disagreements": records(disagreements[["path", "modality", "body_part", "verdict", "label", "closest",
                                                 "confidence", "decided_by", "header_note"]]),
        "not_medical_rule": NOT_MEDICAL_RULE,
        "not_medical_total": len(not_medical),
        "not_medical": records(not_medical[["path", "verdict", "format", "closest", "error"]]),
        "errors_total": len(errors),
        "errors": records(errors[["path", "verdict", "error"]]),
    }


NOT_MEDICAL_RULE = ("files that are not images (documents, archives, DICOMs without pixel data), and images the model "
                    "does not recognise that have no DICOM header naming an imaging modality (screenshots, photos, "
                    "or scans of a kind the model does not know: it cannot tell those apart)")


def not_medical_rows(rows: pd.DataFrame) -> pd.Series:
    """Which rows are probably not medical images (NOT_MEDICAL_RULE)."""
    from ..io.dicom_header import modality_name

    no_modality = rows["modality"].map(lambda m: modality_name(m if isinstance(m, str) else None) is None)
    return (rows["verdict"] == NOT_AN_IMAGE) | ((rows["verdict"] == NOT_RECOGNISED) & no_modality)


def records(frame: pd.DataFrame) -> list[dict]:
    """The first LIST_LIMIT rows of a table as JSON-ready dicts (missing values as None)."""
    head = frame.head(LIST_LIMIT).astype(object)
    return json.loads(head.where(head.notna(), None).to_json(orient="records"))


def finish_audit(out: Path, meta: dict) -> dict:
    """Turn an audit's parts into <out>/files.parquet and <out>/summary.json (both complete before they appear)
    and remove the parts; returns the summary."""
    rows, damaged = read_parts(out / PARTS)
    rows, studies = finish_rows(rows, meta.get("max_distance", DEFAULT_MAX_DISTANCE))
    summary = build_summary(rows, studies, {**meta, "damaged_parts": damaged})
    tmp = out / f".{FILES}.tmp"
    pq.write_table(pa.Table.from_pandas(rows, schema=FILES_SCHEMA, preserve_index=False), tmp)
    os.replace(tmp, out / FILES)
    (out / f".{SUMMARY}.tmp").write_text(json.dumps(summary, indent=1) + "\n")
    os.replace(out / f".{SUMMARY}.tmp", out / SUMMARY)
    shutil.rmtree(out / PARTS, ignore_errors=True)
    return summary


def read_audit(folder: str | Path) -> Audit:
    """Open an audit folder: files.parquet and summary.json, or the parts of a stopped audit (finished in memory).

    Raises:
        AuditError: the folder does not exist or holds no audit.
    """
    folder = Path(folder).expanduser()
    if folder.is_file() and folder.name in (FILES, SUMMARY):  # the audit's own file: its folder is meant
        folder = folder.parent
    if not folder.is_dir():
        raise AuditError(f"There is no folder at {folder}.")
    if (folder / FILES).is_file():
        try:
            rows = to_frame(pq.read_table(folder / FILES, schema=FILES_SCHEMA))
            summary = json.loads((folder / SUMMARY).read_text()) if (folder / SUMMARY).is_file() else {}
        except (OSError, ValueError, pa.ArrowException) as err:
            raise AuditError(f"The audit in {folder} cannot be read ({err}).") from err
        rows["flags"] = rows["flags"].map(lambda f: [] if f is None else list(f))
        studies = study_table(rows)
        return Audit(folder, rows, studies, summary or build_summary(rows, studies, {"complete": None}))
    if (folder / PARTS).is_dir():
        rows, damaged = read_parts(folder / PARTS)
        rows, studies = finish_rows(rows)
        meta = {"complete": False, "damaged_parts": damaged}
        return Audit(folder, rows, studies, build_summary(rows, studies, meta))
    raise AuditError(f"{folder} holds no audit (no {FILES} and no {PARTS}/ folder): give the --out folder of "
                     "a `medimg audit` run.")


def summary_lines(summary: dict, out: Path) -> list[str]:
    """The summary in a few lines of text, for the command line."""
    v, f, d = summary["verdicts"], summary["flags"], summary["duplicates"]
    mixed = sum(1 for s in summary["studies"] if s["agrees"] is False)
    lines = [", ".join(f"{n:,} {name}" for name, n in v.items()),
             f"{counted(f[HEADER_DISAGREES], 'file')} whose DICOM header disagrees with the image; "
             f"{counted(len(summary['studies']), 'study', 'studies')}, {mixed:,} whose images disagree",
             duplicates_sentence(d),
             f"wrote {out / FILES} and {out / SUMMARY}"]
    if summary.get("damaged_parts"):
        n = summary["damaged_parts"]
        lines.insert(3, f"{counted(n, 'part file')} could not be read and {'is' if n == 1 else 'are'} left out")
    return lines


def counted(n: int, one: str, many: str | None = None) -> str:
    """'1 file', '2 files', '1,024 studies': a count with its noun in the right number."""
    return f"{n:,} {one if n == 1 else many or one + 's'}"


def duplicates_sentence(duplicates: dict, bold: bool = False) -> str:
    """The identical files and the copies or near copies an audit found, in words (numbers in Markdown bold with
    `bold`); audits written before the identical-files count (2026-12-05) give the copies alone."""
    def n(count: int, one: str) -> str:
        return counted(count, one).replace(f"{count:,}", f"**{count:,}**", 1) if bold else counted(count, one)
    d = duplicates
    identical = (f"{n(d['identical_groups'], 'group')} of identical files ({n(d['identical_files'], 'file')}, the same "
                 "bytes); " if "identical_groups" in d else "")
    return (f"{identical}{n(d['groups'], 'group')} of copies or near copies ({n(d['files'], 'file')}, pHash within "
            f"{d['max_distance']} bits)")
