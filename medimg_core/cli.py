"""Command line: download, train, search, calibrate, evaluate, predict, embed, benchmark, duplicates, info, ship.

Installed as the `medimg` command (pyproject.toml); `python -m medimg_core` runs the same main(). The
arguments of every command are in `cli_parser.py`.

Runs write to run folders (runs.py); only `ship` changes the shipped models, cards and maps (ship.py).
Every command prints a clear one-line error (never a traceback) and exits non-zero when the
run itself fails; `predict` reports unreadable files per file and exits 1 only when no input could be read.
"""
from __future__ import annotations

import json
import os
import shlex
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .cli_parser import get_args_parser
from .tasks import TASKS, get_source, get_task

if TYPE_CHECKING:
    from .training import TrainConfig


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser(program_name()).parse_args(argv)
    args.command_line = "python -m medimg_core " + " ".join(shlex.quote(a) for a in argv)  # recorded in model cards
    from .data import DataError

    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # inside the try, so a closed pipe is caught below
        return status
    except (DataError, FileNotFoundError, ValueError, KeyError) as err:
        print(f"error: {err.args[0] if isinstance(err, KeyError) else err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (`medimg info | head`): stop quietly, as other tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def program_name() -> str:
    """`medimg` when started as the installed console script, else `python -m medimg_core`."""
    return "medimg" if Path(sys.argv[0]).name == "medimg" else "python -m medimg_core"


def cmd_download(args) -> int:
    from tqdm.auto import tqdm

    from .data import download, source_of

    spec = get_task(args.task) if args.task in TASKS else get_source(args.task)
    with tqdm(unit="B", unit_scale=True, desc=source_of(spec).filename) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total or None
            bar.n = done
            bar.refresh()

        path = download(spec, args.source, md5=args.md5, progress=progress)
    print(f"{spec.name}: {path}")
    return 0


def train_config(args) -> TrainConfig:
    """The TrainConfig given by the shared training arguments."""
    from .training import TrainConfig

    if args.init and args.pretrained:
        raise ValueError("give either --init or --pretrained, not both")
    return TrainConfig(task=args.task, architecture=args.architecture, width=args.width or (64 if args.architecture == "resnet18" else 16),
                       dropout=args.dropout, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       weight_decay=args.weight_decay, augment=args.augment, augment_strength=args.augment_strength,
                       image_size=args.image_size, balance=args.balance,
                       val_fraction=args.val_fraction, max_per_class=args.max_per_class, seed=args.seed,
                       baseline=args.baseline, init=args.init or args.pretrained, augment_set=args.augment_set,
                       device=args.device, sources=args.sources, held_out=list(args.hold_out),
                       source_power=args.source_power, epoch_size=args.epoch_size,
                       max_foreign_per_dataset=args.max_foreign_per_dataset, add_other=args.add_other,
                       label_smoothing=args.label_smoothing, own_cv=getattr(args, "own_cv", False),
                       ensemble=getattr(args, "ensemble", False), precision=args.precision,
                       validation=args.validation, progressive_from=args.progressive_from,
                       final_size_epochs=args.final_size_epochs, input_norm=args.input_norm, teacher=args.teacher,
                       distill_alpha=args.distill_alpha, distill_temperature=args.distill_temperature)


def cmd_search(args) -> int:
    from .runs import new_run_dir, protected, ship_hint
    from .search import parse_space, search, write_search

    out = args.out or new_run_dir(args.task, "search") / "search.json"
    if protected(out):
        raise ValueError(f"{out} is a shipped file and searches never write there: give --out a run folder's file, "
                         "then make it the shipped record with: medimg ship FILE")
    record = search(train_config(args), parse_space(args.vary), args.data, grid=args.grid, command=args.command_line)
    out = write_search(record, out)
    print(f"wrote {out} ({ship_hint(out)}): {len(record['runs'])} runs on {record['validation']} validation images, "
          "best first:")
    for r in record["runs"]:
        auc = "" if r["auc"] is None else f"  AUC {r['auc']:.4f}"
        print(f"  {r['label']:<40} accuracy {r['accuracy']:.4%}  macro-F1 {r['macro_f1']:.4f}{auc}  ({r['seconds']:.0f} s)")
    return 0


def run_paths(task: str, out: Path | None, resume: bool) -> tuple[Path, Path]:
    """(model file, state folder) of a training run: <out>/<task>.pt and <out>/state, or a given .pt file and
    <its stem>-state beside it; by default a new folder runs/<task>/<date>-<time>, so no run touches assets/."""
    import time

    if resume and out is None:
        raise ValueError("--resume continues the run in --out: give the folder (or .pt file) of the run to continue")
    out = out or Path("runs") / task / time.strftime("%Y%m%d-%H%M%S")
    if out.suffix == ".pt":
        return out, out.with_name(out.stem + "-state")
    return out / f"{task}.pt", out / "state"


def cmd_train(args) -> int:
    from .training import train

    import time

    from .fit import RunStopped

    cfg = train_config(args)
    out, state = run_paths(args.task, args.out, args.resume)
    if args.resume and not state.is_dir():  # nothing saved yet (a scripted run started again): start it
        print(f"note: no saved state in {state}: the run starts from its first epoch", file=sys.stderr)
    deadline = time.monotonic() + args.time_limit * 60 if args.time_limit else None
    try:
        if args.folds:
            from .crossval import train_with_crossval

            _, card = train_with_crossval(cfg, args.folds, args.data, out, command=args.command_line, state_dir=state,
                                          resume=args.resume, deadline=deadline)
        else:
            _, card = train(cfg, args.data, out, command=args.command_line, state_dir=state, resume=args.resume,
                            deadline=deadline)
    except RunStopped as stop:
        print(stop)
        return 3  # not finished: no model was written
    v = card["validation"]
    print(f"wrote {out} and {out.with_suffix('.json')}: validation accuracy {v['accuracy']:.4%}, "
          f"macro-F1 {v['macro_f1']:.4f}, ECE {v['ece']:.4f} (n={v['n']}), {card['training']['seconds']:.0f} s")
    if card.get("external", {}).get("held_out"):
        from .evaluation import held_out_line

        print(held_out_line(card["external"]["held_out"]))
    if "crossval" in card:
        from .compare import crossval_line

        print(crossval_line(card))
    return 0


def cmd_calibrate(args) -> int:
    from .recalibrate import recalibrate
    from .checkpoint import default_model_path
    from .runs import output_path, ship_hint

    path = args.model or default_model_path(args.task)
    out = output_path(path, args.task, args.out, "calibrated")
    card = recalibrate(path, args.data, command=args.command_line, out=out, progress=True)
    print(f"recalibrated {path}{f' into {out}' if out != path else ''}: temperature {card['calibration']['temperature']}, "
          f"OOD threshold {card['ood']['threshold']}, validation ECE {card['validation']['ece']:.4f}"
          + (f"; {ship_hint(out.parent)}" if out != path else ""))
    return 0


def cmd_evaluate(args) -> int:
    from .data import dataset_path, default_npz_split, load_dataset
    from .evaluation import evaluate_classifier, model_split_images, open_set_report
    from .overlap import training_overlap
    from .predict import load_classifier

    clf = load_classifier(args.task, args.model)
    data = Path(args.data) if args.data else dataset_path(clf.spec)
    npz = data is not None and data.suffix == ".npz"
    split = args.split or (default_npz_split(data) if npz else None)
    with progress_bar("evaluate", "images") as (bar, progress):
        ds = load_dataset(clf.spec, data, split=split if npz else None, other=True, progress=progress)
        if split == "test" and not npz:  # an archive or folder: its official test split (a test/ or Testing/ folder)
            ds = official_test_split(ds, data)
        elif split and not npz:  # an archive or folder: the images that played this part in the model's training
            ds = model_split_images(ds, clf.card, split)
        bar.set_postfix_str(f"classifying {len(ds):,} images", refresh=True)
        result = metrics = evaluate_classifier(clf, ds, tta=args.tta)
        overlap = training_overlap(clf, ds, data, pixels=args.record)  # --record also compares pixels (reads the source)
    result.update(independence=overlap.to_dict(), data_fingerprint=ds.fingerprint)
    if not args.json:
        print(f"{clf.spec.name} on {data or 'the downloaded dataset'}{f' ({split} split)' if split else ''}"
              f"{', with TTA' if result['tta'] else ''} ({metrics['n']} images of its classes): "
              f"accuracy {metrics['accuracy']:.4%}, macro-F1 {metrics['macro_f1']:.4f}, "
              f"AUC {metrics['auc'] if metrics['auc'] is None else round(metrics['auc'], 4)}, ECE {metrics['ece']:.4f}, "
              f"flagged {result['ood_flag_rate']:.2%}")
        if "open_set" in result:
            print(open_set_report(result["open_set"]))
        if not overlap.independent:
            print(f"note: not a test of this model: {overlap.sentence()}")
    if args.record:
        from .cli_ship import record_evaluation

        record_evaluation(args, clf, result, overlap, f"{Path(data).name if data else clf.spec.source.filename}"
                          + (f", {split} split" if split else ""))
    if args.json:
        print(json.dumps(result))
    return 0


def official_test_split(ds, data: Path | None):
    """The images of an archive or folder that its own layout puts in the test split (folders.split_of)."""
    from .data import DataError

    test = np.flatnonzero(ds.split == "test")
    if not len(test):
        raise DataError(f"{data} has no official test split (a test/ or Testing/ folder above its class folders); "
                        "evaluate it without --split, or with --split train or val for the images that played that "
                        "part in the model's training")
    return ds.subset(test)


@contextmanager
def progress_bar(desc: str, unit: str):
    """A tqdm bar on stderr (shown only on a terminal) and a `Progress` callback (done, total) that moves it."""
    from tqdm.auto import tqdm

    with tqdm(desc=desc, unit=unit, disable=None) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total or None
            bar.n = done
            bar.refresh()

        yield bar, progress


def cmd_predict(args) -> int:
    from tqdm.auto import tqdm

    from .predict import load_classifier
    from .predict_output import Summary, WithTTA, csv_header, csv_row

    clf = load_classifier(args.task, args.model)
    if args.tta and not clf.can_flip:
        print(f"note: --tta changes nothing for {clf.spec.name}: its images may not be mirrored", file=sys.stderr)
    summary = Summary()
    if args.format == "csv":
        print(csv_header(clf.classes), flush=True)
    with tqdm(desc="predict", unit="file", disable=None) as bar:  # on stderr, and only on a terminal
        for given in args.files:
            for row in predict_rows(WithTTA(clf) if args.tta else clf, given):
                summary.add(row)
                line = (json.dumps(row) if args.format == "json" else csv_row(row, clf.classes) if args.format == "csv"
                        else prediction_line(row, clf.spec.name))
                if bar.disable:
                    print(line, flush=True)
                else:
                    tqdm.write(line, file=sys.stdout)
                bar.update()
    print(summary.line(), file=sys.stderr)  # stdout keeps one line (row) per file, in every format
    return 0 if summary.read else 1


def predict_rows(clf, given: Path):
    """One result row per image of a predict argument (a file, folder or zip), or one row with its error."""
    from .dicom_header import read_dicom_header
    from .folders import FolderError, predict_inputs
    from .header_check import header_dict
    from .imaging import ImageReadError, read_image

    try:
        for file, source in predict_inputs(given):
            row = empty_row(file)
            data = source if isinstance(source, Path) else source()
            try:
                image = read_image(data)
            except ImageReadError as err:
                row["error"] = str(err)
            else:
                header = read_dicom_header(data)  # a DICOM's header joins its pixels in the verdict (verdict.py)
                prediction = clf.predict(image, header=header)
                row.update(prediction.to_dict(), dicom=header_dict(header, clf.spec, prediction))
            yield row
    except FolderError as err:
        yield {**empty_row(str(given)), "error": str(err)}


def empty_row(file: str) -> dict:
    """predict's JSON row for one file before its prediction (or error) is filled in (the fields of a Prediction,
    then dicom: see header_report, and error). label is null whenever the image is not recognised; closest holds
    the class it is closest to, decided_by "pixels", "header" or "both", reason why it is not recognised."""
    return {"file": file, "label": None, "closest": None, "confidence": None, "probabilities": None,
            "in_distribution": None, "ood_score": None, "other_probability": None, "decided_by": None, "reason": None,
            "basis": None, "threshold": None, "dicom": None, "error": None}


def prediction_line(row: dict, task: str, positive_class: str | None = None) -> str:
    """predict's text line for one file: the verdict in words (a screening task's with its probability and threshold;
    'not recognised' with the closest class and why) and the sentence that says what decided; or the error.

    positive_class: a screening task's positive class (default: the registered task's)."""
    from .predict import Prediction
    from .verdict import label_text

    if row["error"]:
        return f"{row['file']}: error: {row['error']}"
    if positive_class is None and task in TASKS:
        positive_class = TASKS[task].positive_class
    prediction = Prediction.from_dict(row)
    why = f" {prediction.reason}" if prediction.label is None else ""
    return f"{row['file']}: {label_text(prediction, positive_class)}.{why} {prediction.basis}".rstrip()


def cmd_benchmark(args) -> int:
    from .checkpoint import card_path
    from .predict import load_classifier
    from .speed import predict_latency

    from .runs import protected, ship_hint, writable_model

    clf = load_classifier(args.task, args.model)
    if args.card and protected(args.card):
        raise ValueError(f"{args.card} is a shipped card and benchmarks never write there: leave out --card (a shipped "
                         "model's card is updated in a copy in --out), then ship that copy with: medimg ship RUN")
    speed = predict_latency(clf, repeats=args.repeats)
    path = args.card or card_path(writable_model(clf.path, clf.spec.name, args.out, "benchmark"))
    card = json.loads(path.read_text()) if path.is_file() else {}
    card["speed"] = speed
    path.write_text(json.dumps(card, indent=2) + "\n")
    shipped = "" if args.card or path == card_path(clf.path) else f"; {ship_hint(path.parent)}"
    print(f"{clf.spec.name} ({clf.path}): predict median {speed['predict_ms_median']} ms, "
          f"p95 {speed['predict_ms_p95']} ms over {args.repeats} ({speed['threads']} threads); written to {path}{shipped}")
    return 0


def cmd_duplicates(args) -> int:
    from .checkpoint import default_model_path, read_card
    from .data import load_dataset
    from .duplicate_report import find_duplicates

    spec = get_task(args.task)
    report = find_duplicates(load_dataset(spec, args.data), args.max_distance,
                             card=read_card(args.model or default_model_path(spec.name)))
    print(json.dumps({"task": spec.name, **report.to_dict()}) if args.json else "\n".join(report.lines(spec.name)))
    return 0


def cmd_info(args) -> int:
    from .checkpoint import default_model_path, models_dir, read_card
    from .data import dataset_path

    from .data import data_dir

    folder, own = models_dir(), bool(os.environ.get("MEDIMG_MODELS_DIR"))
    print(f"models: {folder} ({'from $MEDIMG_MODELS_DIR' if own else 'the shipped models; $MEDIMG_MODELS_DIR names another folder'})")
    if not folder.is_dir():
        print("  this folder does not exist: set MEDIMG_MODELS_DIR to a folder of <task>.pt models (such as a "
              "checkout's assets/models), or install the project (pip install . or its wheel carries the shipped models)")
    given = bool(os.environ.get("MEDIMG_DATA_DIR"))
    print(f"data: {data_dir()} ({'from $MEDIMG_DATA_DIR' if given else 'the default; $MEDIMG_DATA_DIR names another folder'}"
          "; the tests read ../shared/data beside the checkout unless $MEDIMG_DATA_DIR says otherwise)")
    for spec in TASKS.values():
        path = default_model_path(spec.name)
        card = read_card(path)
        acc = card.get("validation", {}).get("accuracy")
        if acc is not None:
            model = f"{'model' if own else 'shipped model'}, validation accuracy {acc:.2%}"
        else:
            model = "model file, no model card" if path.is_file() else f"no model ({path.name} not in the models folder)"
        data = dataset_path(spec) or "not downloaded"
        print(f"{spec.name}: {spec.title}\n  classes: {', '.join(spec.classes)}\n  data: {data}\n  {model}")
    return 0


def embed_data(clf, data: str | None, own_only: bool):
    """The images `embed` maps: the task's pool as its model's card built it, or its own dataset alone."""
    from .training import TrainConfig, training_data

    cfg = clf.card.get("training", {}).get("config", {})
    run = TrainConfig(task=clf.spec.name, sources=not own_only, seed=cfg.get("seed", 0),
                      max_foreign_per_dataset=cfg.get("max_foreign_per_dataset", 600))
    ds, notes = training_data(clf.spec, run, data)
    for note in notes:
        print(f"note: {note}", flush=True)
    return ds


def cmd_embed(args) -> int:
    import time

    from tqdm.auto import tqdm

    from .embed import embedding_for, save_embedding
    from .predict import load_classifier
    from .training import limit_per_class

    clf = load_classifier(args.task, args.model)
    started = time.perf_counter()
    ds = limit_per_class(embed_data(clf, args.data, args.own_only), args.max_per_class, 0)
    with tqdm(total=1000, desc="embed", bar_format="{l_bar}{bar}| {elapsed}<{remaining} {postfix}") as bar:
        def progress(fraction: float, message: str) -> None:
            bar.n = round(fraction * 1000)
            bar.set_postfix_str(message, refresh=True)

        emb = embedding_for(clf, ds, args.methods, progress=progress, use_cache=not args.recompute, n_jobs=args.jobs)
    took = time.perf_counter() - started
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in emb.meta.get("seconds", {}).items())
    how = "read from the disk cache" if emb.loaded_from == "cache" else "computed and cached"
    when = "when computed: " if emb.loaded_from == "cache" else ""
    mine = emb.mine
    print(f"{clf.spec.name}: {len(emb):,} images, {', '.join(emb.coords)} {how} in {took:.1f} s ({when}{stages}); "
          f"accuracy on its own {int(mine.sum()):,} images ({emb.own}) {float((~emb.wrong[mine]).mean()):.4%}, "
          f"{int(emb.wrong[mine].sum())} misclassified, {int(emb.ood[mine].sum())} flagged out-of-distribution")
    if not mine.all():
        print(pool_line(emb))
    if args.out:
        out = save_embedding(emb, args.out)
        print(f"wrote {out} ({out.stat().st_size / 1024:.0f} KiB)")
    return 0


def pool_line(emb) -> str:
    """One line on a pool map's images of other datasets: same kinds named right, other kinds flagged."""
    others, foreign = ~emb.mine & ~emb.foreign, emb.foreign
    parts = [f"{len(np.unique(emb.origin[~emb.mine]))} other datasets"]
    if others.any():
        parts.append(f"{int(others.sum()):,} images of its kinds, {float((~emb.wrong[others]).mean()):.1%} named right")
    if foreign.any():
        parts.append(f"{int(foreign.sum()):,} of other kinds, {float(emb.ood[foreign].mean()):.1%} flagged")
    return "  " + "; ".join(parts)


def cmd_ship(args) -> int:
    import argparse

    from .checkpoint import ASSETS_DIR, models_dir, read_card
    from .cli_ship import readme_note
    from .data import dataset_path
    from .ship import ship

    report = ship(args.run)
    print("\n".join(report.lines()))
    if args.embed and report.shipped.suffix == ".pt":
        from .ship import embedding_path

        target = embedding_path(report.task, models_dir())
        if target is None or not (args.data or dataset_path(get_task(report.task))):
            print("  embedding map not computed: " + ("this models folder has no maps folder beside it "
                  "($MEDIMG_EMBEDDINGS_DIR)" if target is None else f"the {report.task} dataset is not downloaded "
                  f"(medimg download {report.task}, or give --data)"))
        else:  # the map of the data the model trained on: its task's pool, or its own dataset alone
            pool = read_card(report.shipped).get("training", {}).get("config", {}).get("sources", True)
            cmd_embed(argparse.Namespace(task=report.task, data=args.data, own_only=not pool, model=report.shipped,
                                         methods=["pca", "tsne"], max_per_class=None, jobs=2, recompute=False,
                                         out=target))
    if models_dir().resolve() == ASSETS_DIR.resolve():
        print(readme_note())
    return 0


COMMANDS = {"download": cmd_download, "train": cmd_train, "search": cmd_search, "calibrate": cmd_calibrate,
            "evaluate": cmd_evaluate, "predict": cmd_predict, "embed": cmd_embed, "benchmark": cmd_benchmark,
            "duplicates": cmd_duplicates, "info": cmd_info, "ship": cmd_ship}
