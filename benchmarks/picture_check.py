"""How often `picture_check.not_a_scan` refuses real images (target: never) and pictures with no scan (target: always).

Real images: every image of scan-kinds.tar.gz and scan-kinds-2.tar.gz (the six kinds and 36 datasets of other
kinds), the brain tumour archive, the paediatric chest X-rays at 224 px and
every --mednist-every'th MedNIST image, each read by read_image as the product reads it. Pictures with no scan:
blank, flat colours, near-constant, uniform, gaussian and salt-and-pepper noise, and synthetic.py's patterns, at
several sizes, as float arrays and as PNG and JPEG files. Prints the refusals, the reasons and the time per image.

Usage: MEDIMG_DATA_DIR=../shared/data python -m benchmarks.picture_check [--mednist-every 13]
       [--tasks modality pneumonia brain-tumor] [--no-real]
"""
from __future__ import annotations

import argparse
import io
import tarfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from medimg_core.data.datasets import data_dir
from medimg_core.io.imaging import ImageReadError, read_image
from medimg_core.inference.picture_check import not_a_scan
from medimg_core.data.synthetic import KINDS, synthetic_picture

ARCHIVES = {"scan-kinds": "scan-kinds.tar.gz", "scan-kinds-2": "scan-kinds-2.tar.gz",
            "brain-tumor-mri": "brain-tumor-mri-training.tar.gz", "chest-xray-224": "chest-xray-pneumonia-224.tar.gz",
            "mednist": "MedNIST.tar.gz"}


def archive_images(path: Path, every: int = 1):
    """(member name, image) of every `every`-th image of a tar archive (its member names hold the class folder and,
    for scan-kinds, the dataset); unreadable files are skipped."""
    with tarfile.open(path) as tar:
        seen = 0
        for member in tar:
            if not member.isfile() or member.name.endswith(".csv"):
                continue
            seen += 1
            if (seen - 1) % every:
                continue
            try:
                image = read_image(tar.extractfile(member).read())
            except ImageReadError:
                continue
            yield member.name, image


def real_images(folder: Path, mednist_every: int) -> None:
    """Refusals per archive (and per dataset of the scan-kinds manifests), with the time per check."""
    for name, file in ARCHIVES.items():
        path = folder / file
        if not path.is_file():
            print(f"{name}: {path} not found, skipped")
            continue
        refused, n, seconds = [], 0, 0.0
        for member, image in archive_images(path, mednist_every if name == "mednist" else 1):
            start = time.perf_counter()
            reason = not_a_scan(image)
            seconds += time.perf_counter() - start
            n += 1
            if reason:
                refused.append((member, reason))
        print(f"{name}: {n} images, refused {len(refused)}, {seconds / max(n, 1) * 1000:.2f} ms per check")
        for member, reason in refused:
            print(f"  refused {member}: {reason}")


def encoded(image: np.ndarray, fmt: str) -> np.ndarray:
    """A [0, 1] picture saved as an 8-bit PNG or JPEG file and read back as the product reads files."""
    if fmt == "float":
        return image
    buf = io.BytesIO()
    Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(buf, format=fmt, **({"quality": 75} if fmt == "JPEG" else {}))
    return read_image(buf.getvalue())


def no_scan_pictures(rng: np.random.Generator, size: int) -> dict[str, np.ndarray]:
    """One picture of each kind with no scan in it, size x size float32 in [0, 1]."""
    shape = (size, size)
    pictures = {"black": np.zeros(shape), "white": np.ones(shape), "grey": np.full(shape, 0.5),
                "near-constant": 0.5 + rng.normal(0, 1 / 255, shape), "dim ramp": np.tile(np.linspace(0.4, 0.42, size), (size, 1)),
                "gaussian noise": rng.normal(0.5, 0.15, shape), "salt and pepper": (rng.random(shape) < 0.5) * 1.0,
                "sparse salt": (rng.random(shape) < 0.05) * 1.0}
    pictures.update({kind: synthetic_picture(kind, rng, size) for kind in KINDS})
    return {k: np.clip(v, 0, 1).astype(np.float32) for k, v in pictures.items()}


def flat_colours() -> dict[str, np.ndarray]:
    """Flat colour PNGs (red, green, blue, yellow, and a transparent one) as read_image reads them."""
    out = {}
    for name, rgba in {"red": (255, 0, 0, 255), "green": (0, 255, 0, 255), "blue": (0, 0, 255, 255),
                       "yellow": (255, 255, 0, 255), "transparent": (0, 0, 0, 0)}.items():
        buf = io.BytesIO()
        Image.new("RGBA", (128, 96), rgba).save(buf, format="PNG")
        out[f"flat {name}"] = read_image(buf.getvalue())
    return out


def no_scans(seeds: int, tasks: list[str]) -> None:
    """Pictures with no scan that pass the check, per kind and encoding; with tasks, those a shipped model labels."""
    from medimg_core.inference.predict import load_classifier

    models = {task: load_classifier(task) for task in tasks}
    passed, labelled, total = defaultdict(Counter), defaultdict(Counter), Counter()
    pictures = [(kind, f"{size} px {fmt}", encoded(picture, fmt)) for seed in range(seeds)
                for size in (28, 64, 96, 224, 512) for kind, picture in no_scan_pictures(np.random.default_rng(seed),
                                                                                         size).items()
                for fmt in ("float", "PNG", "JPEG")]
    pictures += [(kind, "PNG", picture) for kind, picture in flat_colours().items()]
    for kind, how, picture in pictures:
        total[kind] += 1
        if not_a_scan(picture) is None:
            passed[kind][how.split()[-1]] += 1
        for task, clf in models.items():
            if clf.predict(picture).label is not None:
                labelled[kind][task] += 1
    print(f"pictures with no scan: {sum(total.values())}, passed the check {sum(sum(c.values()) for c in passed.values())}"
          + (f"; labelled by a model (after the check): {sum(sum(c.values()) for c in labelled.values())}" if tasks else ""))
    for kind in total:
        print(f"  {kind}: {total[kind]} pictures, passed {sum(passed[kind].values())} {dict(passed[kind])}"
              + (f", labelled {dict(labelled[kind])}" if tasks else ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mednist-every", type=int, default=13, help="check every n-th MedNIST image (default 13)")
    parser.add_argument("--seeds", type=int, default=5, help="random pictures of each kind, size and format")
    parser.add_argument("--no-real", action="store_true", help="only the pictures with no scan")
    parser.add_argument("--tasks", nargs="*", default=[], help="also count the pictures these shipped models label")
    args = parser.parse_args()
    no_scans(args.seeds, args.tasks)
    if not args.no_real:
        real_images(data_dir(), args.mednist_every)


if __name__ == "__main__":
    main()
