"""Training: split, fit with augmentation, select on validation, calibrate, fit the OOD score.

`train(cfg)` is what `python -m medimg_core train` runs; it returns the Classifier and a
model card (a dict) and writes both when given an output path.
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
from sklearn.metrics import roc_curve
from tqdm.auto import tqdm

from .augment import AugmentConfig, augment_batch, scaled
from .baseline import pca_logistic_baseline
from .calibration import fit_temperature
from .checkpoint import save_checkpoint, write_card
from .data import Dataset, duplicate_groups, load_dataset, split_train_val
from .evaluation import auc_score, compute_metrics, expected_calibration_error
from .models import build_model, count_parameters
from .ood import MahalanobisOOD
from .predict import Classifier
from .speed import predict_latency
from .tasks import TaskSpec, get_task


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
    balance: bool = False  # weight the loss by inverse class frequency
    val_fraction: float = 0.1
    max_per_class: int | None = None  # a small subset, for quick runs and tests
    seed: int = 0
    ood_quantile: float = 0.995
    baseline: bool = True
    init: str | None = None  # start from another checkpoint's weights (fine-tuning), or "imagenet" for resnet18
    extra: dict = field(default_factory=dict)


def init_weights(model: torch.nn.Module, source: str) -> list[str]:
    """Copy every weight of matching name and shape from a checkpoint (or ImageNet); returns those left as initialised.

    The classifier head of another task differs in shape and keeps its fresh initialisation.
    """
    if source == "imagenet":
        state = imagenet_resnet18_state(model)
    else:
        from .checkpoint import load_checkpoint

        state = load_checkpoint(Path(source))[0].state_dict()
    own = model.state_dict()
    usable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not usable:
        raise ValueError(f"{source} has no weights that fit a {type(model).__name__}")
    model.load_state_dict(usable, strict=False)
    return sorted(set(own) - set(usable))


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


def subset_positions(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Sorted positions of at most max_per_class random images of each class (all of them when None)."""
    if not max_per_class:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def limit_per_class(ds: Dataset, max_per_class: int | None, seed: int) -> Dataset:
    """At most max_per_class random images of each class (the whole set when None)."""
    return ds.subset(subset_positions(ds.labels, max_per_class, seed)) if max_per_class else ds


def training_split(ds: Dataset, max_per_class: int | None, val_fraction: float,
                   seed: int) -> tuple[Dataset, np.ndarray, np.ndarray, np.ndarray]:
    """A run's data as `train` makes it: the subset, its positions in ds, and its train and validation indices.

    `recalibrate` and the explorer's `model_split` rebuild a trained model's split with it.
    """
    kept = subset_positions(ds.labels, max_per_class, seed)
    sub = ds.subset(kept) if max_per_class else ds
    train_idx, val_idx = split_train_val(sub, val_fraction, seed)
    return sub, kept, train_idx, val_idx


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """N x S x S uint8 -> N x 1 x S x S float in [0, 1]."""
    return torch.from_numpy(images).float().div_(255)[:, None]


def train_one_epoch(model, opt, sched, x, y, cfg: TrainConfig, aug: AugmentConfig, gen, weights, bar) -> float:
    """One pass over the training set; returns the mean loss."""
    model.train()
    order = torch.randperm(len(y), generator=gen)
    total = 0.0
    for start in range(0, len(order), cfg.batch_size):
        idx = order[start : start + cfg.batch_size]
        xb = to_tensor(x[idx.numpy()])
        if cfg.augment:
            xb = augment_batch(xb, aug, gen)
        loss = F.cross_entropy(model(xb), y[idx], weight=weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item() * len(idx)
        bar.update(len(idx))
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total / len(y)


@torch.inference_mode()
def logits_and_features(model, images: np.ndarray, batch_size: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Raw logits and penultimate features of uint8 images, in eval mode."""
    model.eval()
    logits, feats = [], []
    for start in range(0, len(images), batch_size):
        f = model.features(to_tensor(images[start : start + batch_size]))
        feats.append(f)
        logits.append(model.head(f))
    return torch.cat(logits), torch.cat(feats)


def choose_threshold(pos_probs: np.ndarray, is_pos: np.ndarray) -> float:
    """Operating threshold on the positive-class probability maximising Youden's J on validation."""
    fpr, tpr, thresholds = roc_curve(is_pos, pos_probs)
    best = int(np.argmax(tpr - fpr))
    return float(min(1.0, thresholds[best]))


def train(cfg: TrainConfig, data_path: str | Path | None = None, out: Path | None = None,
          command: str = "", progress: bool = True) -> tuple[Classifier, dict]:
    """Train, calibrate and card a model for cfg.task; writes <out> and its card when out is given."""
    spec = get_task(cfg.task)
    if cfg.image_size is not None and not 16 <= cfg.image_size <= 512:
        raise ValueError(f"--image-size must be between 16 and 512 pixels, not {cfg.image_size}")
    if cfg.image_size and cfg.image_size != spec.image_size:  # the checkpoint saves the spec, so predict follows
        spec = replace(spec, image_size=cfg.image_size)
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    ds, _, train_idx, val_idx = training_split(load_dataset(spec, data_path), cfg.max_per_class, cfg.val_fraction, cfg.seed)
    tx, ty = ds.images[train_idx], torch.from_numpy(ds.labels[train_idx])
    vx, vy = ds.images[val_idx], ds.labels[val_idx]
    model_args = {"architecture": cfg.architecture, "width": cfg.width, "dropout": cfg.dropout}
    model = build_model(num_classes=spec.num_classes, **model_args)
    if cfg.init:
        init_weights(model, cfg.init)
    counts = np.bincount(ds.labels[train_idx], minlength=spec.num_classes)
    weights = torch.tensor(counts.sum() / (len(counts) * np.maximum(counts, 1)), dtype=torch.float32) if cfg.balance else None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-len(ty) // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.15)
    aug = scaled(AugmentConfig(hflip=spec.hflip), cfg.augment_strength)

    history, best, started = [], None, time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t0 = time.perf_counter()
        with tqdm(total=len(ty), desc=f"epoch {epoch}/{cfg.epochs}", unit="img", disable=not progress, leave=False) as bar:
            train_loss = train_one_epoch(model, opt, sched, tx, ty, cfg, aug, gen, weights, bar)
        logits, _ = logits_and_features(model, vx)
        val_loss = float(F.cross_entropy(logits, torch.from_numpy(vy)))
        val_acc = float((logits.argmax(1).numpy() == vy).mean())
        val_auc = auc_score(torch.softmax(logits, 1).numpy(), vy)
        history.append({"epoch": epoch, "train_loss": round(train_loss, 5), "val_loss": round(val_loss, 5),
                        "val_accuracy": round(val_acc, 5), "val_auc": None if val_auc is None else round(val_auc, 5),
                        "seconds": round(time.perf_counter() - t0, 1)})
        if progress:
            print(f"epoch {epoch}: train loss {train_loss:.4f}  val loss {val_loss:.4f}  val acc {val_acc:.4%}"
                  + (f"  val AUC {val_auc:.4f}" if val_auc is not None else ""), flush=True)
        # two-class tasks pick their decision threshold later, so select on AUC; others on accuracy
        score = (val_auc or 0.0, -val_loss) if spec.positive_class else (val_acc, -val_loss)
        if best is None or score > best[0]:
            best = (score, epoch, {k: v.clone() for k, v in model.state_dict().items()})
    train_seconds = time.perf_counter() - started
    model.load_state_dict(best[2])
    model.eval()

    clf, fitted = calibrate(model, spec, tx, ty.numpy(), vx, vy, cfg.ood_quantile)
    card = build_card(cfg, spec, ds, train_idx, val_idx, model, model_args, history, best[1], train_seconds, command)
    card.update(calibration_sections(clf, fitted, vy, cfg.ood_quantile))
    if cfg.baseline:
        card["baseline"] = pca_logistic_baseline(tx, ty.numpy(), vx, vy, spec.classes, seed=cfg.seed)
    card["speed"] = predict_latency(clf)
    clf.card = card
    if out is not None:
        save_classifier(clf, Path(out), model_args)
    return clf, card


def calibrate(model, spec: TaskSpec, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray,
              val_y: np.ndarray, ood_quantile: float) -> tuple[Classifier, dict]:
    """Fit the temperature, the OOD statistics and (two-class tasks) the operating threshold."""
    val_logits, val_feats = logits_and_features(model, val_x)
    temperature = fit_temperature(val_logits, torch.from_numpy(val_y))
    _, train_feats = logits_and_features(model, train_x)
    ood = MahalanobisOOD.fit(train_feats.numpy(), train_y)
    val_scores = ood.score(val_feats)
    ood.set_threshold(val_scores, ood_quantile)
    val_probs = torch.softmax(val_logits / temperature, 1).numpy()
    threshold = None
    if spec.positive_class:
        pos = spec.classes.index(spec.positive_class)
        threshold = choose_threshold(val_probs[:, pos], val_y == pos)
    clf = Classifier(model, spec, temperature, ood, operating_threshold=threshold)
    return clf, {"val_probs": val_probs, "raw_val_probs": torch.softmax(val_logits, 1).numpy(), "val_scores": val_scores}


def build_card(cfg, spec: TaskSpec, ds: Dataset, train_idx, val_idx, model, model_args, history, best_epoch,
               train_seconds, command) -> dict:
    """The model card's description of the model, its data and its training run."""
    n_params = count_parameters(model)
    groups = duplicate_groups(ds.images)
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
                  "cam_layer": model.cam_layer},
        "training": {
            "config": asdict(cfg), "command": command, "best_epoch": best_epoch,
            "seconds": round(train_seconds, 1), "history": history,
            "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}"
                        + (f", {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"),
            "created": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        },
        "data": {
            "source": spec.source.filename, "fingerprint": ds.fingerprint, "images": len(ds),
            "train": int(len(train_idx)), "validation": int(len(val_idx)),
            "duplicate_images": int(len(groups) - len(np.unique(groups))),
            "split": "official train/val split" if {"train", "val"} <= set(ds.split.tolist())
                     else f"stratified {1 - cfg.val_fraction:.0%}/{cfg.val_fraction:.0%}, exact duplicates kept on one side (seed {cfg.seed})",
        },
    }


def calibration_sections(clf: Classifier, fitted: dict, val_y: np.ndarray, ood_quantile: float) -> dict:
    """The card's validation metrics, calibration, OOD and operating-threshold sections."""
    probs = fitted["val_probs"]
    metrics = compute_metrics(probs, val_y, clf.classes, clf.label_indices(probs))
    sections = {
        "validation": metrics,
        "calibration": {"method": "temperature scaling on validation", "temperature": round(clf.temperature, 4),
                        "ece_before": round(expected_calibration_error(fitted["raw_val_probs"], val_y), 5),
                        "ece_after": round(metrics["ece"], 5)},
        "ood": {"method": "Mahalanobis distance on L2-normalised penultimate features (shared covariance)",
                "threshold": round(clf.ood.threshold, 4), "quantile": ood_quantile,
                "validation_flag_rate": round(float((fitted["val_scores"] > clf.ood.threshold).mean()), 5)},
    }
    if clf.operating_threshold is not None:
        sections["operating_threshold"] = {"class": clf.spec.positive_class, "threshold": round(clf.operating_threshold, 5),
                                           "chosen_by": "Youden's J on the validation split"}
    return sections


def save_classifier(clf: Classifier, out: Path, model_args: dict) -> None:
    """Write the checkpoint and its model card."""
    extras = {"temperature": clf.temperature, "ood": clf.ood.to_dict(), "operating_threshold": clf.operating_threshold}
    save_checkpoint(out, clf.model, clf.spec, model_args, extras)
    write_card(out, clf.card)
    clf.path = out


def recalibrate(path: Path, data_path: str | Path | None = None, command: str = "") -> dict:
    """Refit temperature, OOD statistics and threshold of a trained checkpoint on its own split.

    The split is rebuilt from the card's training config; the dataset must have the same
    fingerprint as in training. Weights are unchanged. Returns the updated card.
    """
    from .checkpoint import load_checkpoint, read_card

    model, spec, state = load_checkpoint(path)
    card = read_card(path)
    cfg = TrainConfig(**card["training"]["config"])
    ds, _, train_idx, val_idx = training_split(load_dataset(spec, data_path), cfg.max_per_class, cfg.val_fraction, cfg.seed)
    if ds.fingerprint != card["data"]["fingerprint"]:
        raise ValueError(f"the dataset's fingerprint {ds.fingerprint} differs from the one {path} was trained on "
                         f"({card['data']['fingerprint']}); recalibrate on the same data")
    clf, fitted = calibrate(model, spec, ds.images[train_idx], ds.labels[train_idx], ds.images[val_idx],
                            ds.labels[val_idx], cfg.ood_quantile)
    card.update(calibration_sections(clf, fitted, ds.labels[val_idx], cfg.ood_quantile))
    card["training"]["recalibrated"] = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    clf.card = card
    save_classifier(clf, Path(path), state["model_args"])
    return card
