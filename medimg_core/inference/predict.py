"""The classifier object the app, the CLI and the tests share: predict and explain images."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from ..models.architectures import fuse_batch_norms
from ..models.checkpoint import default_model_path, load_checkpoint, read_card
from ..io.dicom_header import DicomHeader
from ..io.imaging import as_unit_gray, to_model_input
from .ood import RejectionRule
from .picture_check import not_a_scan
from .prediction import Prediction
from ..tasks import TaskSpec
from .verdict import Reading, decide

# Images per model call. On the CPU calls of 16-64 images are faster than larger ones (their activations stay in the
# cache): 1.3-1.7x for the scan-type CNN against calls of 256, and faster for every shipped model
# (`python -m benchmarks.model_chunk`; its numbers are in docs/benchmarks.md). A GPU wants large calls.
CPU_CHUNK, GPU_CHUNK = 32, 512


class Classifier:
    """A trained model with its task, calibration and out-of-distribution statistics.

    `predict` is safe to call from several threads at once (no state changes); `explain`
    builds its Grad-CAM hooks per call on a private copy of the model.
    """

    def __init__(self, model: torch.nn.Module, spec: TaskSpec, temperature: float, ood: RejectionRule,
                 card: dict | None = None, path: Path | None = None, operating_threshold: float | None = None):
        self.model = model.eval()
        self.spec = spec
        self.temperature = float(temperature)
        self.ood = ood
        self.card = card or {}
        self.path = path
        self.operating_threshold = operating_threshold

    @property
    def classes(self) -> tuple[str, ...]:
        return self.spec.classes

    @property
    def rejects(self) -> bool:
        """Whether the model has a rejection output ('other') after its classes."""
        return self.model.head.out_features == len(self.classes) + 1

    def model_view(self, image: np.ndarray) -> np.ndarray:
        """What the model sees of an image (any array `as_unit_gray` accepts): S x S, letterboxed or squashed as its
        task says (TaskSpec.fit), through the task's native resolution."""
        return self._view(as_unit_gray(image))

    def _view(self, gray: np.ndarray) -> np.ndarray:
        """model_view of an image already HxW float32 in [0, 1]."""
        return to_model_input(gray, self.spec.image_size, self.spec.native_size, self.spec.fit)

    def input_tensor(self, images: list[np.ndarray]) -> torch.Tensor:
        """Images of any size (any array `as_unit_gray` accepts) -> N x 1 x S x S model input (see model_view)."""
        return torch.from_numpy(np.stack([self.model_view(im) for im in images]))[:, None]

    @property
    def can_flip(self) -> bool:
        """Whether test-time augmentation (tta=True) does anything: the task allows left-right flips (TaskSpec.hflip)."""
        return self.spec.hflip

    @torch.inference_mode()
    def infer(self, x: torch.Tensor, batch_size: int | None = None, tta: bool = False) -> "Outputs":
        """Model input (N x 1 x S x S floats, or uint8 N x S x S) -> probabilities, OOD scores, features.

        tta: average the calibrated class probabilities of each image and of its left-right mirror, where
        the task allows flips (`can_flip`; otherwise it changes nothing). The rejection score, the features
        and P(other) stay those of the image as given, so the rejection rule flags what it was calibrated to.
        batch_size: images per model call (default: model_chunk for the model's device).
        """
        if x.dtype == torch.uint8:
            x = x.float().div(255)[:, None] if x.ndim == 3 else x.float().div(255)
        out = self._outputs(x, batch_size)
        if tta and self.can_flip:
            out = out._replace(probs=(out.probs + self._outputs(x.flip(-1), batch_size).probs) / 2)
        return out

    def _outputs(self, x: torch.Tensor, batch_size: int) -> "Outputs":
        """One pass of the model over N x 1 x S x S floats, in batches."""
        logits, feats, device = [], [], next(self.model.parameters()).device  # a model still on its training GPU
        batch_size = batch_size or model_chunk(device)
        for start in range(0, len(x), batch_size):
            f = self.model.features(x[start : start + batch_size].to(device))
            logits.append(self.model.head(f).float().cpu())
            feats.append(f.float().cpu())
        return outputs(torch.cat(logits), torch.cat(feats), len(self.classes), self.temperature, self.ood)

    def predict_batch(self, images: Sequence[np.ndarray], tta: bool = False,
                      headers: Sequence[DicomHeader | None] | None = None,
                      picture_checks: Sequence[str | None] | None = None) -> list[Prediction]:
        """Predict several images at once: read_image outputs, or any array `as_unit_gray` accepts (HxW or HxWxC
        uint8, uint16, or floats in [0, 1]; the same picture in any of these forms gets the same answer).

        tta: see `infer`. headers: each image's DICOM header (None for other files), which joins the pixels in
        the verdict (verdict.py). A picture with no scan in it (picture_check) is not recognised by any task.
        picture_checks: each image's picture_check.not_a_scan (a sentence, or None where the picture passed), for a
        caller that ran it on the full-size picture and hands in a model-size copy (the audit); by default it runs
        here, on the image given.
        Raises ValueError, naming what is accepted, for any other array.
        """
        grays = [as_unit_gray(im) for im in images]
        out = self.infer(torch.from_numpy(np.stack([self._view(g) for g in grays]))[:, None], tta=tta)
        other = out.p_other if out.p_other is not None else [None] * len(out.probs)
        headers = list(headers) if headers is not None else [None] * len(grays)
        if len(headers) != len(grays):
            raise ValueError(f"predict_batch got {len(grays)} images but {len(headers)} headers: give one per image")
        if picture_checks is None:
            picture_checks = [not_a_scan(g) for g in grays]
        elif len(picture_checks) != len(grays):
            raise ValueError(f"predict_batch got {len(grays)} images but {len(picture_checks)} picture checks")
        return [self._prediction(*args) for args in zip(out.probs, out.scores, other, picture_checks, headers)]

    def predict(self, image: np.ndarray, tta: bool = False, header: DicomHeader | None = None) -> Prediction:
        """Predict one image (see predict_batch); tta=True also looks at its left-right mirror and averages the two
        (see `infer`); header: its DICOM header, if any."""
        return self.predict_batch([image], tta=tta, headers=[header])[0]

    def label_indices(self, probs: np.ndarray) -> np.ndarray:
        """Predicted class per row: argmax, or the operating threshold on the positive class."""
        if self.operating_threshold is not None and self.spec.positive_class:
            pos = self.classes.index(self.spec.positive_class)
            return np.where(probs[:, pos] >= self.operating_threshold, pos, 1 - pos)
        return probs.argmax(1)

    def _prediction(self, probs: np.ndarray, score: float, p_other: float | None, picture_check: str | None,
                    header: DicomHeader | None) -> Prediction:
        """One image's Prediction: the verdict of its picture check, the model's reading and its header
        (verdict.decide)."""
        closest = self.classes[int(self.label_indices(probs[None])[0])]
        probabilities = {c: float(p) for c, p in zip(self.classes, probs)}
        other = None if p_other is None else float(p_other)
        reading = Reading(probabilities, closest, bool(score <= self.ood.threshold), other, picture_check)
        verdict = decide(self.spec, reading, header)
        return Prediction(
            label=verdict.label,
            confidence=probabilities[verdict.label or closest],
            probabilities=probabilities,
            in_distribution=verdict.label is not None,
            ood_score=float(score),
            other_probability=other,
            closest=closest,
            decided_by=verdict.decided_by,
            reason=verdict.reason,
            basis=verdict.basis,
            threshold=self.operating_threshold if self.spec.positive_class else None,
        )

    def explain(self, image: np.ndarray, method: str = "Grad-CAM", target: str | None = None) -> np.ndarray:
        """Heatmap (S x S float32 in [0, 1]) of where the model looked for `target` (default: predicted)."""
        from .explain import compute_cam

        x = self.input_tensor([image])
        target_idx = self.classes.index(target) if target is not None else None
        return compute_cam(self.model, self.model.cam_layer, x, method, target_idx)


class Outputs(NamedTuple):
    """A batch's calibrated class probabilities (N x K, given the task's kind), rejection scores (N; above
    the rule's threshold = not recognised), penultimate features (N x D) and P(other) (N, or None)."""

    probs: np.ndarray
    scores: np.ndarray
    features: np.ndarray
    p_other: np.ndarray | None


def model_chunk(device: torch.device) -> int:
    """Images per model call on a device: CPU_CHUNK on the CPU, GPU_CHUNK on an accelerator."""
    return CPU_CHUNK if device.type == "cpu" else GPU_CHUNK


def outputs(logits: torch.Tensor, features: torch.Tensor, num_classes: int, temperature: float,
            rule: RejectionRule) -> Outputs:
    """Turn raw logits (K or K+1 columns) and features into calibrated probabilities and rejection scores."""
    logits, features = logits.float().cpu(), features.float().cpu()
    probs = torch.softmax(logits[:, :num_classes] / temperature, 1).numpy()
    p_other = None
    if logits.shape[1] > num_classes:
        p_other = torch.softmax(logits / temperature, 1)[:, num_classes].numpy()
    return Outputs(probs, rule.score(features, p_other), features.numpy(), p_other)


def recognising_tasks(image: np.ndarray, others: dict[str, Classifier]) -> list[tuple[str, Prediction]]:
    """The other tasks whose model finds the image in-distribution, most familiar first.

    Where an image is flagged as unfamiliar by one task (a brain MRI sent to the scan-type
    model), these are the tasks worth suggesting instead.
    """
    found = []
    for task, clf in others.items():
        pred = clf.predict(image)
        if pred.in_distribution:
            found.append((task, pred, pred.ood_score / clf.ood.threshold))
    return [(task, pred) for task, pred, _ in sorted(found, key=lambda t: t[2])]


def model_path(task: str) -> Path:
    """The shipped checkpoint of a task."""
    return default_model_path(task)


def load_classifier(task: str | None = None, path: str | Path | None = None) -> Classifier:
    """Load a task's shipped classifier, or any checkpoint given by path, made ready for inference on the CPU: every
    batch norm folded into its convolution and channels-last memory (the same outputs to about 1e-6, 1.6-3x faster
    here: `python -m benchmarks.model_chunk`). The model is for inference only: train a checkpoint's own model
    (models.checkpoint.load_checkpoint), never this one."""
    if path is None:
        if task is None:
            raise ValueError("give a task name or a checkpoint path")
        path = default_model_path(task)
    path = Path(path)
    model, spec, state = load_checkpoint(path)
    if task is not None and spec.name != task:
        raise ValueError(f"{path} is a model for task {spec.name!r}, not {task!r}.")
    fuse_batch_norms(model).to(memory_format=torch.channels_last)
    return Classifier(model, spec, state["temperature"], RejectionRule.from_dict(state["ood"]),
                      read_card(path), path, state.get("operating_threshold"))
