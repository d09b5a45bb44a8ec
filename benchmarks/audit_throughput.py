"""`medimg audit` throughput against the decode-only floor and `medimg predict`, side by side in one run.

Steady-state files/s is measured as the difference between two runs of each method, on N/2 and N files
(MedNIST JPEGs: 5,895 and 11,790), so start-up drops out; start-up is what the smaller run took beyond its
files at the steady rate. The same for the 200 DICOMs of scan-kinds.tar.gz, repeated as copies under other
names to make the two sizes. Then the audit with 1 and 2 workers (local Ray with that many CPUs, the run pinned to
that many cores), for the files/s per core that a cluster multiplies. Every method runs as a fresh process, as a
user would start it.

    decode-only floor: a pool of 2 processes reading and decoding each file with read_image, nothing else
    medimg predict:    python -m medimg_core predict --task modality PATH... (one process, one file at a time), as
                       a user runs it, and with OMP_NUM_THREADS=1 (one torch thread: far faster on a busy machine)
    medimg audit:      the audit on Ray Data (`--workers W`), Parquet and summary written

Usage: python -m benchmarks.audit_throughput [--mednist-files 11790] [--dicom-files 800] [--repeats 2]
           [--columns floor predict predict-1-thread audit] [--no-model] [--no-workers]
Needs $MEDIMG_DATA_DIR (MedNIST.tar.gz, scan-kinds.tar.gz); unpacks subsets to a temporary folder, removed after.
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from medimg_core.io.imaging import ImageReadError, read_image

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ("import sys, argparse; from medimg_core.cli.audit import add_audit_parser, cmd_audit; "
         "p = argparse.ArgumentParser(); add_audit_parser(p.add_subparsers(dest='c')); "
         "sys.exit(cmd_audit(p.parse_args(['audit'] + sys.argv[1:])))")


def unpack(archive: Path, out: Path, n: int, suffix: str, every: int = 1) -> list[Path]:
    """Two folders out/a and out/b of n files in all (n/2 each): every `every`-th member ending in `suffix`,
    repeated under other names (copy1/, copy2/ ...) when the archive holds too few."""
    files = []
    with tarfile.open(archive) as tar:
        members = [m for m in tar if m.isfile() and m.name.lower().endswith(suffix)]
        picked = members[::every]
        for k in range(n):
            member = picked[k % len(picked)]
            path = out / "ab"[k % 2] / f"copy{k // len(picked)}" / member.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(tar.extractfile(member).read())
            files.append(path)
    return files


def decode(path: Path) -> bool:
    """Read and decode one file (the floor's unit of work); False when it cannot be read."""
    try:
        read_image(path)
        return True
    except ImageReadError:
        return False


def decode_floor(files: list[Path]) -> float:
    """Seconds for 2 processes to read and decode the files, pool start included."""
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for _ in pool.imap_unordered(decode, files, chunksize=32):
            pass
    return time.perf_counter() - started


def command_seconds(argv: list[str], env: dict | None = None, cores: int | None = None) -> float:
    """Wall seconds of one command run as a fresh process (output discarded; a failure stops the benchmark);
    cores: pin it, and every process it starts, to that many cores (Linux), so a worker count is a core count."""
    pin = (lambda: os.sched_setaffinity(0, range(cores))) if cores else None
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
                          preexec_fn=pin)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


def predict_seconds(folders: list[Path], threads: int | None = None) -> float:
    """`medimg predict` as a user runs it, or with OMP_NUM_THREADS=threads (torch's threads per process)."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    return command_seconds([sys.executable, "-m", "medimg_core", "predict", "--task", "modality", *map(str, folders)],
                           env)


def audit_seconds(folders: list[Path], workers: int, tmp: Path, pinned: bool = False) -> float:
    """`medimg audit` with `workers` local Ray CPUs; pinned: on that many cores only (else on all of them)."""
    out = tmp / "audit-out"
    shutil.rmtree(out, ignore_errors=True)
    try:
        return command_seconds([sys.executable, "-c", AUDIT, *map(str, folders), "--out", str(out),
                                "--workers", str(workers)], cores=workers if pinned else None)
    finally:
        shutil.rmtree(out, ignore_errors=True)


def steady(run: Callable[[list[Path], list[Path]], float], root: Path, files: list[Path],
           repeats: int) -> tuple[float, float]:
    """(steady files/s, start-up s) from runs on root/a (half the files) and on root/a + root/b (all), the fastest
    of `repeats` each, alternating (a busy machine only ever adds time); (nan, nan) when the larger run was not
    slower (the machine's load drowned the difference)."""
    half = [f for f in files if f.is_relative_to(root / "a")]
    small, large = math.inf, math.inf
    for _ in range(repeats):
        small = min(small, run([root / "a"], half))
        large = min(large, run([root / "a", root / "b"], files))
    if large <= small:
        return math.nan, math.nan
    rate = (len(files) - len(half)) / (large - small)
    return rate, max(0.0, small - len(half) / rate)


def model_alone(batch: int = 256, batches: int = 8) -> float:
    """Images/s of the modality model's predict_batch alone on 64 x 64 inputs already in memory, 2 threads, with
    the model as the audit's actors hold it (batch norms folded, channels-last): the ceiling of the model stage."""
    import numpy as np

    from medimg_core.inference.audit import predictor_for

    clf = predictor_for("modality", None)(threads=2).clf
    images = list(np.random.default_rng(0).random((batch, 64, 64), dtype=np.float32))
    clf.predict_batch(images)
    started = time.perf_counter()
    for _ in range(batches):
        clf.predict_batch(images)
    return batch * batches / (time.perf_counter() - started)


def cell(rate: float, startup: float) -> str:
    if math.isnan(rate):
        return "n/a (no difference measurable under this load)"
    return f"{rate:,.0f} files/s (start-up {startup:.1f} s)"


def ratio(a: float, b: float) -> str:
    return "n/a" if math.isnan(a) or math.isnan(b) else f"{a / b:.1f}x"


COLUMNS = {"floor": "decode-only floor (2 processes)", "predict": "medimg predict",
           "predict-1-thread": "medimg predict, OMP_NUM_THREADS=1", "audit": "medimg audit (2 workers)"}


def measure(column: str, root: Path, files: list[Path], tmp: Path, repeats: int) -> tuple[float, float]:
    """(steady files/s, start-up s) of one method (a COLUMNS key) on the same files."""
    runs = {"floor": lambda folders, fs: decode_floor(fs),
            "predict": lambda folders, fs: predict_seconds(folders),
            "predict-1-thread": lambda folders, fs: predict_seconds(folders, threads=1),
            "audit": lambda folders, fs: audit_seconds(folders, 2, tmp)}
    return steady(runs[column], root, files, repeats)


def compare(name: str, root: Path, files: list[Path], tmp: Path, repeats: int, columns: list[str]) -> None:
    """One table row: every chosen method on the same files, and the audit against the floor and predict."""
    found = {c: measure(c, root, files, tmp, repeats) for c in columns}
    cells = [cell(*found[c]) for c in columns]
    rates = {c: r for c, (r, _) in found.items()}
    if "audit" in rates:
        cells += [ratio(rates[c], rates["audit"]) if c == "floor" else ratio(rates["audit"], rates[c])
                  for c in columns if c != "audit"]
    print(f"| {name} | {len(files) // 2:,} -> {len(files):,} | {' | '.join(cells)} |", flush=True)


def header(columns: list[str]) -> None:
    """The table's header lines for the chosen columns."""
    names = [COLUMNS[c] for c in columns]
    if "audit" in columns:
        names += ["floor / audit" if c == "floor" else f"audit / {COLUMNS[c]}" for c in columns if c != "audit"]
    print(f"| files | measured on | {' | '.join(names)} |")
    print("| --- " * (len(names) + 2) + "|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mednist-files", type=int, default=11_790)
    parser.add_argument("--dicom-files", type=int, default=800,
                        help="scan-kinds DICOMs, repeated as copies (0: skip the DICOM line)")
    parser.add_argument("--no-workers", dest="workers", action="store_false", help="skip the 1 vs 2 workers table")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each size, the fastest counts (default 2)")
    parser.add_argument("--columns", nargs="+", choices=list(COLUMNS), default=list(COLUMNS),
                        help="the methods to measure (default: all)")
    parser.add_argument("--no-model", dest="model", action="store_false", help="skip the model-alone line")
    args = parser.parse_args()
    data = Path(os.environ.get("MEDIMG_DATA_DIR", ROOT.parent / "shared" / "data"))
    print(f"{os.cpu_count()} cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        mednist = unpack(data / "MedNIST.tar.gz", tmp / "mednist", args.mednist_files, ".jpeg", every=4)
        dicoms = unpack(data / "scan-kinds.tar.gz", tmp / "dicom", args.dicom_files, ".dcm") if args.dicom_files else []
        header(args.columns)
        compare("MedNIST JPEG 64x64", tmp / "mednist", mednist, tmp, args.repeats, args.columns)
        if args.dicom_files:
            compare("scan-kinds DICOM", tmp / "dicom", dicoms, tmp, args.repeats, args.columns)
        if args.model:
            print("\nThe modality model alone (predict_batch on 64 x 64 inputs in memory, 2 threads, as the audit "
                  f"runs it): {model_alone():,.0f} images/s", flush=True)
        if args.workers:
            print("\n| audit workers (local Ray CPUs), each run pinned to as many cores | steady files/s | per core "
                  "| start-up |")
            print("| --- | --- | --- | --- |")
            for workers in (1, 2):
                rate, startup = steady(lambda folders, fs, w=workers: audit_seconds(folders, w, tmp, pinned=True),
                                       tmp / "mednist", mednist, args.repeats)
                print(f"| {workers} | {rate:,.0f} | {rate / workers:,.0f} | {startup:.1f} s |", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
