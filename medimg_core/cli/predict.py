"""`medimg predict`: one row per image of files, folders and zip archives, as text lines, JSON lines or CSV, with
the verdict in words and a summary line; and the progress bar the long commands share."""
from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path

from ..tasks import TASKS


@contextmanager
def progress_bar(desc: str, unit: str):
    """A tqdm bar on stderr (shown only on a terminal) and a `Progress` callback (done, total) that moves it."""
    from tqdm.auto import tqdm

    with tqdm(desc=desc, unit=unit, disable=None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total or None
            bar.n = done
            bar.refresh()

        yield bar, progress


def cmd_predict(args) -> int:
    from tqdm.auto import tqdm

    from ..inference.predict import load_classifier
    from .predict_output import Summary, WithTTA, csv_header, csv_row

    import torch

    # one image at a time gains nothing from a second intra-op thread, and on a busy machine two threads wait on
    # each other: 300 MedNIST files took 64 s with torch's default 2 threads and 4.2 s with one (the app uses one too)
    torch.set_num_threads(1)
    clf = load_classifier(args.task, args.model)
    if args.tta and not clf.can_flip:
        print(f"note: --tta changes nothing for {clf.spec.name}: its images may not be mirrored", file=sys.stderr)
    summary = Summary()
    if args.format == "csv":
        print(csv_header(clf.classes), flush=True)
    with tqdm(desc="predict", unit="file", disable=None) as bar:  # on stderr, and only on a terminal
        for given in args.files:
            for row in predict_rows(WithTTA(clf) if args.tta else clf, given, summary.skipped):
                summary.add(row)
                line = (json.dumps(row) if args.format == "json" else csv_row(row, clf.classes) if args.format == "csv"
                        else prediction_line(row, clf.spec.name))
                if bar.disable:
                    print(line, flush=True)
                else:
                    tqdm.write(line, file=sys.stdout)
                bar.update()
    print(summary.line(), file=sys.stderr)  # stdout keeps one line (row) per file, in every format
    return 0 if summary.read else 1


def predict_rows(clf, given: Path, skipped: list[str] | None = None):
    """One result row per image of a predict argument (a file, folder or zip), or one row with its error; skipped
    collects the files of a folder or zip that are not images by their names (folders.iter_entries)."""
    from ..io.dicom_header import read_dicom_header
    from ..io.folders import FolderError, predict_inputs
    from ..inference.header_check import header_dict
    from ..io.imaging import ImageReadError, read_image

    try:
        for file, source in predict_inputs(given, skipped):
            row = empty_row(file)
            data = source if isinstance(source, Path) else source()
            try:
                image = read_image(data)
            except ImageReadError as err:
                row["error"] = str(err)
            else:
                header = read_dicom_header(data)  # a DICOM's header joins its pixels in the verdict (verdict.py)
                prediction = clf.predict(image, header=header)
                row.update(prediction.to_dict(), dicom=header_dict(header, clf.spec, prediction))
            yield row
    except FolderError as err:
        yield {**empty_row(str(given)), "error": str(err)}


def empty_row(file: str) -> dict:
    """predict's JSON row for one file before its prediction (or error) is filled in (the fields of a Prediction,
    then dicom: see header_report, and error). label is null whenever the image is not recognised; closest holds
    the class it is closest to, decided_by "pixels", "header" or "both", reason why it is not recognised."""
    return {"file": file, "label": None, "closest": None, "confidence": None, "probabilities": None,
            "in_distribution": None, "ood_score": None, "other_probability": None, "decided_by": None, "reason": None,
            "basis": None, "threshold": None, "dicom": None, "error": None}


def prediction_line(row: dict, task: str, positive_class: str | None = None) -> str:
    """predict's text line for one file: the verdict in words (a screening task's with its probability and threshold;
    'not recognised' with the closest class and why) and the sentence that says what decided; or the error.

    positive_class: a screening task's positive class (default: the registered task's)."""
    from ..inference.predict import Prediction
    from ..inference.verdict import label_text

    if row["error"]:
        return f"{row['file']}: error: {row['error']}"
    if positive_class is None and task in TASKS:
        positive_class = TASKS[task].positive_class
    prediction = Prediction.from_dict(row)
    why = f" {prediction.reason}" if prediction.label is None else ""
    return f"{row['file']}: {label_text(prediction, positive_class)}.{why} {prediction.basis}".rstrip()
