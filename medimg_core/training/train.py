"""Training: gather a task's sources, split, fit with augmentation on the CPU or a GPU, calibrate, card.

`train(cfg)` is what `python -m medimg_core train` runs; it returns the Classifier and a
model card (a dict) and writes both when given an output path. A task with supplements or
foreign sources (see `sources.py`) trains on all of them, drawn with per-source weights so that
twenty breast MRIs of one hospital are not drowned by eight thousand of another; the images of
datasets in `held_out` validate instead (one fold of `crossval.py`).
"""
from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import torch

from .baseline import pca_logistic_baseline
from .calibration import calibrate, calibration_sections
from ..models.checkpoint import HALF_ABOVE, save_checkpoint, write_card
from ..data.datasets import Dataset
from ..data.duplicates import duplicate_groups, near_duplicate_summary
from ..inference.metrics import classify, open_set_metrics
from .fit import (TrainConfig, fit, load_teacher, logits_and_features, resolve_device, teacher_paths,
                  training_seed)
from ..models.architectures import INPUT_NORMS, build_model, cam_layer_name, count_parameters
from ..inference.predict import Classifier
from ..data.sources import own_dataset, own_origin, pool_parts, pool_split, task_pool
from ..data.splits import kept_together, named_patients, subset_positions
from ..inference.speed import predict_latency
from ..tasks import TaskSpec, get_task

def task_spec(cfg: TrainConfig) -> TaskSpec:
    """The task's definition, at the run's input size when it asks for another (saved in the checkpoint)."""
    spec = get_task(cfg.task)
    if cfg.image_size is not None and not 16 <= cfg.image_size <= 512:
        raise ValueError(f"--image-size must be between 16 and 512 pixels, not {cfg.image_size}")
    return replace(spec, image_size=cfg.image_size) if cfg.image_size and cfg.image_size != spec.image_size else spec


def training_data(spec: TaskSpec, cfg: TrainConfig, data_path: str | Path | None = None,
                  paths: dict | None = None, parts: list[str] | None = None) -> tuple[Dataset, list[str]]:
    """The run's image pool (all sources, or the task's own dataset) and notes on missing sources; parts: only
    these further archives of the sources (a card's `data.parts`; default: all that are there)."""
    if uses_pool(spec, cfg):
        return task_pool(without_sources(spec, cfg.without), data_path, paths, cfg.max_foreign_per_dataset, cfg.seed,
                         parts)
    return own_dataset(spec, data_path), []


def uses_pool(spec: TaskSpec, cfg: TrainConfig) -> bool:
    """Whether the run trains on the task's pool of sources, not on its own dataset alone."""
    return cfg.sources and bool(spec.supplements or spec.foreign)


def training_parts(spec: TaskSpec, cfg: TrainConfig, paths: dict | None = None) -> list[str]:
    """The further archives of the sources (DataSource.parts) the run's pool reads: the card's `data.parts`."""
    return pool_parts(without_sources(spec, cfg.without), paths) if uses_pool(spec, cfg) else []


def card_parts(card: dict) -> list[str]:
    """The further archives of the sources a model's pool read (a card from before they were recorded: none)."""
    return card.get("data", {}).get("parts", [])


def without_sources(spec: TaskSpec, names: list[str]) -> TaskSpec:
    """The task with some of its supplements and foreign sources left out of its pool (--without)."""
    unknown = set(names) - set(spec.supplements) - set(spec.foreign)
    if unknown:
        raise ValueError(f"--without names {', '.join(sorted(unknown))}, not a source of {spec.name}; its sources are "
                         f"{', '.join(dict.fromkeys(spec.supplements + spec.foreign))}")
    return replace(spec, supplements=tuple(s for s in spec.supplements if s not in names),
                   foreign=tuple(s for s in spec.foreign if s not in names))


def training_split(ds: Dataset, spec: TaskSpec, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept, train, validation) positions in ds, as `train` makes them (see sources.pool_split); near-duplicates
    stay on one side when the spec (the registry's for a new run, the checkpoint's for a trained model) says so."""
    own_fold = tuple(cfg.fold) if cfg.own_cv and cfg.fold else None
    return pool_split(ds, own_origin(spec), cfg.max_per_class, cfg.val_fraction, cfg.seed, cfg.held_out, own_fold,
                      max_distance=spec.near_duplicate_distance, spec=spec, strategy=cfg.validation)


def init_weights(model: torch.nn.Module, source: str) -> list[str]:
    """Copy every weight of matching name and shape from a checkpoint (or ImageNet); returns those left as initialised.

    The classifier head of another task differs in shape and keeps its fresh initialisation; a head that
    lacks only the 'other' output keeps its class rows (see TrainConfig.add_other).
    """
    if source == "imagenet":
        state = imagenet_resnet18_state(model)
    else:
        from ..models.checkpoint import load_checkpoint

        state = load_checkpoint(Path(source))[0].state_dict()
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    for key in ("head.weight", "head.bias"):  # a head without the 'other' row: its class rows, and a fresh 'other' row
        if key in state and key in own and own[key].shape[1:] == state[key].shape[1:] and len(own[key]) == len(state[key]) + 1:
            usable[key] = torch.cat([state[key], own[key][-1:]])
    if not usable:
        raise ValueError(f"{source} has no weights that fit a {type(model).__name__}")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


def check_init(cfg: TrainConfig, spec: TaskSpec) -> None:
    """Refuse, before any data is read, an --add-other run whose --init is not a model of the task's classes."""
    if not cfg.add_other:
        return
    from ..models.checkpoint import load_checkpoint

    if not cfg.init:
        raise ValueError("--add-other adds the 'other' output to a trained model of the task: give --init CHECKPOINT")
    classes = tuple(load_checkpoint(Path(cfg.init))[1].classes)
    if classes != spec.classes:
        raise ValueError(f"--add-other needs a model of the {spec.name} classes ({', '.join(spec.classes)}); "
                         f"{cfg.init} is a model of {', '.join(classes)}")


def imagenet_resnet18_state(model: torch.nn.Module) -> dict:
    """torchvision's ImageNet ResNet-18 weights, stem summed to one channel (needs them cached locally)."""
    from torchvision.models import ResNet18_Weights, resnet18

    if not hasattr(model, "net"):
        raise ValueError("ImageNet weights exist only for --architecture resnet18")
    try:
        state = resnet18(weights=ResNet18_Weights.IMAGENET1K_V1).state_dict()
    except Exception as err:  # torchvision raises URLError/OSError/RuntimeError when it cannot download
        raise ValueError(f"ImageNet weights for ResNet-18 are not available on this machine ({err}); "
                         "put them in torch's hub cache or train from scratch") from err
    state["conv1.weight"] = state["conv1.weight"].sum(1, keepdim=True)
    return {f"net.{k}": v for k, v in state.items() if not k.startswith("fc.")}


def limit_per_class(ds: Dataset, max_per_class: int | None, seed: int) -> Dataset:
    """At most max_per_class random images of each class (the whole set when None)."""
    return ds.subset(subset_positions(ds.labels, max_per_class, seed)) if max_per_class else ds


def train(cfg: TrainConfig, data_path: str | Path | None = None, out: Path | None = None, command: str = "",
          progress: bool = True, paths: dict | None = None, rejection: dict | None = None,
          card_extra: dict | None = None, state_dir: Path | None = None, resume: bool = False,
          deadline: float | None = None) -> tuple[Classifier, dict]:
    """Train, calibrate and card a model for cfg.task; writes <out> and its card when out is given.

    Args:
        state_dir: the run's state is saved there after every epoch (state.pt); resume continues from it.
        deadline: a time.monotonic() value; the run stops (fit.RunStopped) after the first epoch past it.
        paths: other sources' archives by source name (default: the data folder).
        rejection: temperature, 'other' and distance thresholds chosen by cross-validation on held-out
            datasets (crossval.py); without it they are fitted on the task's own validation split.
        card_extra: further model-card sections (e.g. the cross-validation record).
    """
    spec = task_spec(cfg)
    device = resolve_device(cfg.device)
    check_init(cfg, spec)
    torch.manual_seed(training_seed(cfg))
    ds, notes = training_data(spec, cfg, data_path, paths)
    for note in notes:
        print(f"note: {note}", flush=True)
    _, train_idx, val_idx = training_split(ds, spec, cfg)
    model_args = architecture_args(cfg, reject=spec.rejects and bool(ds.foreign[train_idx].any()))
    model = build_model(num_classes=spec.num_classes, **model_args)
    if cfg.init:
        init_weights(model, cfg.init)
    run = fit(model, cfg, spec, ds, train_idx, val_idx, device, progress,
              None if state_dir is None else Path(state_dir) / "state.pt", resume, deadline=deadline)

    own_val = val_idx[ds.origin[val_idx] == own_origin(spec)]
    model.to(device)  # the passes over the training and validation images run where the training ran
    clf, fitted = calibrate(model, spec, ds, train_idx, own_val, cfg.ood_quantile, rejection)
    card = build_card(cfg, spec, ds, train_idx, val_idx, model, model_args, run, command, device, notes,
                      training_parts(spec, cfg, paths))
    card.update(calibration_sections(clf, fitted, cfg.ood_quantile))
    if cfg.baseline:
        in_kind = train_idx[~ds.foreign[train_idx]]
        card["baseline"] = pca_logistic_baseline(ds.images[in_kind], ds.labels[in_kind], ds.images[own_val],
                                                 ds.labels[own_val], spec.classes, seed=cfg.seed)
    outer = val_idx[ds.origin[val_idx] != own_origin(spec)]
    if len(outer) and not card_extra:
        card["external"] = held_out_section(clf, ds, outer)
    if cfg.teacher:
        card["training"]["teacher"] = teacher_section(cfg, spec, ds, own_val, model.head.out_features, device)
    model.cpu()
    card["speed"] = predict_latency(clf)
    card.update(card_extra or {})
    clf.card = card
    if out is not None:
        save_classifier(clf, Path(out), model_args)
    return clf, card


def teacher_section(cfg: TrainConfig, spec: TaskSpec, ds: Dataset, own_val: np.ndarray, outputs: int,
                    device: torch.device) -> dict:
    """The card's record of a distilled run's teacher: its checkpoints and its accuracy on the same validation images."""
    teacher = load_teacher(cfg.teacher, outputs, spec.num_classes, device)
    logits, _ = logits_and_features(teacher, ds.images[own_val])
    right = int((logits[:, : spec.num_classes].argmax(1).numpy() == ds.labels[own_val]).sum())
    return {"checkpoints": teacher_paths(cfg.teacher), "validation_accuracy": round(right / max(len(own_val), 1), 5),
            "validation_right": right, "validation_n": int(len(own_val))}


def architecture_args(cfg: TrainConfig, reject: bool) -> dict:
    """The arguments of build_model a run's model is built (and saved) with."""
    args = {"architecture": cfg.architecture, "width": cfg.width, "dropout": cfg.dropout}
    if cfg.input_norm != "none":
        args["input_norm"] = cfg.input_norm
    return args | ({"reject": True} if reject else {})


def held_out_section(clf: Classifier, ds: Dataset, outer: np.ndarray) -> dict:
    """The card's 'external' section of a run with --hold-out: how the model does on the datasets it never saw."""
    out, pred, flagged = classify(clf, ds.images[outer])
    held = open_set_metrics(out.probs, pred, flagged, ds.labels[outer], clf.classes, ds.origin[outer])
    held.pop("in_kind_metrics", None)
    names = sorted(np.unique(ds.origin[outer]).tolist())
    return {"method": f"one split: {len(names)} datasets held out of training (--hold-out), thresholds fitted on the "
                      "task's own validation split", "folds": [names], "held_out": held, "own_validation": {}, "per_fold": []}


def build_card(cfg, spec: TaskSpec, ds: Dataset, train_idx, val_idx, model, model_args, run: dict, command: str,
               device: torch.device, notes: list[str], parts: list[str]) -> dict:
    """The model card's description of the model, its data and its training run."""
    n_params = count_parameters(model)
    own = ds.origin == own_origin(spec)
    groups, near = duplicate_groups(ds.images[own]), spec.near_duplicate_distance
    gpu = f", {torch.cuda.get_device_name(device)}" if device.type == "cuda" else ""
    return {
        "task": spec.name,
        "title": spec.title,
        "classes": list(spec.classes),
        "input": {
            "size": [spec.image_size, spec.image_size], "channels": 1,
            "preprocessing": "read_image -> grayscale [0,1] (8-bit /255; 16-bit, float and DICOM windowed) -> "
                             + (f"squash to {spec.image_size}x{spec.image_size} (Lanczos, aspect ratio not kept, as the "
                                "training copy was)" if spec.fit == "squash" else
                                f"letterbox onto a black {spec.image_size}x{spec.image_size} square (Lanczos)")
                             + (f" -> {INPUT_NORMS[model_args['input_norm']]}" if model_args.get("input_norm") else "")
                             + " -> model normalises (x-0.5)/0.25",
        },
        "model": {**model_args, "parameters": n_params,
                  "size_mb": round(n_params * (2 if n_params > HALF_ABOVE else 4) / 2**20, 2),  # float16 above HALF_ABOVE
                  "cam_layer": cam_layer_name(model), "outputs": list(spec.classes) + (["other"] if model_args.get("reject") else [])},
        "training": {
            "config": asdict(cfg), "command": command, "best_epoch": run["best_epoch"], "selection": run["selection"],
            "seconds": round(run["seconds"], 1), "history": run["history"], "device": device.type,
            "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
                        + (gpu or ", trained on the CPU"),
            "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        },
        "data": {
            "source": spec.source.filename, "fingerprint": ds.fingerprint, "images": len(ds),
            "train": int(own[train_idx].sum()), "validation": int(own[val_idx].sum()),  # of the task's own dataset
            "train_all_sources": int(len(train_idx)), "validation_all_sources": int(len(val_idx)),
            "duplicate_images": int(len(groups) - len(np.unique(groups))),
            "split": split_description(ds, own, spec, cfg),
            **({} if near is None else {"near_duplicates": near_duplicate_summary(ds.images[own], near)}),
            "sources": source_counts(ds, train_idx, val_idx), "held_out": list(cfg.held_out), "missing": notes,
            "parts": parts,  # the sources' further archives read (DataSource.parts), so the pool can be rebuilt
        },
    }


def split_description(ds: Dataset, own: np.ndarray, spec: TaskSpec, cfg: TrainConfig) -> str:
    """How the task's own images were split into training and validation, in words (as `training_split` does it)."""
    named = named_patients(list(np.asarray(ds.files)[own]), spec) is not None
    together = kept_together(spec if named else replace(spec, patient_pattern=""))  # file names without patients
    if cfg.own_cv and cfg.fold:
        return f"fold {cfg.fold[0] + 1} of {cfg.fold[1]} stratified folds, {together} kept together (seed {cfg.seed})"
    if cfg.validation == "atypical":
        return f"the {cfg.val_fraction:.0%} least typical groups by acquisition traits validate, {together} kept together"
    if cfg.validation == "earliest":
        return f"the {cfg.val_fraction:.0%} of patients with the lowest numbers validate, {together} kept together"
    if not named and {"train", "val"} <= set(ds.split[own].tolist()):
        return "official train/val split"
    return f"stratified {1 - cfg.val_fraction:.0%}/{cfg.val_fraction:.0%}, {together} kept on one side (seed {cfg.seed})"


def source_counts(ds: Dataset, train_idx: np.ndarray, val_idx: np.ndarray) -> dict:
    """Images per dataset and label name, in training and validation."""
    names = list(ds.classes) + ["other"]
    out: dict = {}
    for part, idx in (("train", train_idx), ("validation", val_idx)):
        for origin, label in zip(ds.origin[idx], ds.labels[idx]):
            entry = out.setdefault(str(origin), {}).setdefault(part, {})
            entry[names[label]] = entry.get(names[label], 0) + 1
    return out


def save_classifier(clf: Classifier, out: Path, model_args: dict) -> None:
    """Write the checkpoint and its model card."""
    extras = {"temperature": clf.temperature, "ood": clf.ood.to_dict(), "operating_threshold": clf.operating_threshold}
    save_checkpoint(out, clf.model, clf.spec, model_args, extras)
    write_card(out, clf.card)
    clf.path = out
