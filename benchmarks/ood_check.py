"""How each shipped model treats images that are not of its kind (and some that are).

Per task, on samples of the other tasks' datasets, scikit-learn's sample photos and synthetic
pictures (noise, gradients, stripes, shapes; drawn with another seed than the synthetic images
in training): the share flagged as not recognised, and the labels given. The models were
trained with some of these sources as foreign images (for example brain MRI slices for the
scan-type model), so these are checks of behaviour, not estimates for new sources: those come
from the cross-validation by dataset (benchmarks/leave_dataset_out.py).

Usage: MEDIMG_DATA_DIR=../shared/data python -m benchmarks.ood_check [--n 600]
"""
from __future__ import annotations

import argparse
from collections import Counter

import numpy as np

from medimg_core import get_task, load_classifier
from medimg_core.data.datasets import dataset_path, load_dataset
from medimg_core.data.splits import stratified_sample
from medimg_core.data.synthetic import synthetic_pictures
from medimg_core.tasks import TASKS


def report(name: str, preds, expect_label: str | None = None) -> None:
    """Print the flag rate and label counts of one group."""
    n = len(preds)
    flagged = sum(not p.in_distribution for p in preds)
    line = f"  {name}: n={n}, flagged {flagged / n:.1%}"
    if expect_label:
        ok = sum(p.label == expect_label and p.in_distribution for p in preds)
        line += f", labelled {expect_label} and not flagged {ok / n:.1%}"
    labels = Counter(p.label for p in preds if p.in_distribution)
    print(line + f"; labels of the unflagged {dict(labels.most_common())}")


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


def dataset_images(task: str, n: int) -> tuple[list[np.ndarray], list[str]] | None:
    """A class-balanced sample of a task's own dataset (at its input size) and the class names, or None."""
    spec = get_task(task)
    if dataset_path(spec) is None:
        return None
    ds = load_dataset(spec)
    idx = stratified_sample(ds.labels, n, seed=0)
    return [im.astype(np.float32) / 255 for im in ds.images[idx]], [spec.classes[c] for c in ds.labels[idx]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    args = parser.parse_args()
    samples = {task: dataset_images(task, args.n) for task in TASKS}
    for task in TASKS:
        try:
            clf = load_classifier(task)
        except (FileNotFoundError, ValueError):
            continue
        print(f"{task} ({clf.path}): kinds {', '.join(clf.spec.image_kinds)}")
        for other, sample in samples.items():
            if other == task or sample is None:
                continue
            images, names = sample
            kinds, fixed = set(clf.spec.image_kinds), get_task(other).source.image_kind
            of_kind = [fixed or c for c in names]  # a dataset of one kind, or one kind per class folder
            alien = [im for im, kind in zip(images, of_kind) if kind not in kinds]
            mine = [(im, kind) for im, kind in zip(images, of_kind) if kind in kinds]
            if alien:
                report(f"{other} images of other kinds", clf.predict_batch(alien))
            if mine:
                expect = mine[0][1] if mine[0][1] in clf.classes else None
                report(f"{other} images of its kind", clf.predict_batch([im for im, _ in mine]), expect)
        report("scikit-learn sample photos and crops", clf.predict_batch(photos()))
        report("synthetic pictures", clf.predict_batch(synthetic_pictures(210, seed=0)))


if __name__ == "__main__":
    main()
