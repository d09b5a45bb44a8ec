"""`predict`'s output formats (text lines, JSON lines, CSV) and its closing summary line.

The rows are those of cli.predict_rows (one dict per file: file, label, confidence, probabilities,
in_distribution, ood_score, dicom, error, and whatever the prediction adds); the text line is
cli.prediction_line. Here: the CSV columns, the summary of a run, and test-time augmentation for the rows.
"""
from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

FORMATS = ("text", "json", "csv")
COLUMNS = ("file", "label", "closest", "confidence", "in_distribution", "ood_score", "other_probability",
           "decided_by", "reason", "header_check", "error")  # then one probability column per class


class WithTTA:
    """A Classifier whose `predict` also looks at each image's left-right mirror (Classifier.predict(tta=True));
    every other attribute is the classifier's own."""

    def __init__(self, clf):
        self.clf = clf

    def predict(self, image, **kwargs):
        """The classifier's prediction with test-time augmentation (kwargs: Classifier.predict's, e.g. header)."""
        return self.clf.predict(image, tta=True, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.clf, name)


def csv_header(classes: Sequence[str]) -> str:
    """The CSV's header line: the fixed columns, then `p_<class>` for each class."""
    return _csv_line([*COLUMNS, *(f"p_{c}" for c in classes)])


def csv_row(row: dict, classes: Sequence[str]) -> str:
    """One file's CSV line: empty cells where the row has no value (an unreadable file has only its error)."""
    header = row.get("dicom") or {}
    values = {**row, "header_check": header.get("note", "") if header.get("agrees") is False else ""}
    probs = row.get("probabilities") or {}
    return _csv_line([_cell(values.get(c)) for c in COLUMNS] + [_cell(probs.get(c)) for c in classes])


def _cell(value) -> str:
    """A CSV cell: '' for None, 6 significant digits for floats, the text otherwise."""
    if value is None:
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _csv_line(cells: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="").writerow(cells)
    return buf.getvalue()


@dataclass
class Summary:
    """Counts over a predict run: files seen, labels given, images not recognised, files that could not be read."""

    files: int = 0
    labels: Counter = field(default_factory=Counter)
    not_recognised: int = 0
    unreadable: int = 0
    skipped: list[str] = field(default_factory=list)  # files of the folders and zips given that are not images

    def add(self, row: dict) -> None:
        """Count one row."""
        self.files += 1
        if row.get("error"):
            self.unreadable += 1
        elif not row.get("in_distribution") or row.get("label") is None:
            self.not_recognised += 1
        else:
            self.labels[row["label"]] += 1

    @property
    def read(self) -> int:
        """Files that could be read."""
        return self.files - self.unreadable

    def line(self) -> str:
        """'12 files: 9 labelled (CXR 5, Hand 4), 2 not recognised, 1 unreadable'."""
        labelled = sum(self.labels.values())
        by_class = ", ".join(f"{name} {n}" for name, n in self.labels.most_common())
        parts = [f"{labelled} labelled" + (f" ({by_class})" if by_class else ""),
                 f"{self.not_recognised} not recognised", f"{self.unreadable} unreadable"]
        line = f"summary: {self.files} file{'s' if self.files != 1 else ''}: " + ", ".join(parts)
        if self.skipped:
            n, names = len(self.skipped), ", ".join(Path(f).name for f in self.skipped[:3])
            line += (f"; {n} other file{'s' if n != 1 else ''} in the folders and zips skipped, not images by "
                     f"{'their names' if n != 1 else 'its name'} ({names}{', ...' if n > 3 else ''})")
        return line
