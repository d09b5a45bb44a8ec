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
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .augment import ACROSS_SOURCES, AugmentConfig, augment_batch, scaled
from .baseline import pca_logistic_baseline
from .calibration import calibrate, calibration_sections
from .checkpoint import save_checkpoint, write_card
from .data import Dataset, duplicate_groups, subset_positions
from .duplicates import near_duplicate_summary
from .evaluation import auc_score, classify, open_set_metrics
from .models import build_model, cam_layer_name, count_parameters
from .predict import Classifier
from .sources import own_dataset, own_origin, pool_split, task_pool
from .speed import predict_latency
from .tasks import TaskSpec, get_task

AUGMENT_SETS = {"standard": AugmentConfig(), "across-sources": ACROSS_SOURCES}


@dataclass
class TrainConfig:
    """Everything that defines a training run (saved in the model card)."""

    task: str
    architecture: str = "compact-cnn"
    width: int = 16
    dropout: float = 0.2
    epochs: int = 8
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    augment: bool = True
    image_size: int | None = None  # input side in pixels (default: the task's own)
    augment_strength: float = 1.0  # scales every augmentation range (0.5: half the rotation, zoom, contrast...)
    augment_set: str = "standard"  # "standard", or "across-sources" (random windows, background, resolution, text)
    balance: bool = False  # weight the loss by inverse class frequency
    val_fraction: float = 0.1
    max_per_class: int | None = None  # a small subset of the task's own data, for quick runs and tests
    seed: int = 0
    ood_quantile: float = 0.995
    baseline: bool = True
    init: str | None = None  # start from another checkpoint's weights (fine-tuning), or "imagenet" for resnet18
    add_other: bool = False  # keep --init (a model of the same task) as it is and train only its new 'other' output
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    precision: str = "auto"  # "auto": bf16 autocast on CUDA, fp32 on the CPU; "bf16": bf16 autocast on the CPU too
    sources: bool = True  # also train on the task's supplements and foreign sources that are downloaded
    held_out: list[str] = field(default_factory=list)  # datasets that validate instead of train
    source_power: float = 0.5  # a (dataset, class) group of n images is drawn n**power times as often as one image
    epoch_size: int | None = None  # images drawn per epoch of a multi-source run (default: the training images)
    max_foreign_per_dataset: int | None = 600  # at most this many images of other kinds from each dataset
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    own_cv: bool = False  # --folds also splits the task's own train+val into folds (stratified, duplicates together)
    ensemble: bool = False  # ship the fold models of --folds as one ensemble instead of training one more model
    fold: list[int] = field(default_factory=list)  # [fold, n_folds] of an own_cv run (set by crossval)
    extra: dict = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else the CPU; 'cuda' without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU here; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def task_spec(cfg: TrainConfig) -> TaskSpec:
    """The task's definition, at the run's input size when it asks for another (saved in the checkpoint)."""
    spec = get_task(cfg.task)
    if cfg.image_size is not None and not 16 <= cfg.image_size <= 512:
        raise ValueError(f"--image-size must be between 16 and 512 pixels, not {cfg.image_size}")
    return replace(spec, image_size=cfg.image_size) if cfg.image_size and cfg.image_size != spec.image_size else spec


def training_data(spec: TaskSpec, cfg: TrainConfig, data_path: str | Path | None = None,
                  paths: dict | None = None) -> tuple[Dataset, list[str]]:
    """The run's image pool (all sources, or the task's own dataset) and notes on missing sources."""
    if cfg.sources and (spec.supplements or spec.foreign):
        return task_pool(spec, data_path, paths, cfg.max_foreign_per_dataset, cfg.seed)
    return own_dataset(spec, data_path), []


def training_split(ds: Dataset, spec: TaskSpec, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kept, train, validation) positions in ds, as `train` makes them (see sources.pool_split); near-duplicates
    stay on one side when the spec (the registry's for a new run, the checkpoint's for a trained model) says so."""
    own_fold = tuple(cfg.fold) if cfg.own_cv and cfg.fold else None
    return pool_split(ds, own_origin(spec), cfg.max_per_class, cfg.val_fraction, cfg.seed, cfg.held_out, own_fold,
                      max_distance=spec.near_duplicate_distance)


def init_weights(model: torch.nn.Module, source: str) -> list[str]:
    """Copy every weight of matching name and shape from a checkpoint (or ImageNet); returns those left as initialised.

    The classifier head of another task differs in shape and keeps its fresh initialisation; a head that
    lacks only the 'other' output keeps its class rows (see TrainConfig.add_other).
    """
    if source == "imagenet":
        state = imagenet_resnet18_state(model)
    else:
        from .checkpoint import load_checkpoint

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
    from .checkpoint import load_checkpoint

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


def to_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """N x S x S uint8 -> N x 1 x S x S float in [0, 1] (on the images' device)."""
    return torch.as_tensor(images).float().div_(255)[:, None]


def sample_weights(origins: np.ndarray, labels: np.ndarray, power: float) -> torch.Tensor:
    """Per-image drawing weights: each (dataset, label) group of n images gets a share n**power."""
    groups = np.unique(np.char.add(origins.astype(str), np.char.add("|", labels.astype(str))), return_inverse=True)[1]
    sizes = np.bincount(groups)
    return torch.from_numpy(sizes[groups].astype(np.float64) ** (power - 1.0))


@torch.inference_mode()
def logits_and_features(model, images: np.ndarray | torch.Tensor, batch_size: int = 512,
                        device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw logits and penultimate features of uint8 images, in eval mode, returned on the CPU."""
    model.eval()
    device = device or next(model.parameters()).device
    logits, feats = [], []
    for start in range(0, len(images), batch_size):
        f = model.features(to_tensor(torch.as_tensor(images[start : start + batch_size]).to(device)))
        feats.append(f.float().cpu())
        logits.append(model.head(f).float().cpu())
    return torch.cat(logits), torch.cat(feats)


def fit(model: torch.nn.Module, cfg: TrainConfig, spec: TaskSpec, ds: Dataset, train_idx: np.ndarray,
        val_idx: np.ndarray, device: torch.device, progress: bool = True) -> dict:
    """The training loop; leaves the kept weights in the model (on the CPU) and returns the run's record.

    Runs of the task's own data alone keep the epoch that validates best (as before); multi-source
    runs and folds of a cross-validation over the own data keep the last epoch of the one-cycle
    schedule, so that no held-out image picks it.
    """
    k = spec.num_classes
    torch.backends.cudnn.benchmark = device.type == "cuda"
    model.to(device)
    x = torch.from_numpy(ds.images[train_idx]).to(device)
    y = torch.from_numpy(ds.labels[train_idx]).to(device)
    own_val = val_idx[ds.origin[val_idx] == own_origin(spec)]
    outer_val = val_idx[ds.origin[val_idx] != own_origin(spec)]
    multi = len(np.unique(ds.origin[train_idx])) > 1
    draw = sample_weights(ds.origin[train_idx], ds.labels[train_idx], cfg.source_power) if multi else None
    per_epoch = (cfg.epoch_size or len(train_idx)) if multi else len(train_idx)
    counts = np.bincount(ds.labels[train_idx], minlength=model.head.out_features)
    weights = (torch.tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32, device=device)
               if cfg.balance else None)
    trainable, hooks = (list(model.head.parameters()) if cfg.add_other else list(model.parameters())), []
    for p in model.parameters():
        p.requires_grad_(any(p is t for t in trainable))
    if cfg.add_other:  # the class rows of the head stay as --init trained them; only the 'other' row learns
        hooks = [p.register_hook(lambda g: torch.cat([torch.zeros_like(g[:k]), g[k:]])) for p in trainable]
    opt = torch.optim.AdamW(trainable, lr=cfg.lr, weight_decay=0.0 if cfg.add_other else cfg.weight_decay)
    steps = cfg.epochs * -(-per_epoch // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)
    aug = scaled(replace(AUGMENT_SETS[cfg.augment_set], hflip=spec.hflip), cfg.augment_strength)
    order_gen = torch.Generator().manual_seed(cfg.seed)
    aug_gen = torch.Generator(device=device).manual_seed(cfg.seed)
    bf16 = device.type == "cuda" or cfg.precision == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    layout = torch.channels_last if bf16 else torch.contiguous_format  # the fast layout of oneDNN/AMX and cuDNN
    model.to(memory_format=layout)
    history, best, started = [], None, time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.eval() if cfg.add_other else model.train()  # frozen features keep their batch-norm statistics
        order = (torch.multinomial(draw, per_epoch, replacement=True, generator=order_gen) if multi
                 else torch.randperm(per_epoch, generator=order_gen)).to(device)
        total = 0.0
        with tqdm(total=per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", unit="img", disable=not progress, leave=False) as bar:
            for start in range(0, per_epoch, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                xb = to_tensor(x[idx])
                if cfg.augment:
                    xb = augment_batch(xb, aug, aug_gen)
                xb = xb.contiguous(memory_format=layout)
                with autocast:
                    loss = F.cross_entropy(model(xb).float(), y[idx], weight=weights, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
                bar.update(len(idx))
        row = {"epoch": epoch, "train_loss": round(total / per_epoch, 5),
               **validation_row(model, ds, own_val, outer_val, k, device), "seconds": round(time.perf_counter() - t0, 1)}
        history.append(row)
        if progress:
            print("  ".join(f"{key} {value}" for key, value in row.items()), flush=True)
        # two-class tasks pick their decision threshold later, so select on AUC; others on accuracy
        score = (row.get("val_auc") or 0.0, -row["val_loss"]) if spec.positive_class else (row["val_accuracy"], -row["val_loss"])
        if multi or cfg.own_cv or best is None or score > best[0]:
            best = (score, epoch, {key: v.detach().cpu().clone() for key, v in model.state_dict().items()})
    for hook in hooks:
        hook.remove()
    model.cpu().load_state_dict(best[2])
    model.eval()
    return {"history": history, "best_epoch": best[1], "seconds": time.perf_counter() - started,
            "selection": "last epoch (one-cycle schedule)" if multi or cfg.own_cv else "best validation epoch"}


def validation_row(model, ds: Dataset, own_val: np.ndarray, outer_val: np.ndarray, k: int, device) -> dict:
    """Per-epoch numbers: loss, accuracy and AUC on the task's own validation split; on held-out datasets,
    the share named right (images of other kinds: called 'other')."""
    logits, _ = logits_and_features(model, ds.images[own_val], device=device)
    vy = torch.from_numpy(ds.labels[own_val])
    row = {"val_loss": round(float(F.cross_entropy(logits, vy)), 5),
           "val_accuracy": round(float((logits[:, :k].argmax(1) == vy).float().mean()), 5)}
    auc = auc_score(torch.softmax(logits[:, :k], 1).numpy(), vy.numpy())
    row["val_auc"] = None if auc is None else round(auc, 5)
    if len(outer_val):
        outer, _ = logits_and_features(model, ds.images[outer_val], device=device)
        row["held_out_accuracy"] = round(float((outer.argmax(1).numpy() == ds.labels[outer_val]).mean()), 5)
    return row


def train(cfg: TrainConfig, data_path: str | Path | None = None, out: Path | None = None, command: str = "",
          progress: bool = True, paths: dict | None = None, rejection: dict | None = None,
          card_extra: dict | None = None) -> tuple[Classifier, dict]:
    """Train, calibrate and card a model for cfg.task; writes <out> and its card when out is given.

    Args:
        paths: other sources' archives by source name (default: the data folder).
        rejection: temperature, 'other' and distance thresholds chosen by cross-validation on held-out
            datasets (crossval.py); without it they are fitted on the task's own validation split.
        card_extra: further model-card sections (e.g. the cross-validation record).
    """
    spec = task_spec(cfg)
    device = resolve_device(cfg.device)
    check_init(cfg, spec)
    torch.manual_seed(cfg.seed)
    ds, notes = training_data(spec, cfg, data_path, paths)
    for note in notes:
        print(f"note: {note}", flush=True)
    _, train_idx, val_idx = training_split(ds, spec, cfg)
    model_args = {"architecture": cfg.architecture, "width": cfg.width, "dropout": cfg.dropout}
    if spec.rejects and ds.foreign[train_idx].any():
        model_args["reject"] = True
    model = build_model(num_classes=spec.num_classes, **model_args)
    if cfg.init:
        init_weights(model, cfg.init)
    run = fit(model, cfg, spec, ds, train_idx, val_idx, device, progress)

    own_val = val_idx[ds.origin[val_idx] == own_origin(spec)]
    clf, fitted = calibrate(model, spec, ds, train_idx, own_val, cfg.ood_quantile, rejection)
    card = build_card(cfg, spec, ds, train_idx, val_idx, model, model_args, run, command, device, notes)
    card.update(calibration_sections(clf, fitted, cfg.ood_quantile))
    if cfg.baseline:
        in_kind = train_idx[~ds.foreign[train_idx]]
        card["baseline"] = pca_logistic_baseline(ds.images[in_kind], ds.labels[in_kind], ds.images[own_val],
                                                 ds.labels[own_val], spec.classes, seed=cfg.seed)
    outer = val_idx[ds.origin[val_idx] != own_origin(spec)]
    if len(outer) and not card_extra:
        card["external"] = held_out_section(clf, ds, outer)
    card["speed"] = predict_latency(clf)
    card.update(card_extra or {})
    clf.card = card
    if out is not None:
        save_classifier(clf, Path(out), model_args)
    return clf, card


def held_out_section(clf: Classifier, ds: Dataset, outer: np.ndarray) -> dict:
    """The card's 'external' section of a run with --hold-out: how the model does on the datasets it never saw."""
    out, pred, flagged = classify(clf, ds.images[outer])
    held = open_set_metrics(out.probs, pred, flagged, ds.labels[outer], clf.classes, ds.origin[outer])
    held.pop("in_kind_metrics", None)
    names = sorted(np.unique(ds.origin[outer]).tolist())
    return {"method": f"one split: {len(names)} datasets held out of training (--hold-out), thresholds fitted on the "
                      "task's own validation split", "folds": [names], "held_out": held, "own_validation": {}, "per_fold": []}


def build_card(cfg, spec: TaskSpec, ds: Dataset, train_idx, val_idx, model, model_args, run: dict, command: str,
               device: torch.device, notes: list[str]) -> dict:
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
                             f"letterbox onto a black {spec.image_size}x{spec.image_size} square (Lanczos) -> model normalises (x-0.5)/0.25",
        },
        "model": {**model_args, "parameters": n_params, "size_mb": round(n_params * 4 / 2**20, 2),
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
            "split": "official train/val split" if {"train", "val"} <= set(ds.split[own].tolist())
                     else f"stratified {1 - cfg.val_fraction:.0%}/{cfg.val_fraction:.0%}, "
                          f"{'exact duplicates' if near is None else f'near-duplicates (pHash within {near} of 64 bits)'} kept on one side (seed {cfg.seed})",
            **({} if near is None else {"near_duplicates": near_duplicate_summary(ds.images[own], near)}),
            "sources": source_counts(ds, train_idx, val_idx), "held_out": list(cfg.held_out), "missing": notes,
        },
    }


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
