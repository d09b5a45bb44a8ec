"""The `medimg audit` sub-command: its arguments (`add_audit_parser`) and its run (`cmd_audit`).

parser.get_args_parser registers the arguments and main.COMMANDS the run. Every failure is one line on stderr (never a traceback); Ray missing names the install command.
Building the parser imports nothing heavy (no pandas, pyarrow or Ray), so every other command starts as fast.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from ..data.duplicates import DEFAULT_MAX_DISTANCE
from ..tasks import TASKS

INSTALL = "pip install 'medimg[audit]' (in a checkout: make setup)"
BATCH_SIZE = 256  # the default of --batch-size: audit.DEFAULT_BATCH_SIZE, repeated so the parser stays light (tested)
OUTPUTS = ("files.parquet", "summary.json")  # audit_summary.FILES and SUMMARY (tested)


def add_audit_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `audit` sub-command to a parser's sub-parsers; returns its parser."""
    p = subparsers.add_parser(
        "audit", help="sort and check a whole image archive on Ray Data: one Parquet row per file and a summary",
        description="Read every file under PATH (folders recursively, zip archives, DICOM trees), classify it, check "
                    "its DICOM header against the image, find copies and near copies, and write "
                    f"OUT/{OUTPUTS[0]} (one row per file) and OUT/{OUTPUTS[1]}. Runs on this machine's cores, or on a "
                    "Ray cluster with --address. Open the result on the app's Audit page.")
    p.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="folders, zip archives or files")
    p.add_argument("--out", type=Path, required=True, help="a new folder for the results")
    p.add_argument("--task", default="modality", choices=list(TASKS), help="whose model classifies (default: modality)")
    p.add_argument("--model", type=Path, help="checkpoint (default: the task's shipped model)")
    p.add_argument("--address", help="a running Ray cluster, e.g. ray://head:10001 or auto (default: start Ray "
                                     "locally on this machine's cores)")
    p.add_argument("--workers", type=int, help="model copies, each loaded once (default: one per CPU core Ray has); "
                                               "without --address also the CPU cores local Ray uses")
    p.add_argument("--batch-size", type=int, default=BATCH_SIZE, help=f"images per model call (default: {BATCH_SIZE})")
    p.add_argument("--max-distance", type=int, default=DEFAULT_MAX_DISTANCE,
                   help=f"near copies differ in at most this many of 64 pHash bits (default: {DEFAULT_MAX_DISTANCE})")
    return p


def cmd_audit(args) -> int:
    """Run the audit; prints the summary, or one line saying what went wrong. Returns the exit status."""
    for name in ("workers", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            return fail(f"--{name.replace('_', '-')} must be a whole number of at least 1, not {value}.")
    try:
        import ray
    except ImportError:
        return fail(f"medimg audit runs on Ray Data, which is not installed here: {INSTALL}.")
    from tqdm.auto import tqdm

    from ..inference.audit import run_audit, start_ray
    from ..inference.audit_summary import FILES, PARTS, AuditError, counted, summary_lines

    bar = tqdm(unit=" files", desc="audit", disable=None)
    started = False
    warnings.filterwarnings("ignore", module=r"ray\.")  # Ray's deprecation and tuning hints are not the user's business
    try:
        started = start_ray(args.address, args.workers)

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        summary = run_audit(args.paths, args.out, args.task, args.model, args.workers, args.batch_size,
                            args.max_distance, progress)
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped: the files audited so far are in {args.out / FILES} (or {args.out / PARTS}/ if stopped "
              "again while finishing); the Audit page opens either", file=sys.stderr)
        return 130
    except (AuditError, FileNotFoundError, ValueError) as err:
        return fail(str(err))
    except (ConnectionError, ray.exceptions.RayError, RuntimeError) as err:
        return fail(f"Ray failed ({type(err).__name__}): {first_line(err)}")
    finally:
        bar.close()
        if started:
            ray.shutdown()
    speed = summary["rows"] / summary["seconds"] if summary["seconds"] else 0
    print(f"audited {counted(summary['rows'], 'file')} in {summary['seconds']:.1f} s "
          f"({speed:,.{0 if speed >= 10 else 1}f} files/s, "
          f"{counted(summary['workers'], 'worker')}, {summary['engine']})")
    print("\n".join(summary_lines(summary, args.out)))
    return 0


def first_line(err: BaseException) -> str:
    """The first non-empty line of an exception's message (Ray's carry the remote traceback after it)."""
    return next((line.strip() for line in str(err).splitlines() if line.strip()), type(err).__name__)


def fail(message: str) -> int:
    """Print one error line and return the exit status of a failed command."""
    print(f"error: {message}", file=sys.stderr)
    return 2
