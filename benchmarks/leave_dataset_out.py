"""The leave-dataset-out table of a task: how its model does on datasets it never saw.

By default it prints the table recorded in the shipped model card (written by
`python -m medimg_core train --task T --folds K`); `--run` cross-validates anew with the given
settings instead (slow: one model per fold).

Usage:
    MEDIMG_DATA_DIR=../shared/data python -m benchmarks.leave_dataset_out --task modality
    MEDIMG_DATA_DIR=../shared/data python -m benchmarks.leave_dataset_out --task modality --run --folds 5 --epochs 12
"""
from __future__ import annotations

import argparse
import json

from medimg_core.models.checkpoint import default_model_path, read_card
from medimg_core.cli.main import train_config
from medimg_core.cli.parser import add_train_arguments
from medimg_core.reports.evaluation import open_set_report


def print_record(external: dict, chosen: dict) -> None:
    """Per-dataset rows, the overall numbers, the spread over folds and the chosen rejection values."""
    print(external.get("method", ""))
    for i, names in enumerate(external["folds"]):
        print(f"  fold {i + 1}: {', '.join(names)}")
    print(open_set_report(external["held_out"]))
    own = external["own_validation"]
    print("own validation split, over the fold models: " + ", ".join(
        f"{k} {v['mean']:.4f} ± {v['std']:.4f}" for k, v in own.items()))
    rates = [(f["held_out"].get("right_not_flagged"), f["held_out"].get("foreign_flagged")) for f in external["per_fold"]]
    print("per fold (held-out datasets): " + "; ".join(
        f"{'-' if a is None else f'{a:.1%}'} right and not flagged, {'-' if b is None else f'{b:.1%}'} of other kinds flagged"
        for a, b in rates))
    print("chosen: " + json.dumps(chosen))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_train_arguments(parser)
    parser.add_argument("--run", action="store_true", help="cross-validate anew instead of reading the model card")
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    if args.run:
        from medimg_core.training.crossval import cross_validate

        record = cross_validate(train_config(args), args.folds, args.data, progress=False)
        print_record(record, record["chosen"])
        return
    card = read_card(default_model_path(args.task))
    if "external" not in card:
        raise SystemExit(f"the {args.task} model card has no cross-validation by dataset; use --run")
    print_record(card["external"], card.get("rejection", {}))


if __name__ == "__main__":
    main()
