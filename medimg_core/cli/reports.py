"""The commands that measure a model or a dataset: `evaluate`, `benchmark`, `duplicates` and `embed`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..tasks import get_task
from .predict import progress_bar


def cmd_evaluate(args) -> int:
    from ..data.datasets import dataset_path, default_npz_split, load_dataset
    from ..reports.evaluation import evaluate_classifier, model_split_images, open_set_report
    from ..data.overlap import training_overlap
    from ..inference.predict import load_classifier

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
        from .records import record_evaluation

        record_evaluation(args, clf, result, overlap, f"{Path(data).name if data else clf.spec.source.filename}"
                          + (f", {split} split" if split else ""))
    if args.json:
        print(json.dumps(result))
    return 0


def official_test_split(ds, data: Path | None):
    """The images of an archive or folder that its own layout puts in the test split (folders.split_of)."""
    from ..data.datasets import DataError

    test = np.flatnonzero(ds.split == "test")
    if not len(test):
        raise DataError(f"{data} has no official test split (a test/ or Testing/ folder above its class folders); "
                        "evaluate it without --split, or with --split train or val for the images that played that "
                        "part in the model's training")
    return ds.subset(test)


def cmd_benchmark(args) -> int:
    from ..models.checkpoint import card_path
    from ..inference.predict import load_classifier
    from ..inference.speed import predict_latency

    from ..training.runs import protected, ship_hint, writable_model

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
    from ..models.checkpoint import default_model_path, read_card
    from ..data.datasets import load_dataset
    from ..reports.duplicate_report import find_duplicates

    spec = get_task(args.task)
    report = find_duplicates(load_dataset(spec, args.data), args.max_distance,
                             card=read_card(args.model or default_model_path(spec.name)))
    print(json.dumps({"task": spec.name, **report.to_dict()}) if args.json else "\n".join(report.lines(spec.name)))
    return 0


def embed_data(clf, data: str | None, own_only: bool):
    """The images `embed` maps: the task's pool as its model's card built it, or its own dataset alone."""
    from ..training.train import TrainConfig, card_parts, training_data

    cfg = clf.card.get("training", {}).get("config", {})
    run = TrainConfig(task=clf.spec.name, sources=not own_only, seed=cfg.get("seed", 0),
                      max_foreign_per_dataset=cfg.get("max_foreign_per_dataset", 600))
    ds, notes = training_data(clf.spec, run, data, parts=card_parts(clf.card))
    for note in notes:
        print(f"note: {note}", flush=True)
    return ds


def cmd_embed(args) -> int:
    import time

    from tqdm.auto import tqdm

    from ..reports.embed import embedding_for, save_embedding
    from ..inference.predict import load_classifier
    from ..training.train import limit_per_class

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
