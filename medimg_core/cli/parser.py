"""The command line's grammar: every subcommand of `medimg` (`python -m medimg_core`) and its arguments.

`medimg_core.cli.main` runs them; the README's commands are checked against this parser (tests/test_readme_commands.py).
"""
from __future__ import annotations

import argparse
import functools
from pathlib import Path

from .audit import add_audit_parser
from ..tasks import SOURCES, TASKS


class DefaultsFormatter(argparse.HelpFormatter):
    """Help that ends each option's text with its default, unless the text already states it or there is none
    (no value, or an on/off flag)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default in (None, argparse.SUPPRESS) or isinstance(action.default, bool):
            return text
        if not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE):
            return text
        shown = " ".join(map(str, action.default)) if isinstance(action.default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})" if shown else text


def version() -> str:
    """The installed package's version ('unknown' when it runs from a checkout that was never installed)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("medimg")
    except PackageNotFoundError:
        return "unknown (not installed)"


def get_args_parser(prog: str = "python -m medimg_core") -> argparse.ArgumentParser:
    """The argument parser of every sub-command; `prog` is the name its usage lines give the command."""
    parser = argparse.ArgumentParser(prog=prog, description="medimg: medical image classification",
                                     formatter_class=DefaultsFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True,
                                parser_class=functools.partial(argparse.ArgumentParser, formatter_class=DefaultsFormatter))

    p = sub.add_parser("download", help="fetch a task's dataset, or another data source, into the data folder ($MEDIMG_DATA_DIR)")
    p.add_argument("task", choices=list(TASKS) + [s for s, src in SOURCES.items() if s not in TASKS and src.kind != "generated"],
                   help="a task (its own dataset) or a data source such as scan-kinds")
    p.add_argument("--from", dest="source", help="a local copy (archive, npz, zip or folder) or another URL")
    p.add_argument("--md5", help="checksum to enforce (default: the official one for the public URL)")

    p = sub.add_parser("train", help="train a model and write it with its model card")
    add_train_arguments(p)
    p.add_argument("--folds", type=int, default=0,
                   help="first cross-validate by dataset with this many folds (tasks with several sources); "
                        "the thresholds and temperature chosen there go into the shipped model and its card")
    p.add_argument("--own-cv", action="store_true", help="with --folds: also split the task's own train+val into "
                   "stratified folds (every image validated once) instead of using one validation split")
    p.add_argument("--ensemble", action="store_true", help="with --folds --own-cv: ship the fold models as one ensemble")
    p.add_argument("--out", type=Path, help="the run folder: the model <task>.pt, its card <task>.json and the training "
                   "state go there (default: runs/<task>/<date>-<time>); a path ending in .pt names the model file itself")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last saved epoch (same "
                   "command and settings; finished folds are not trained again; with nothing saved yet, it starts)")
    p.add_argument("--time-limit", type=float, metavar="MINUTES", help="stop after the first epoch that ends past this "
                   "many minutes, its state saved, and exit with status 3: --resume continues it (e.g. on a lent GPU with a time "
                   "limit)")

    p = sub.add_parser("search", help="basic hyperparameter search on validation (one factor at a time, or a grid)")
    add_train_arguments(p)
    p.add_argument("--vary", nargs="+", required=True, metavar="NAME=V1,V2",
                   help="values to try, e.g. lr=1e-3,3e-3 width=16,24 augment=true,false init=none,assets/models/modality.pt")
    p.add_argument("--grid", action="store_true", help="every combination instead of one factor at a time")
    p.add_argument("--out", type=Path, help="the record's file (default: runs/<task>/<date>-<time>-search/search.json; "
                   "`medimg ship` makes it the one the Models page shows)")

    p = sub.add_parser("calibrate", help="refit temperature and OOD statistics of a trained model on its own split")
    p.add_argument("--task", required=True, choices=list(TASKS), help="the task (its model and data)")
    p.add_argument("--data", help="the dataset it was trained on (default: the downloaded archive)")
    p.add_argument("--model", type=Path, help="checkpoint (default: the shipped model); a run's model is rewritten in "
                   "place, a shipped one never: its recalibrated copy goes to --out")
    p.add_argument("--out", type=Path, help="folder (or .pt file) for the recalibrated copy (default for a shipped "
                   "model: runs/<task>/<date>-<time>-calibrated/; `medimg ship` makes it the shipped one)")

    p = sub.add_parser("evaluate", help="metrics of a model on a labelled dataset")
    p.add_argument("--task", required=True, choices=list(TASKS), help="the task (its model and data)")
    p.add_argument("--data", help="archive, folder of <class>/<image>, or MedMNIST .npz (default: the downloaded set)")
    p.add_argument("--split", choices=["train", "val", "test"], help="npz split (default: test, or val when the file has no "
                   "test split); on an archive or folder: test = its official test split (a test/ or Testing/ folder "
                   "above the class folders), train or val = the images that played it in the model's training (its card)")
    p.add_argument("--model", type=Path, help="checkpoint (default: the shipped model)")
    p.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average each image with its left-right mirror")
    p.add_argument("--record", action="store_true",
                   help="write the numbers into the model card's 'test' section (shown, labelled, on the Models page); "
                        "refused when the data overlaps the model's training or validation data. A shipped model's card "
                        "is never changed: the model and its card are copied to --out")
    p.add_argument("--out", type=Path, help="with --record: the run folder for the copy of a shipped model and its "
                   "card (default: runs/<task>/<date>-<time>-test/)")

    p = sub.add_parser("predict", help="classify image files")
    p.add_argument("--task", required=True, choices=list(TASKS), help="the task (its model and data)")
    p.add_argument("files", nargs="+", type=Path, help="images, folders (searched recursively) or zip archives")
    p.add_argument("--model", type=Path, help="checkpoint (default: the shipped model)")
    p.add_argument("--format", choices=["text", "json", "csv"], default="text",
                   help="text: one line per file; json: one JSON object per line; csv: a header, then a row per file "
                        "(in every format a summary line follows on stderr)")
    p.add_argument("--json", dest="format", action="store_const", const="json", help="same as --format json")
    p.add_argument("--tta", action="store_true", help="test-time augmentation: average each image with its left-right "
                   "mirror (tasks whose images may be flipped)")

    p = sub.add_parser("embed", help="run a model over a task's whole pool (its dataset, supplements and foreign "
                                     "images) and map its features to 2-D (cached on disk)")
    p.add_argument("--task", required=True, choices=list(TASKS), help="the task (its model and data)")
    p.add_argument("--data", help="the task's own dataset (default: the downloaded archive)")
    p.add_argument("--own-only", action="store_true",
                   help="embed only the task's own dataset (not its supplements and foreign sources)")
    p.add_argument("--model", type=Path, help="checkpoint (default: the shipped model)")
    p.add_argument("--methods", nargs="+", choices=["pca", "tsne"], default=["pca", "tsne"], help="projections")
    p.add_argument("--max-per-class", type=int, help="embed at most this many random images per class")
    p.add_argument("--jobs", type=int, default=2, help="t-SNE threads")
    p.add_argument("--recompute", action="store_true", help="ignore the disk cache")
    p.add_argument("--out", type=Path, help="also write the shippable file (numbers only), e.g. assets/embeddings/<task>.npz")

    p = sub.add_parser("benchmark", help="measure a model's single-image CPU latency and record it in its model card")
    p.add_argument("--task", required=True, choices=list(TASKS), help="the task (its model and data)")
    p.add_argument("--model", type=Path, help="checkpoint (default: the shipped model)")
    p.add_argument("--card", type=Path, help="model card to update (default: the one beside the checkpoint; for a "
                   "shipped model, that of its copy in --out)")
    p.add_argument("--out", type=Path, help="run folder for the copy of a shipped model and its updated card (default: "
                   "runs/<task>/<date>-<time>-benchmark/; `medimg ship` makes it the shipped one)")
    p.add_argument("--repeats", type=int, default=200, help="timed predictions of one image")

    p = sub.add_parser("duplicates", help="count exact and near-duplicate images (perceptual hash) in a task's dataset")
    p.add_argument("--task", required=True, choices=list(TASKS), help="the task (its model and data)")
    p.add_argument("--data", help="archive, folder of <class>/<image>, or MedMNIST .npz (default: the downloaded set)")
    p.add_argument("--max-distance", type=int, default=4, help="near-duplicates differ in at most this many of 64 bits (default 4)")
    p.add_argument("--model", type=Path, help="also count its validation images with a near-duplicate in its training "
                   "(default: the shipped model)")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    add_audit_parser(sub)
    sub.add_parser("info", help="list the tasks, their data and shipped models, and the folders searched")

    p = sub.add_parser("ship", help="make a run's model (or search record) the shipped one of its task; the previous "
                                    "model, card and embedding map are kept in <models>/previous/")
    p.add_argument("run", type=Path, help="a run folder (holding <task>.pt and its card, or search.json), a .pt file, "
                   "or a search record")
    p.add_argument("--embed", action="store_true", help="also compute the new model's embedding map when its data is "
                   "in the data folder (minutes: t-SNE over every image) and ship it")
    p.add_argument("--data", help="with --embed: the task's own dataset (default: the downloaded archive)")
    return parser


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The training settings shared by `train` and `search`."""
    p.add_argument("--task", required=True, choices=list(TASKS), help="the task (its model and data)")
    p.add_argument("--data", help="dataset path (default: the downloaded archive)")
    p.add_argument("--architecture", default="compact-cnn", choices=["compact-cnn", "resnet18", "resnet50"],
                   help="the network (resnet50: full width only, a comparison too large to ship)")
    p.add_argument("--width", type=int, help="channels of the first stage (default: 16 for compact-cnn, 64 for the ResNets)")
    p.add_argument("--dropout", type=float, default=0.2, help="dropout before the classifier head")
    p.add_argument("--epochs", type=int, default=8, help="passes over the training images (one-cycle schedule)")
    p.add_argument("--batch-size", type=int, default=128, help="images per optimiser step")
    p.add_argument("--lr", type=float, default=3e-3, help="peak learning rate (AdamW, one-cycle)")
    p.add_argument("--weight-decay", type=float, default=1e-4, help="AdamW weight decay")
    p.add_argument("--no-augment", dest="augment", action="store_false", help="train without augmentation")
    p.add_argument("--image-size", type=int, help="input side in pixels (default: the task's own)")
    p.add_argument("--augment-strength", type=float, default=1.0, help="scale every augmentation range (default 1)")
    # augment.AUGMENT_SETS's names, written out so that the parser does not import torch (a test names each set here)
    p.add_argument("--augment-set", default="standard", choices=["standard", "across-sources", "x-ray", "light"],
                   help="across-sources adds random intensity windows, background level, resolution and burned-in text; "
                        "x-ray: exposure, contrast, gamma, blur, noise, resolution and marks, zooming in, no black bars; "
                        "light: flips, rotations, zoom, shifts and gamma only")
    p.add_argument("--input-norm", default="none", choices=["none", "equalize", "clahe"],
                   help="equalize: the model histogram-equalises every input first (exposure and processing drop out); "
                        "clahe: contrast-limited adaptive equalisation, tile by tile")
    p.add_argument("--progressive-from", type=int, metavar="PIXELS",
                   help="progressive resizing: the first epochs train at this input side, rising to the full size")
    p.add_argument("--final-size-epochs", type=int, default=0, metavar="N",
                   help="with --progressive-from: the last N epochs train at the full size (at least 1)")
    p.add_argument("--teacher", nargs="+", metavar="CHECKPOINT", help="distil: also learn this trained model's soft "
                   "outputs (a larger model of the same task, e.g. trained on a GPU); several: the mean of their logits")
    p.add_argument("--distill-alpha", type=float, default=0.5, help="with --teacher: the soft targets' share of the loss")
    p.add_argument("--distill-temperature", type=float, default=4.0, help="with --teacher: the soft targets' temperature")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto: bf16 autocast on CUDA, fp32 on the CPU; bf16: also on the CPU (fast where it has AMX)")
    p.add_argument("--no-sources", dest="sources", action="store_false",
                   help="train on the task's own dataset only (not its supplements and foreign sources)")
    p.add_argument("--without", nargs="+", default=[], metavar="SOURCE",
                   help="leave these supplements or foreign sources out of the pool (e.g. synthetic), to measure "
                        "what they bring")
    p.add_argument("--hold-out", nargs="+", default=[], metavar="DATASET",
                   help="datasets (manifest names) that validate instead of train")
    p.add_argument("--source-power", type=float, default=0.5,
                   help="a (dataset, class) group of n images is drawn n**power times as often as one image (default 0.5)")
    p.add_argument("--epoch-size", type=int, help="images drawn per epoch of a multi-source run (default: all)")
    p.add_argument("--max-foreign-per-dataset", type=int, default=600,
                   help="at most this many images of other kinds from each dataset (default 600)")
    p.add_argument("--balance", action="store_true", help="weight the loss by inverse class frequency")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="cross-entropy label smoothing (default 0)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="share of the own images held out for validation")
    p.add_argument("--validation", default="random", choices=["random", "atypical", "earliest"],
                   help="the own validation split: random (duplicates and patients kept together), atypical (the "
                        "patients least like the rest by exposure, contrast, noise, sharpness, border and marks) or "
                        "earliest (the lowest patient numbers of each class: a split by time)")
    p.add_argument("--max-per-class", type=int, help="train on at most this many images per class")
    p.add_argument("--seed", type=int, default=0, help="seed of the split, the subset and the training")
    p.add_argument("--train-seed", type=int, help="seed of the training alone (weights, order, augmentation), so that "
                   "models of one split differ only there, e.g. teachers of an ensemble (default: --seed)")
    p.add_argument("--no-baseline", dest="baseline", action="store_false",
                   help="skip the PCA + logistic-regression baseline")
    p.add_argument("--init", help="fine-tune: start from this checkpoint's weights (e.g. assets/models/modality.pt), "
                                  "or 'imagenet' for resnet18 when torchvision's weights are cached locally")
    p.add_argument("--pretrained", choices=["imagenet"], help="same as --init imagenet")
    p.add_argument("--add-other", action="store_true",
                   help="keep --init (a model of the same task) as it is and train only a new 'other' output on the "
                        "foreign images")
