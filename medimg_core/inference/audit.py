"""`medimg audit`: sort and check a whole image archive on Ray Data, from one laptop to a cluster.

The pipeline, one row per input file (folders recursively, every member of a zip archive, DICOM trees with or
without file suffixes):

    discover (driver)  ->  ray.data.from_items
      -> decode stage (Ray tasks): read the bytes, read_image, the allow-listed DICOM header, the study's salted
         hash, the model-input image and its perceptual hash; a file that cannot be read keeps its error sentence
      -> predict stage (Ray actor pool, `Predictor`): the classifier loaded once per actor, predict_batch over the
         batch, the header-vs-image check
      -> the driver writes Parquet parts as rows arrive (a progress bar), then `audit_summary.finish_audit`
         adds near-duplicate groups, per-study agreement and flags, and writes files.parquet and summary.json.

Both stages run at the same time, so decoding overlaps inference. The driver writes the output, so on a cluster
(`address=`) the results land on the machine that runs the command; the input paths must be readable by every
node (a shared file system), and every node needs this package and its models.

Privacy: files are read in memory only. Identifying DICOM fields are never read (the header allow-list); the
StudyInstanceUID alone is read, hashed at once with a random salt that lives only for one audit, and never kept,
printed or logged raw; pydicom's warnings (which may quote a value) are silenced while a file is read.
"""
from __future__ import annotations

import hashlib
import logging
import os
import secrets
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa

from .audit_summary import (FILES, NOT_AN_IMAGE, NOT_RECOGNISED, PARTS, RECOGNISED, ROW_SCHEMA, UNREADABLE, AuditError,
                            finish_audit, write_part)
from ..io.dicom_file import read_dataset
from ..io.dicom_header import DicomHeader, read_dicom_header
from ..data.duplicates import DEFAULT_MAX_DISTANCE, perceptual_hashes
from .audit_files import IMAGE_FORMATS, discover, file_format, item_bytes
from ..io.imaging import ImageReadError, read_image, to_model_input, to_uint8
from ..tasks import TaskSpec
from .picture_check import not_a_scan
from .prediction import Prediction

DEFAULT_BATCH_SIZE = 256  # images per model call in the predict stage
DECODE_BLOCK = 128  # files per decode task (fewer for a small audit, so that every worker has some)
MODEL_CPUS = 0.5  # Ray CPUs a model actor reserves: with one actor per core, half of every core is left for decoding
DECODE_CPUS = 0.25  # Ray CPUs a decode task reserves (unequal to MODEL_CPUS, so Ray keeps the two stages apart)
PART_ROWS, PART_SECONDS = 4096, 20.0  # the driver writes a part once it holds this many rows or this many seconds
DECODED_SCHEMA = pa.schema([f for f in ROW_SCHEMA if f.name not in ("label", "closest", "confidence",
                            "in_distribution", "rejection_score", "other_probability", "decided_by", "reason",
                            "header_agrees", "header_note")]
                           + [("has_header", pa.bool_()), ("photometric", pa.string()), ("picture_note", pa.string()),
                              ("image", pa.binary())])
Progress = Callable[[int, int], None]  # (files done, files in all)


def study_hash(data: bytes, salt: bytes) -> str | None:
    """A DICOM's StudyInstanceUID as a salted hash (12 hex digits), or None; the UID itself is dropped at once."""
    try:
        ds = read_dataset(data, stop_before_pixels=True, specific_tags=["StudyInstanceUID"])
        uid = str(ds.get("StudyInstanceUID") or "").strip()
    except Exception:  # noqa: BLE001 - a damaged header has no study; the file's own error says what is wrong
        return None
    return hashlib.blake2b(uid.encode(), key=salt, digest_size=6).hexdigest() if uid else None


def has_pixel_data(data: bytes) -> bool:
    """Whether a DICOM holds pixel data at all (a report or structured document does not)."""
    try:
        ds = read_dataset(data, specific_tags=["PixelData", "FloatPixelData", "DoubleFloatPixelData"])
    except Exception:  # noqa: BLE001 - unreadable: treated as damaged, not as a document
        return True
    return any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))


def header_columns(header: DicomHeader | None) -> dict:
    """The allow-listed header fields as row columns (all None for a file without a DICOM header)."""
    h = header or DicomHeader()
    spacing = h.pixel_spacing or (None, None)
    return {"has_header": header is not None, "modality": h.modality, "body_part": h.body_part,
            "study_description": h.study_description, "series_description": h.series_description, "view": h.view,
            "spacing_row_mm": spacing[0], "spacing_col_mm": spacing[1], "header_rows": h.rows,
            "header_columns": h.columns, "photometric": h.photometric}


def file_digest(data: bytes, salt: bytes) -> str:
    """A file's bytes hashed with the audit's salt (16 hex digits): equal for identical files within one audit, and
    no use for finding a known file in it from outside."""
    return hashlib.blake2b(data, key=salt, digest_size=8).hexdigest()


def decode_item(item: dict, side: int, fit: str, salt: bytes) -> dict:
    """Everything about one file that needs no model: size, format, header, study hash, model-input image
    (side x side float32 bytes), or the error sentence that says why it cannot be read (decode_batch adds the
    pHash)."""
    row = {**item, "size": None, "format": None, "error": None, "verdict": None, "study": None, "phash": None,
           "digest": None, "picture_note": None, "image": None, **header_columns(None)}
    data = b""
    try:
        data = item_bytes(item)
        row.update(size=len(data), format=file_format(data), digest=file_digest(data, salt))
        if row["format"] == "DICOM":
            row.update(header_columns(read_dicom_header(data)), study=study_hash(data, salt))
        picture = read_image(data)
        row["picture_note"] = not_a_scan(picture)  # on the full-size picture, as `medimg predict` checks it
        image = to_model_input(picture, side, fit=fit)
    except ImageReadError as err:
        row.update(error=str(err), verdict=error_verdict(row["format"], data))
    except Exception as err:  # noqa: BLE001 - one strange file is a row with its error, never a failed audit
        row.update(error=f"The file could not be processed ({type(err).__name__}).", verdict=UNREADABLE)
    else:
        row["image"] = image.astype(np.float32).tobytes()
    return row


def decode_batch(batch: pa.Table, side: int, fit: str, salt: bytes) -> pa.Table:
    """The decode stage: decode_item over a batch of discovered items (pydicom's warnings silenced), then the
    pHashes of the batch's images in one call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logging.getLogger("pydicom").setLevel(logging.ERROR)
        rows = [decode_item(item, side, fit, salt) for item in batch.to_pylist()]
    read = [row for row in rows if row["image"] is not None]
    hashes = perceptual_hashes([to_uint8(np.frombuffer(row["image"], np.float32).reshape(side, side)) for row in read])
    for row, value in zip(read, hashes):
        row["phash"] = f"{int(value):016x}"
    return pa.Table.from_pylist(rows, schema=DECODED_SCHEMA)


def stage_side(spec: TaskSpec) -> int:
    """Side of the image the decode stage hands on: the task's native resolution when lower than its input (the
    classifier's model_view finishes it exactly as for the original), else the model input itself."""
    return spec.native_size if spec.native_size and spec.native_size < spec.image_size else spec.image_size


class Predictor:
    """The predict stage: one classifier per Ray actor, loaded once; predict_batch over each batch of rows.

    The task and model are class attributes (see `predictor_for`), so Ray starts actors without constructor
    arguments in its object store.
    """

    TASK: str = "modality"
    MODEL: str | None = None

    def __init__(self, threads: int = 1):
        import torch

        from .predict import load_classifier

        torch.set_num_threads(threads)
        self.clf = load_classifier(self.TASK, self.MODEL)  # batch norms folded, channels-last, as everywhere
        self.side = stage_side(self.clf.spec)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """Decoded rows -> audit rows (ROW_SCHEMA): verdict, prediction, header check."""
        rows = batch.to_pylist()
        readable = [r for r in rows if r["image"] is not None]
        images = [np.frombuffer(r["image"], np.float32).reshape(self.side, self.side) for r in readable]
        headers = [row_header(r) for r in readable]
        checks = [r["picture_note"] for r in readable]  # the full-size picture's check, as `medimg predict` makes it
        preds = self.clf.predict_batch(images, headers=headers, picture_checks=checks) if readable else []
        for row, header, pred in zip(readable, headers, preds):
            row.update(prediction_columns(pred))
            row.update(header_check_columns(None if row["picture_note"] else header, self.clf.spec, pred))
        return pa.Table.from_pylist(rows, schema=ROW_SCHEMA)


def predictor_for(task: str, model: str | None) -> type[Predictor]:
    """A Predictor class bound to one task and checkpoint."""
    return type("Predictor", (Predictor,), {"TASK": task, "MODEL": model, "__module__": __name__})


def prediction_columns(pred: Prediction) -> dict:
    """A Prediction's columns."""
    return {"verdict": RECOGNISED if pred.in_distribution else NOT_RECOGNISED, "label": pred.label,
            "closest": pred.closest or pred.label, "confidence": pred.confidence,
            "in_distribution": pred.in_distribution, "rejection_score": pred.ood_score,
            "other_probability": pred.other_probability, "decided_by": pred.decided_by, "reason": pred.reason}


def row_header(row: dict) -> DicomHeader | None:
    """The allow-listed DICOM header of a decoded row (None for a file without one)."""
    if not row["has_header"]:
        return None
    spacing = (row["spacing_row_mm"], row["spacing_col_mm"]) if row["spacing_row_mm"] is not None else None
    return DicomHeader(modality=row["modality"], body_part=row["body_part"],
                       study_description=row["study_description"], series_description=row["series_description"],
                       view=row["view"], pixel_spacing=spacing, rows=row["header_rows"], columns=row["header_columns"],
                       photometric=row["photometric"])


def header_check_columns(header: DicomHeader | None, spec: TaskSpec, pred) -> dict:
    """header_check's verdict and sentence for a file with a DICOM header (None for other files, and for a picture
    the picture check refused: nothing to compare)."""
    from .header_check import check_header

    if header is None:
        return {"header_agrees": None, "header_note": None}
    check = check_header(header, spec, pred)
    return {"header_agrees": check.agrees, "header_note": check.note or None}


def error_verdict(fmt: str | None, data: bytes) -> str:
    """The verdict on a file without an image: NOT_AN_IMAGE for a file in no image format or a DICOM without pixel
    data (a report, a structured document), else UNREADABLE (an image file that is damaged or cannot be decoded)."""
    if fmt == "DICOM":
        return UNREADABLE if has_pixel_data(data) else NOT_AN_IMAGE
    return UNREADABLE if fmt in IMAGE_FORMATS or fmt is None else NOT_AN_IMAGE


def start_ray(address: str | None = None, workers: int | None = None) -> bool:
    """Start local Ray (workers CPUs; default all of this machine's) or join a cluster at `address`, quietly and
    without the dashboard; returns False when Ray was already running in this process (nothing started)."""
    import ray

    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
    if address:
        ray.init(address=address, **quiet)
    else:
        ray.init(num_cpus=workers or os.cpu_count(), object_store_memory=1 << 30, **quiet)
    return True


def audit_dataset(items: list[dict], task: str, model: str | None, spec: TaskSpec, workers: int, batch_size: int,
                  salt: bytes):
    """The Ray Data pipeline over the discovered items: decode tasks, then a pool of `workers` model actors
    (restarted by Ray Data when lost, e.g. with their node)."""
    import ray

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False  # the driver shows one bar of files
    ctx.execution_options.preserve_order = False
    ctx.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.ERROR)
    per_task = max(1, min(DECODE_BLOCK, -(-len(items) // (4 * workers))))
    # The model actors are not restarted (max_restarts=0, as Ray Data's own code suggests): a restart could not be
    # trusted (its constructor arguments live in the object store, ray-project/ray#53727), and Ray prints an error
    # line on every audit that allows one (ray#57733). A lost actor fails the audit with one line; parts written stay
    # readable. Ray deprecates such extra remote args without a named parameter for this one yet: its warning is
    # silenced here, and requirements-audit.txt stays below the Ray that removes them.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        return (ray.data.from_items(items, override_num_blocks=-(-len(items) // per_task))
                .map_batches(decode_batch, batch_size=per_task, batch_format="pyarrow", num_cpus=DECODE_CPUS,
                             fn_kwargs={"side": stage_side(spec), "fit": spec.fit, "salt": salt})
                .map_batches(predictor_for(task, model), batch_size=batch_size, batch_format="pyarrow",
                             num_cpus=MODEL_CPUS, compute=ray.data.ActorPoolStrategy(size=workers),
                             max_restarts=0))


def prepare_out(out: Path) -> Path:
    """The output folder, created; an audit already there is never overwritten."""
    out = Path(out).expanduser()
    if (out / FILES).exists() or (out / PARTS).exists():
        raise AuditError(f"{out} already holds an audit: give another --out folder or remove that one.")
    if out.exists() and not out.is_dir():
        raise AuditError(f"--out {out} is a file, not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    return out


def run_audit(paths: list[Path], out: Path, task: str = "modality", model: str | Path | None = None,
              workers: int | None = None, batch_size: int = DEFAULT_BATCH_SIZE,
              max_distance: int = DEFAULT_MAX_DISTANCE, progress: Progress | None = None) -> dict:
    """Audit every file under `paths` into `out` (Ray must be running: start_ray); returns the summary.

    Args:
        workers: model actors (default: one per CPU Ray has).
        batch_size: images per model call.
        progress: called with (files done, files in all) as rows arrive.
    If stopped (KeyboardInterrupt) or failed, the rows already computed are written and finished
    (summary["complete"] is False) before the exception goes on.
    """
    import ray

    from .predict import load_classifier

    clf = load_classifier(task, model)  # a missing or foreign model fails here, before any work
    items = discover(paths)
    out = prepare_out(out)
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    started, done, part, buffer, last = time.perf_counter(), 0, 0, [], time.perf_counter()
    meta = {"task": task, "model": str(clf.path.name), "files": len(items), "workers": workers,
            "batch_size": batch_size, "max_distance": max_distance, "engine": f"Ray {ray.__version__}"}
    complete = False
    try:
        ds = audit_dataset(items, task, str(clf.path), clf.spec, workers, batch_size, secrets.token_bytes(16))
        for batch in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            buffer.append(batch)
            done += batch.num_rows
            if progress:
                progress(done, len(items))
            if sum(b.num_rows for b in buffer) >= PART_ROWS or time.perf_counter() - last > PART_SECONDS:
                write_part(pa.concat_tables(buffer), out / PARTS, part)
                part, buffer, last = part + 1, [], time.perf_counter()
        complete = True
    finally:
        if buffer:
            write_part(pa.concat_tables(buffer), out / PARTS, part)
        meta.update(complete=complete, seconds=round(time.perf_counter() - started, 2))
        summary = finish_audit(out, meta)
    return summary
