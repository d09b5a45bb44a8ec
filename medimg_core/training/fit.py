"""The training loop and what it is configured by: `TrainConfig` and `fit`.

`fit` trains a model on a Dataset's images held in one tensor on the device (augmentation runs
there too, so a GPU is not starved by a loader): AdamW with a one-cycle schedule, channels-last layout, bf16
autocast on CUDA (and on the CPU with `precision="bf16"`), per-source drawing weights
for multi-source runs, progressive resizing (`schedule.size_schedule`), distillation from a
teacher's logits, and a saved state after every epoch that `resume` continues from exactly.
`training.train` wraps it: data, split, calibration and the model card.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.augment import AUGMENT_SETS, augment_batch, scaled
from ..data.datasets import Dataset
from ..inference.metrics import auc_score
from .schedule import load_state, resize_batch, save_state, size_schedule
from ..data.sources import own_origin
from ..tasks import TaskSpec


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
    augment_set: str = "standard"  # a name in augment.AUGMENT_SETS
    balance: bool = False  # weight the loss by inverse class frequency
    val_fraction: float = 0.1
    validation: str = "random"  # the own validation split: "random" (grouped), "atypical" or "earliest" (patients)
    max_per_class: int | None = None  # a small subset of the task's own data, for quick runs and tests
    seed: int = 0
    train_seed: int | None = None  # the weights' initialisation, drawing order and augmentation (default: seed, which also splits)
    ood_quantile: float = 0.995
    baseline: bool = True
    init: str | None = None  # start from another checkpoint's weights (fine-tuning), or "imagenet" for resnet18
    add_other: bool = False  # keep --init (a model of the same task) as it is and train only its new 'other' output
    device: str = "auto"  # "auto" (CUDA when available), "cpu" or "cuda"
    precision: str = "auto"  # "auto": bf16 autocast on CUDA, fp32 on the CPU; "bf16": bf16 autocast on the CPU too
    sources: bool = True  # also train on the task's supplements and foreign sources that are downloaded
    without: list[str] = field(default_factory=list)  # sources (SOURCES names) left out of the pool, e.g. "synthetic"
    held_out: list[str] = field(default_factory=list)  # datasets that validate instead of train
    source_power: float = 0.5  # a (dataset, class) group of n images is drawn n**power times as often as one image
    epoch_size: int | None = None  # images drawn per epoch of a multi-source run (default: the training images)
    max_foreign_per_dataset: int | None = 600  # at most this many images of other kinds from each dataset
    label_smoothing: float = 0.0  # cross-entropy label smoothing
    own_cv: bool = False  # --folds also splits the task's own train+val into folds (stratified, duplicates together)
    ensemble: bool = False  # ship the fold models of --folds as one ensemble instead of training one more model
    fold: list[int] = field(default_factory=list)  # [fold, n_folds] of an own_cv run (set by crossval)
    progressive_from: int | None = None  # progressive resizing: the first epochs' input side, rising to the full size
    final_size_epochs: int = 0  # with progressive_from: the last epochs, at the full size
    input_norm: str = "none"  # "equalize" or "clahe": done to every input inside the model (models.INPUT_NORMS)
    teacher: str | list[str] | None = None  # distil: trained checkpoints of the task whose (mean) logits the model also learns
    distill_alpha: float = 0.5  # the soft-target share of the loss when distilling
    distill_temperature: float = 4.0  # the temperature of the soft targets
    extra: dict = field(default_factory=dict)


class RunStopped(Exception):
    """A run that stopped after the epoch it was told to (`until`), its state saved for --resume."""


def resolve_device(name: str) -> torch.device:
    """'auto' -> CUDA when available, else the CPU; 'cuda' without a GPU is a clear error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for, but torch sees no CUDA GPU here; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, not {name!r}")
    return torch.device(name)


def bf16_is_emulated(device: torch.device) -> bool:
    """Whether bf16 autocast on this device runs without bf16 instructions: a CPU without AVX-512 or AMX (plain
    AVX2), where oneDNN emulates it and a compact CNN trains about 10x slower than in fp32."""
    return device.type == "cpu" and not torch.ops.mkldnn._is_mkldnn_bf16_supported()


def slow_bf16_note(device: torch.device, precision: str) -> str | None:
    """A warning for --precision bf16 where bf16 is emulated, naming the CPU's instruction set; else None."""
    if precision != "bf16" or not bf16_is_emulated(device):
        return None
    return (f"this CPU ({torch.backends.cpu.get_cpu_capability()}) has no bf16 instructions (AVX-512 or AMX), so "
            "bf16 autocast is emulated and trains several times slower than fp32 (a compact CNN at 64 px: 42 against "
            "392 images/s on a 2-core AVX2 machine); --precision fp32 is faster here")


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


def distillation_loss(logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, alpha: float,
                      temperature: float, **cross_entropy) -> torch.Tensor:
    """(1 - alpha) x cross-entropy on the labels + alpha x T^2 x KL(teacher || student) at temperature T
    (Hinton et al., 2015); alpha 0 is plain cross-entropy. A teacher of the task's K classes alone (no 'other'
    output) teaches the student's first K outputs on the images of those classes; images of other kinds
    then learn from their labels only."""
    hard = F.cross_entropy(logits, labels, **cross_entropy)
    if alpha == 0:
        return hard
    k = teacher_logits.shape[1]
    if k < logits.shape[1]:
        mine = labels < k
        if not bool(mine.any()):
            return hard
        logits, teacher_logits = logits[mine, :k], teacher_logits[mine]
    t = temperature
    soft = F.kl_div(F.log_softmax(logits / t, 1), F.log_softmax(teacher_logits / t, 1), reduction="batchmean",
                    log_target=True)
    return (1 - alpha) * hard + alpha * t * t * soft


def teacher_paths(teacher: str | list[str] | None) -> list[str]:
    """TrainConfig.teacher as a list of checkpoint paths (none, one, or several whose logits are averaged)."""
    return [] if not teacher else [teacher] if isinstance(teacher, str) else list(teacher)


def load_teacher(paths: str | list[str], outputs: int, classes: int, device: torch.device) -> torch.nn.Module:
    """Trained checkpoints to distil from, frozen in eval mode (several: an Ensemble, the mean of their logits);
    each has the student's outputs, or the task's classes alone (a teacher trained on the task's own images,
    without the 'other' output), and all the same."""
    from ..models.architectures import Ensemble
    from ..models.checkpoint import load_checkpoint

    paths = teacher_paths(paths)
    teachers = [load_checkpoint(Path(path))[0] for path in paths]
    for path, teacher in zip(paths, teachers):
        if teacher.head.out_features not in (outputs, classes) or teacher.head.out_features != teachers[0].head.out_features:
            raise ValueError(f"the teacher {path} has {teacher.head.out_features} outputs, the model being trained {outputs}: "
                             f"distil from models of the same task ({classes} classes, with or without 'other'), "
                             "all with the same outputs")
    teacher = teachers[0] if len(teachers) == 1 else Ensemble(teachers)
    return teacher.to(device).eval().requires_grad_(False)


def training_seed(cfg: TrainConfig) -> int:
    """The seed of the weights, the drawing order and the augmentation: --train-seed, else --seed."""
    return cfg.seed if cfg.train_seed is None else cfg.train_seed


def run_config(cfg: TrainConfig) -> dict:
    """The settings a saved training state must share with the run that resumes it."""
    return {k: v for k, v in asdict(cfg).items() if k not in ("device", "extra")}


def fit(model: torch.nn.Module, cfg: TrainConfig, spec: TaskSpec, ds: Dataset, train_idx: np.ndarray,
        val_idx: np.ndarray, device: torch.device, progress: bool = True, state_file: Path | None = None,
        resume: bool = False, until: int | None = None, deadline: float | None = None) -> dict:
    """The training loop; leaves the kept weights in the model (on the CPU) and returns the run's record.

    Runs of the task's own data alone keep the epoch that validates best (as before); multi-source
    runs and folds of a cross-validation over the own data keep the last epoch of the one-cycle
    schedule, so that no held-out image picks it.

    Args:
        state_file: where the run's state is saved after every epoch (None: not saved).
        resume: continue from state_file when it exists (a finished run's state skips the loop).
        until: stop after this epoch, the state saved, by raising RunStopped.
        deadline: stop after the first epoch that ends past this time.monotonic() value (a time limit), likewise.
    Raises:
        RunStopped: the run reached `until` or its deadline before its last epoch.
    """
    k = spec.num_classes
    torch.backends.cudnn.benchmark = device.type == "cuda"
    model.to(device)
    x = torch.from_numpy(ds.images[train_idx]).to(device)
    y = torch.from_numpy(ds.labels[train_idx]).to(device)
    own = ds.origin[val_idx] == own_origin(spec)
    own_val, outer_val = val_idx[own], val_idx[~own]
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
    seed = training_seed(cfg)
    generators = {"order": torch.Generator().manual_seed(seed), "augment": torch.Generator(device=device).manual_seed(seed)}
    bf16 = device.type == "cuda" or cfg.precision == "bf16"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
    layout = torch.channels_last  # oneDNN's and cuDNN's fast layout: in bf16, and 1.1-1.3x in fp32 on AVX2 and AVX-512
    model.to(memory_format=layout)
    teacher = load_teacher(cfg.teacher, model.head.out_features, k, device) if cfg.teacher else None
    sizes = size_schedule(cfg.epochs, spec.image_size, cfg.progressive_from, cfg.final_size_epochs)
    history, best, seconds, done = [], None, 0.0, 0
    if resume and state_file is not None and state_file.is_file():
        done, history, best, seconds = load_state(state_file, model, opt, sched, generators, run_config(cfg))
        if progress:
            print(f"resumed {state_file} after epoch {done} of {cfg.epochs}", flush=True)
    for epoch in range(done + 1, cfg.epochs + 1):
        t0 = time.perf_counter()
        model.eval() if cfg.add_other else model.train()  # frozen features keep their batch-norm statistics
        order = (torch.multinomial(draw, per_epoch, replacement=True, generator=generators["order"]) if multi
                 else torch.randperm(per_epoch, generator=generators["order"])).to(device)
        total = 0.0
        with tqdm(total=per_epoch, desc=f"epoch {epoch}/{cfg.epochs}", unit="img", disable=not progress, leave=False) as bar:
            for start in range(0, per_epoch, cfg.batch_size):
                idx = order[start : start + cfg.batch_size]
                xb = resize_batch(to_tensor(x[idx]), sizes[epoch - 1])  # smaller first: augmenting costs less
                if cfg.augment:
                    xb = augment_batch(xb, aug, generators["augment"])
                xb = xb.contiguous(memory_format=layout)
                with autocast:
                    logits = model(xb).float()
                    soft = teacher(xb).float() if teacher is not None else logits.detach()
                loss = distillation_loss(logits, soft, y[idx], cfg.distill_alpha if teacher is not None else 0.0,
                                         cfg.distill_temperature, weight=weights, label_smoothing=cfg.label_smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                total += loss.item() * len(idx)
                bar.update(len(idx))
        row = {"epoch": epoch, "size": sizes[epoch - 1], "train_loss": round(total / per_epoch, 5),
               **validation_row(model, ds, own_val, outer_val, k, device), "seconds": round(time.perf_counter() - t0, 1)}
        history.append(row)
        seconds += time.perf_counter() - t0
        if progress:
            print("  ".join(f"{key} {value}" for key, value in row.items()), flush=True)
        # two-class tasks pick their decision threshold later, so select on AUC; others on accuracy
        score = (row.get("val_auc") or 0.0, -row["val_loss"]) if spec.positive_class else (row["val_accuracy"], -row["val_loss"])
        if multi or cfg.own_cv or best is None or score > best[0]:
            best = (score, epoch, {key: v.detach().cpu().clone() for key, v in model.state_dict().items()})
        if state_file is not None:
            save_state(state_file, epoch, model, opt, sched, generators, history, best, seconds, run_config(cfg))
        late = deadline is not None and time.monotonic() > deadline
        if (late or (until is not None and epoch >= until)) and epoch < cfg.epochs:
            raise RunStopped(f"stopped after epoch {epoch} of {cfg.epochs}" + (
                f"; its state is in {state_file}: continue with the same command and --resume" if state_file else ""))
    for hook in hooks:
        hook.remove()
    model.cpu().load_state_dict(best[2])
    model.to(memory_format=torch.contiguous_format).eval()
    return {"history": history, "best_epoch": best[1], "seconds": seconds,
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
