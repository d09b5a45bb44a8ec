"""Score several trained models of one task on their own validation splits and on the validation images common
to all of them: for runs whose splits differ a little (the atypical split ranks patients by traits measured at
the run's input size), the common images are validation in every run, so no model trained on them.

Usage: MEDIMG_DATA_DIR=../shared/data python -m benchmarks.shared_validation --task pneumonia \
           --data ../shared/data/chest-xray-pneumonia-224.tar.gz RUN.pt RUN.pt ...
Prints one Markdown table row per model.
"""
from __future__ import annotations

import argparse

import numpy as np

from medimg_core.data.datasets import load_dataset
from medimg_core.inference.predict import load_classifier
from medimg_core.reports.evaluation import evaluate_classifier, model_split_images


def recall(result: dict, name: str) -> float:
    """One class's recall from evaluate_classifier's result (NaN where the class is absent)."""
    return result.get("per_class", {}).get(name, {}).get("recall", float("nan"))


def main() -> None:
    """Load each model's validation split, find the common images, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", required=True)
    ap.add_argument("--data", required=True, help="the archive the models were trained on")
    ap.add_argument("models", nargs="+", help="checkpoints (.pt) with their cards beside them")
    args = ap.parse_args()
    clfs = [load_classifier(args.task, m) for m in args.models]
    vals = [model_split_images(load_dataset(c.spec, args.data, other=True), c.card, "val") for c in clfs]
    common = set.intersection(*(set(np.asarray(v.files).tolist()) for v in vals))
    print(f"validation images common to all {len(clfs)} models: {len(common):,}\n")
    print("| model | input | training s | AUC, own split | accuracy, own split | AUC, common | accuracy, common | "
          "recall per class, common |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for path, clf, val in zip(args.models, clfs, vals):
        own = evaluate_classifier(clf, val)
        shared = evaluate_classifier(clf, val.subset(np.flatnonzero(np.isin(np.asarray(val.files), list(common)))))
        recalls = " / ".join(f"{recall(shared, c):.1%}" for c in clf.classes)
        print(f"| {path} | {clf.spec.image_size} px | {clf.card['training']['seconds']:,.0f} | {own['auc']:.4f} | "
              f"{own['accuracy']:.2%} | {shared['auc']:.4f} | {shared['accuracy']:.2%} | {recalls} |", flush=True)


if __name__ == "__main__":
    main()
