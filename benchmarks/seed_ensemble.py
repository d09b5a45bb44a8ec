"""Does an ensemble pay? Models of one split (e.g. trained with `--train-seed 0/1/2`) one by one, and the mean of
their logits, on that split's own validation images.

Each checkpoint's card gives its training settings; the validation images are rebuilt from the first one's (as
`medimg evaluate --split val` does), and checkpoints trained on another split are refused, since their validation
images would differ. Printed per model and for the mean of the logits: accuracy (the class of the largest logit),
AUC, and the card's single-image CPU predict time (an ensemble of N costs about N times one model). A two-class
task's verdict uses an operating threshold chosen for the model, which an ensemble would need chosen anew, so
for those the AUC is the comparison.

Usage:
    MEDIMG_DATA_DIR=../shared/data python -m benchmarks.seed_ensemble runs/a/pneumonia.pt runs/b/pneumonia.pt ...
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from medimg_core.data.datasets import load_dataset
from medimg_core.inference.metrics import auc_score
from medimg_core.inference.predict import load_classifier
from medimg_core.reports.evaluation import model_split_images
from medimg_core.training.fit import logits_and_features

SPLIT = ("task", "seed", "validation", "val_fraction", "max_per_class", "sources", "without", "held_out", "image_size")


def split_settings(card: dict) -> dict:
    """The training settings that decide a run's split and its images."""
    config = card["training"]["config"]
    return {key: config.get(key) for key in SPLIT}


def scores(logits: torch.Tensor, labels: np.ndarray, k: int) -> tuple[float, float | None]:
    """(accuracy, AUC) of logits over the task's k classes."""
    probs = torch.softmax(logits[:, :k], 1).numpy()
    return float((probs.argmax(1) == labels).mean()), auc_score(probs, labels)


def main() -> None:
    """Check the models share a split, rebuild its validation images, print each model and their mean."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="the task's own dataset the models were trained on (default: the downloaded one)")
    parser.add_argument("models", nargs="+", type=Path, help="checkpoints of one task, trained on one split")
    args = parser.parse_args()
    clfs = [load_classifier(path=p) for p in args.models]
    first = split_settings(clfs[0].card)
    for path, clf in zip(args.models, clfs):
        if split_settings(clf.card) != first:
            raise SystemExit(f"{path} was trained on another split or pool than {args.models[0]}: "
                             f"{split_settings(clf.card)} against {first}")
    spec = clfs[0].spec
    val = model_split_images(load_dataset(spec, args.data, other=True), clfs[0].card, "val")
    labels, k = val.labels, spec.num_classes
    print(f"{spec.name}: {len(val)} validation images ({clfs[0].card['data']['split']})")
    all_logits = []
    for path, clf in zip(args.models, clfs):
        logits, _ = logits_and_features(clf.model, val.images)
        all_logits.append(logits)
        accuracy, auc = scores(logits, labels, k)
        print(f"  {str(path):<50} accuracy (largest logit) {accuracy:.2%}  AUC {auc:.4f}  CPU {clf.card['speed']['predict_ms_median']:.1f} ms")
    accuracy, auc = scores(torch.stack(all_logits).mean(0), labels, k)
    ms = sum(clf.card["speed"]["predict_ms_median"] for clf in clfs)
    label = f"mean of the {len(clfs)} models' logits"
    print(f"  {label:<50} accuracy (largest logit) {accuracy:.2%}  AUC {auc:.4f}  CPU about {ms:.1f} ms")


if __name__ == "__main__":
    main()
