"""`medimg audit` throughput against the decode-only floor and `medimg predict`, side by side in one run.

Steady-state files/s is measured as the difference between two runs of each method, on N/2 and N files
(MedNIST JPEGs: 5,895 and 11,790), so start-up drops out; start-up is what the smaller run took beyond its
files at the steady rate. The same for the DICOMs of scan-kinds (+ scan-kinds-2), repeated as copies under other
names to make the two sizes. Then the audit with 1 and 2 workers (local Ray with that many CPUs), for the
files/s per core that a cluster multiplies. Every method runs as a fresh process, as a user would start it.

    decode-only floor: a pool of 2 processes reading and decoding each file with read_image, nothing else
    medimg predict:    python -m medimg_core predict --task modality PATH... (one process, one file at a time)
    medimg audit:      the audit on Ray Data (`--workers W`), Parquet and summary written

Usage: python -m benchmarks.audit_throughput [--mednist-files 11790] [--dicom-files 800] [--repeats 2] [--no-workers]
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

from medimg_core.imaging import ImageReadError, read_image

ROOT = Path(__file__).resolve().parents[1]
AUDIT = ("import sys, argparse; from medimg_core.audit_cli import add_audit_parser, cmd_audit; "
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


def command_seconds(argv: list[str]) -> float:
    """Wall seconds of one command run as a fresh process (output discarded; a failure stops the benchmark)."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(argv[:4])} ... failed: {done.stderr.strip().splitlines()[-1:]}")
    return time.perf_counter() - started


def predict_seconds(folders: list[Path], files: list[Path]) -> float:
    return command_seconds([sys.executable, "-m", "medimg_core", "predict", "--task", "modality", *map(str, folders)])


def audit_seconds(folders: list[Path], workers: int, tmp: Path) -> float:
    out = tmp / "audit-out"
    shutil.rmtree(out, ignore_errors=True)
    try:
        return command_seconds([sys.executable, "-c", AUDIT, *map(str, folders), "--out", str(out),
                                "--workers", str(workers)])
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
    """Images/s of the modality model's predict_batch alone on 64 x 64 inputs already in memory, 2 threads: the
    ceiling any pipeline with this model reaches on these cores."""
    import numpy as np
    import torch

    from medimg_core.predict import load_classifier

    torch.set_num_threads(2)
    clf = load_classifier("modality")
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


def compare(name: str, root: Path, files: list[Path], tmp: Path, repeats: int) -> float:
    """One table row: floor, predict and audit (2 workers) on the same files; returns the audit's files/s."""
    floor = steady(lambda folders, fs: decode_floor(fs), root, files, repeats)
    predict = steady(predict_seconds, root, files, repeats)
    audit = steady(lambda folders, fs: audit_seconds(folders, 2, tmp), root, files, repeats)
    print(f"| {name} | {len(files) // 2:,} -> {len(files):,} | {cell(*floor)} | {cell(*predict)} | {cell(*audit)} | "
          f"{ratio(floor[0], audit[0])} | {ratio(audit[0], predict[0])} |", flush=True)
    return audit[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mednist-files", type=int, default=11_790)
    parser.add_argument("--dicom-files", type=int, default=800, help="scan-kinds DICOMs, repeated as copies")
    parser.add_argument("--no-workers", dest="workers", action="store_false", help="skip the 1 vs 2 workers table")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each size, the fastest counts (default 2)")
    args = parser.parse_args()
    data = Path(os.environ.get("MEDIMG_DATA_DIR", ROOT.parent / "shared" / "data"))
    print(f"{os.cpu_count()} cores; load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="audit-bench-") as tmp_name:
        tmp = Path(tmp_name)
        mednist = unpack(data / "MedNIST.tar.gz", tmp / "mednist", args.mednist_files, ".jpeg", every=4)
        dicoms = unpack(data / "scan-kinds.tar.gz", tmp / "dicom", args.dicom_files, ".dcm")
        print("| files | measured on | decode-only floor (2 processes) | medimg predict | medimg audit (2 workers) "
              "| floor / audit | audit / predict |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        compare("MedNIST JPEG 64x64", tmp / "mednist", mednist, tmp, args.repeats)
        compare("scan-kinds DICOM", tmp / "dicom", dicoms, tmp, args.repeats)
        print(f"\nThe modality model alone (predict_batch on 64 x 64 inputs in memory, 2 threads, as shipped): "
              f"{model_alone():,.0f} images/s", flush=True)
        if args.workers:
            print("\n| audit workers (local Ray CPUs) | steady files/s | per worker | start-up |")
            print("| --- | --- | --- | --- |")
            for workers in (1, 2):
                rate, startup = steady(lambda folders, fs, w=workers: audit_seconds(folders, w, tmp),
                                       tmp / "mednist", mednist, args.repeats)
                print(f"| {workers} | {rate:,.0f} | {rate / workers:,.0f} | {startup:.1f} s |", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
