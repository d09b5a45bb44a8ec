"""The verdict with and without the DICOM header, on every DICOM of scan-kinds (by dataset) and of pydicom's test files.

For each DICOM of scan-kinds.tar.gz and scan-kinds-2.tar.gz (whose manifests name each file's class and dataset):
the verdict of the pixels alone (Classifier.predict(image)) and of the pixels with the header
(Classifier.predict(image, header=...)), counted per class and dataset as "right" (a scan of the six kinds named
as its class; an image of another kind not recognised), with who decided. Then pydicom's own test files: how many
are read, and the verdicts and deciders. Lists every file whose verdict the header changed. And the rule both
ways on real pixels: scan-kinds' PNG and JPEG scans of the six kinds wrapped in DICOMs with their own header, a
wrong body part, a wrong modality and ultrasound.

scan-kinds is part of the shipped scan-type model's training pool (a supplement and a foreign source), so the
pixels' numbers here are not estimates for new scans; they show what the header adds and takes away.

Usage: MEDIMG_DATA_DIR=../shared/data python -m benchmarks.header_verdict [--task modality]
"""
from __future__ import annotations

import argparse
import csv
import io
import tarfile
import warnings
from collections import Counter, defaultdict
from pathlib import Path

from medimg_core.data.datasets import data_dir
from medimg_core.io.dicom_header import read_dicom_header
from medimg_core.io.imaging import ImageReadError, read_image
from medimg_core.inference.predict import load_classifier
from medimg_core.inference.verdict import label_text

ARCHIVES = ("scan-kinds.tar.gz", "scan-kinds-2.tar.gz")


def archive_dicoms(path: Path) -> list[tuple[str, str, bytes]]:
    """(class, dataset, bytes) of every DICOM in a scan-kinds archive, from its manifest."""
    files, manifest = {}, {}
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile() and member.name.endswith((".dcm", "manifest.csv")):
                data = tar.extractfile(member).read()
                if member.name.endswith("manifest.csv"):
                    manifest = {r["file"]: r for r in csv.DictReader(io.StringIO(data.decode()))}
                else:
                    files[member.name.split("/", 1)[1]] = data
    return [(manifest[f]["class"], manifest[f]["dataset"], data) for f, data in sorted(files.items())]


def is_right(label: str | None, truth: str) -> bool:
    """A scan named as its class; an image of another kind given no label."""
    return label is None if truth == "other" else label == truth


def scan_kinds(clf, folder: Path) -> None:
    """Per class and dataset: right without and with the header, and who decided."""
    table = defaultdict(lambda: [0, 0, 0, Counter()])
    changed = []
    for archive in ARCHIVES:
        if not (folder / archive).is_file():
            print(f"{archive} not found in {folder}, skipped")
            continue
        for truth, dataset, data in archive_dicoms(folder / archive):
            try:
                image = read_image(data)
            except ImageReadError as err:
                print(f"  unreadable {truth}/{dataset}: {err}")
                continue
            alone, joined = clf.predict(image), clf.predict(image, header=read_dicom_header(data))
            row = table[(truth, dataset)]
            row[0] += 1
            row[1] += is_right(alone.label, truth)
            row[2] += is_right(joined.label, truth)
            row[3][joined.decided_by] += 1
            if alone.label != joined.label:
                changed.append((truth, dataset, label_text(alone), label_text(joined), joined.reason or joined.basis))
    print(f"{'class':<10} {'dataset':<14} {'n':>4} {'pixels':>7} {'+header':>8}  decided by")
    totals = [0, 0, 0]
    for (truth, dataset), (n, alone, joined, by) in sorted(table.items()):
        totals = [totals[0] + n, totals[1] + alone, totals[2] + joined]
        print(f"{truth:<10} {dataset:<14} {n:>4} {alone:>7} {joined:>8}  {dict(by)}")
    print(f"{'all':<25} {totals[0]:>4} {totals[1]:>7} {totals[2]:>8}   (right: named as its class, or for 'other' no label)")
    print(f"{len(changed)} verdicts the header changed:")
    for truth, dataset, alone, joined, why in changed:
        print(f"  {truth}/{dataset}: {alone} -> {joined}: {why}")


def as_dicom(pixels, modality: str, body_part: str | None) -> bytes:
    """An 8-bit picture as a minimal DICOM with the given Modality and BodyPartExamined (in memory)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = SecondaryCaptureImageStorage, generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.Modality, ds.Rows, ds.Columns = modality, *pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.WindowCenter, ds.WindowWidth = 127.5, 256.0
    if body_part:
        ds.BodyPartExamined = body_part
    ds.PixelData = pixels.tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


HEADERS = {  # class -> (its own header, a header with another body part, a header with another modality)
    "AbdomenCT": (("CT", "ABDOMEN"), ("CT", "HEAD"), ("MR", "ABDOMEN")),
    "ChestCT": (("CT", "CHEST"), ("CT", "ABDOMEN"), ("DX", "CHEST")),
    "HeadCT": (("CT", "HEAD"), ("CT", "CHEST"), ("MR", "HEAD")),
    "BreastMRI": (("MR", "BREAST"), ("MR", "CHEST"), ("CT", "BREAST")),
    "CXR": (("DX", "CHEST"), ("DX", "HAND"), ("CT", "CHEST")),
    "Hand": (("DX", "HAND"), ("DX", "CHEST"), ("CT", "HAND")),
}


def rewrapped(clf, folder: Path, per_class: int) -> None:
    """scan-kinds' PNG/JPEG scans of the six kinds wrapped in DICOMs with a right header, a wrong body part, a wrong
    modality, and ultrasound: how many are named as their class, given another class, or not recognised."""
    import numpy as np

    images, seen = defaultdict(list), Counter()
    for archive in ARCHIVES:
        with tarfile.open(folder / archive) as tar:
            for member in tar:
                kind = member.name.split("/")[-2] if member.isfile() else ""
                if kind in HEADERS and not member.name.endswith(".dcm") and seen[kind] < per_class:
                    seen[kind] += 1
                    try:
                        images[kind].append(read_image(tar.extractfile(member).read()))
                    except ImageReadError:
                        continue
    outcome = defaultdict(Counter)
    for kind, found in images.items():
        own, part, modality = HEADERS[kind]
        for image in found:
            pixels = np.clip(np.rint(image * 255), 0, 255).astype(np.uint8)
            for name, (code, body) in (("none", (None, None)), ("right", own), ("wrong part", part),
                                       ("wrong modality", modality), ("ultrasound", ("US", None))):
                header = read_dicom_header(as_dicom(pixels, code, body)) if code else None
                label = clf.predict(image, header=header).label
                result = "named right" if label == kind else "no label" if label is None else "other class"
                outcome[name][result] += 1
                outcome[name][f"{kind}: {result}"] += 1
    print(f"scan-kinds PNG/JPEG scans of the six kinds ({sum(map(len, images.values()))}: up to {per_class} a class) "
          "given a header:")
    for name, counts in outcome.items():
        total = {k: v for k, v in counts.items() if ":" not in k}
        by_class = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if ":" in k and "named right" not in k)
        print(f"  {name:<15} {total}" + (f"; not named right: {by_class}" if by_class else ""))


def pydicom_files(clf) -> None:
    """pydicom's test files: read or refused, and the verdicts with their headers."""
    import pydicom

    paths = sorted(p for p in (Path(pydicom.__file__).parent / "data").rglob("*") if p.is_file())
    read, verdicts = 0, Counter()
    for path in paths:
        try:
            image = read_image(path)
        except ImageReadError:
            continue
        read += 1
        header = read_dicom_header(path)
        pred = clf.predict(image, header=header)
        verdicts[(header.modality if header else None, pred.label, pred.decided_by)] += 1
    print(f"pydicom test files: {len(paths)} files, {read} read; (modality, label, decided by): count")
    for key, n in sorted(verdicts.items(), key=lambda kv: -kv[1]):
        print(f"  {key}: {n}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="modality", help="the task whose shipped model judges (default modality)")
    parser.add_argument("--per-class", type=int, default=40, help="scans per class to wrap in DICOMs (default 40)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # pydicom's warnings about its deliberately odd test files
    clf = load_classifier(args.task)
    scan_kinds(clf, data_dir())
    rewrapped(clf, data_dir(), args.per_class)
    pydicom_files(clf)


if __name__ == "__main__":
    main()
