"""Out-of-fold numbers of a shipped fold ensemble's members, with and without test-time augmentation.

Each member of an ensemble made by `medimg train --folds K --own-cv --ensemble` predicts the fold of
the task's own train+val images it never trained on, once as given and once averaged with the
left-right mirror. The temperature and operating threshold are the shipped ones (chosen on the
pooled out-of-fold predictions without TTA), so this compares the two on equal terms.

Usage: MEDIMG_DATA_DIR=../shared/data python -m benchmarks.fold_tta --task pneumonia
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from medimg_core import load_classifier
from medimg_core.training.crossval import calibrated
from medimg_core.data.datasets import dataset_path, load_dataset
from medimg_core.inference.metrics import compute_metrics
from medimg_core.models.architectures import Ensemble
from medimg_core.data.splits import own_folds


def member_probs(clf, member, images: np.ndarray, tta: bool) -> np.ndarray:
    """Calibrated class probabilities of one member (averaged with the mirror when tta)."""
    x = torch.from_numpy(images).float().div(255)[:, None]
    with torch.no_grad():
        views = [member(x)] + ([member(x.flip(-1))] if tta else [])
    return np.mean([calibrated(v.numpy(), len(clf.classes), clf.temperature)[0] for v in views], 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="pneumonia")
    args = parser.parse_args()
    clf = load_classifier(args.task)
    if not isinstance(clf.model, Ensemble):
        raise SystemExit(f"the shipped {args.task} model is not a fold ensemble")
    ds = load_dataset(clf.spec, dataset_path(clf.spec))
    folds = own_folds(ds, len(clf.model.members), clf.card["training"]["config"]["seed"], clf.spec.near_duplicate_distance)
    for tta in (False, True):
        probs = [member_probs(clf, m, ds.images[f], tta) for m, f in zip(clf.model.members, folds)]
        per = [compute_metrics(p, ds.labels[f], clf.classes)["auc"] for p, f in zip(probs, folds)]
        p, y = np.concatenate(probs), np.concatenate([ds.labels[f] for f in folds])
        m = compute_metrics(p, y, clf.classes, clf.label_indices(p))
        rates = np.diag(np.array(m["confusion_matrix"])) / np.array(m["confusion_matrix"]).sum(1)
        print(f"{'with' if tta else 'without'} TTA: pooled AUC {m['auc']:.4f}, accuracy {m['accuracy']:.4f}, "
              f"recall per class {dict(zip(clf.classes, rates.round(4).tolist()))}, ECE {m['ece']:.4f}; "
              f"AUC per fold {np.mean(per):.4f} ± {np.std(per, ddof=1):.4f}")


if __name__ == "__main__":
    main()
