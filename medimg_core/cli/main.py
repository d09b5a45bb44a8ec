"""Command line: download, train, search, calibrate, evaluate, predict, embed, benchmark, duplicates, info, ship.

Installed as the `medimg` command (pyproject.toml); `python -m medimg_core` runs the same main(). The
arguments of every command are in `parser.py`; predict runs in predict.py, evaluate, benchmark, duplicates and
embed in reports.py, audit in audit.py.

Runs write to run folders (runs.py); only `ship` changes the shipped models, cards and maps (ship.py).
Every command prints a clear one-line error (never a traceback) and exits non-zero when the
run itself fails; `predict` reports unreadable files per file and exits 1 only when no input could be read.
"""
from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING


from .audit import cmd_audit
from .parser import get_args_parser
from .predict import cmd_predict
from .reports import cmd_benchmark, cmd_duplicates, cmd_embed, cmd_evaluate
from ..tasks import TASKS, get_source, get_task

if TYPE_CHECKING:
    from ..training.train import TrainConfig


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = get_args_parser(program_name()).parse_args(argv)
    args.command_line = "python -m medimg_core " + " ".join(shlex.quote(a) for a in argv)  # recorded in model cards
    from ..data.datasets import DataError

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

    from ..data.datasets import download, source_of
    from ..data.sources import source_parts

    spec = get_task(args.task) if args.task in TASKS else get_source(args.task)
    with tqdm(unit="B", unit_scale=True, desc=source_of(spec).filename) as bar:
        def progress(done: int, total: int) -> None:
            bar.total = total or None
            bar.n = done
            bar.refresh()

        path = download(spec, args.source, md5=args.md5, progress=progress)
    print(f"{spec.name}: {path}")
    source = source_of(spec)
    found = {p.name for p in source_parts(source, path)}
    for name in source.parts:
        print(f"  {'with' if name in found else 'without'} {name}" + ("" if name in found else
              f": it was not beside the copy; put it in {path.parent} to read it as part of {source.name}"))
    return 0


def train_config(args) -> TrainConfig:
    """The TrainConfig given by the shared training arguments."""
    from ..training.fit import resolve_device, slow_bf16_note
    from ..training.train import TrainConfig

    if args.init and args.pretrained:
        raise ValueError("give either --init or --pretrained, not both")
    note = slow_bf16_note(resolve_device(args.device), args.precision)
    if note:
        print(f"note: {note}", file=sys.stderr, flush=True)
    return TrainConfig(task=args.task, architecture=args.architecture, width=args.width or (64 if args.architecture.startswith("resnet") else 16),
                       dropout=args.dropout, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                       weight_decay=args.weight_decay, augment=args.augment, augment_strength=args.augment_strength,
                       image_size=args.image_size, balance=args.balance,
                       val_fraction=args.val_fraction, max_per_class=args.max_per_class, seed=args.seed, train_seed=args.train_seed,
                       baseline=args.baseline, init=args.init or args.pretrained, augment_set=args.augment_set,
                       device=args.device, sources=args.sources, without=list(getattr(args, "without", [])),
                       held_out=list(args.hold_out),
                       source_power=args.source_power, epoch_size=args.epoch_size,
                       max_foreign_per_dataset=args.max_foreign_per_dataset, add_other=args.add_other,
                       label_smoothing=args.label_smoothing, own_cv=getattr(args, "own_cv", False),
                       ensemble=getattr(args, "ensemble", False), precision=args.precision,
                       validation=args.validation, progressive_from=args.progressive_from,
                       final_size_epochs=args.final_size_epochs, input_norm=args.input_norm, teacher=args.teacher,
                       distill_alpha=args.distill_alpha, distill_temperature=args.distill_temperature)


def cmd_search(args) -> int:
    from ..training.runs import new_run_dir, protected, ship_hint
    from ..training.search import parse_space, search, write_search

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
    from ..training.train import train

    import time

    from ..training.fit import RunStopped

    cfg = train_config(args)
    out, state = run_paths(args.task, args.out, args.resume)
    if args.resume and not state.is_dir():  # nothing saved yet (a scripted run started again): start it
        print(f"note: no saved state in {state}: the run starts from its first epoch", file=sys.stderr)
    deadline = time.monotonic() + args.time_limit * 60 if args.time_limit else None
    try:
        if args.folds:
            from ..training.crossval import train_with_crossval

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
        from ..reports.evaluation import held_out_line

        print(held_out_line(card["external"]["held_out"]))
    if "crossval" in card:
        from ..reports.compare import crossval_line

        print(crossval_line(card))
    return 0


def cmd_calibrate(args) -> int:
    from ..training.recalibrate import recalibrate
    from ..models.checkpoint import default_model_path
    from ..training.runs import output_path, ship_hint

    path = args.model or default_model_path(args.task)
    out = output_path(path, args.task, args.out, "calibrated")
    card = recalibrate(path, args.data, command=args.command_line, out=out, progress=True)
    print(f"recalibrated {path}{f' into {out}' if out != path else ''}: temperature {card['calibration']['temperature']}, "
          f"OOD threshold {card['ood']['threshold']}, validation ECE {card['validation']['ece']:.4f}"
          + (f"; {ship_hint(out.parent)}" if out != path else ""))
    return 0


def cmd_info(args) -> int:
    from ..models.checkpoint import default_model_path, models_dir, read_card
    from ..data.datasets import dataset_path

    from ..data.datasets import data_dir

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


def cmd_ship(args) -> int:
    import argparse

    from ..models.checkpoint import ASSETS_DIR, models_dir, read_card
    from .records import readme_note
    from ..data.datasets import dataset_path
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
            "duplicates": cmd_duplicates, "info": cmd_info, "ship": cmd_ship, "audit": cmd_audit}
