"""How the shipped modality model treats images from other sources.

- PneumoniaMNIST chest X-rays (another hospital, children, 28 px): should be labelled CXR.
- Brain tumour MRI slices (a kind the model was not trained on): should be flagged.
- Photos shipped with scikit-learn, and synthetic pictures (noise, gradients, shapes): should be flagged.

Usage: MEDIMG_DATA_DIR=../shared/data python -m benchmarks.ood_check [--n 600]
"""
from __future__ import annotations

import argparse

import numpy as np

from medimg_core import get_task, load_classifier
from medimg_core.data import dataset_path, load_dataset, stratified_sample


def report(name: str, preds, expect_label: str | None) -> None:
    """Print the flag rate and label counts of one group."""
    n = len(preds)
    flagged = sum(not p.in_distribution for p in preds)
    labels = {}
    for p in preds:
        labels[p.label] = labels.get(p.label, 0) + 1
    line = f"{name}: n={n}, flagged out-of-distribution {flagged / n:.1%}"
    if expect_label:
        ok = sum(p.label == expect_label for p in preds)
        line += f", labelled {expect_label} {ok / n:.1%}"
        ok_conf = sum(p.label == expect_label and p.in_distribution for p in preds)
        line += f", labelled {expect_label} and not flagged {ok_conf / n:.1%}"
    print(line + f"; labels {dict(sorted(labels.items(), key=lambda kv: -kv[1]))}")


def synthetic(n: int, seed: int = 0) -> list[np.ndarray]:
    """Noise, gradients, checkerboards and discs: pictures of nothing medical."""
    rng = np.random.default_rng(seed)
    out = []
    yy, xx = np.mgrid[:96, :96] / 96
    for i in range(n):
        kind = i % 4
        if kind == 0:
            im = rng.random((96, 96))
        elif kind == 1:
            a = rng.uniform(0, 2 * np.pi)
            im = (np.cos(a) * xx + np.sin(a) * yy) % 1.0
        elif kind == 2:
            k = rng.integers(2, 12)
            im = ((np.floor(xx * k) + np.floor(yy * k)) % 2).astype(float)
        else:
            cx, cy, r = rng.uniform(0.2, 0.8, 3)
            im = (((xx - cx) ** 2 + (yy - cy) ** 2) < (r / 2) ** 2).astype(float) * rng.uniform(0.3, 1)
        out.append(im.astype(np.float32))
    return out


def photos() -> list[np.ndarray]:
    """The two photos scikit-learn ships, whole and as 4 crops each, in grayscale."""
    from sklearn.datasets import load_sample_images

    out = []
    for img in load_sample_images().images:
        gray = (img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)) / 255
        h, w = gray.shape
        out.append(gray)
        out += [gray[y : y + h // 2, x : x + w // 2] for y in (0, h // 2) for x in (0, w // 2)]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    args = parser.parse_args()
    clf = load_classifier("modality")
    print(f"model {clf.path}, OOD threshold {clf.ood.threshold:.2f}")
    for task, expect in (("pneumonia", "CXR"), ("brain-tumor", None)):
        spec = get_task(task)
        if dataset_path(spec) is None:
            print(f"{task}: dataset not found, skipped")
            continue
        ds = load_dataset(spec)
        idx = stratified_sample(ds.labels, args.n, seed=0)
        images = [im.astype(np.float32) / 255 for im in ds.images[idx]]
        report(f"{task} images ({spec.source.filename})", clf.predict_batch(images), expect)
    report("scikit-learn sample photos and crops", clf.predict_batch(photos()), None)
    report("synthetic pictures", clf.predict_batch(synthetic(200)), None)


if __name__ == "__main__":
    main()
