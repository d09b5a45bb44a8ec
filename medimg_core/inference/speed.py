"""CPU latency of a classifier, recorded in model cards so the Models page can compare speed.

Latency depends on the machine and what else it runs, so each measurement also times a fixed
reference in the same run: two 3x3 convolutions, global pooling and a linear layer on the same
letterboxed input. The ratio to it is comparable across machines; the targets are set as such ratios.
"""
from __future__ import annotations

import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from ..io.imaging import to_model_input
from .predict import Classifier


def reference_model(num_classes: int = 6) -> torch.nn.Module:
    """The fixed two-conv reference network (untrained; only its cost matters)."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
        torch.nn.Linear(16, num_classes)).eval()


def reference_predict(model: torch.nn.Module, image: np.ndarray, size: int) -> np.ndarray:
    """One image through the reference: letterbox, forward pass, softmax (as `Classifier.predict` does)."""
    with torch.inference_mode():
        x = torch.from_numpy(to_model_input(image, size))[None, None]
        return torch.softmax(model(x), 1).numpy()


def timed_ms(fn: Callable[[], object], repeats: int) -> np.ndarray:
    """Milliseconds of each of `repeats` calls of fn, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return np.array(times) * 1000


def predict_latency(clf: Classifier, repeats: int = 100, seed: int = 0) -> dict:
    """Milliseconds of one single-image `predict` (image already read, at the model's size) on this CPU."""
    size = clf.spec.image_size
    image = np.random.default_rng(seed).random((size, size), dtype=np.float32)
    ms = timed_ms(lambda: clf.predict(image), repeats)
    reference = reference_model(len(clf.classes))
    ref = timed_ms(lambda: reference_predict(reference, image, size), repeats)
    return {"predict_ms_median": round(float(np.median(ms)), 2), "predict_ms_p95": round(float(np.percentile(ms, 95)), 2),
            "reference_ms_median": round(float(np.median(ref)), 3),
            "times_reference": round(float(np.median(ms) / np.median(ref)), 2),
            "repeats": repeats, "threads": torch.get_num_threads(),
            "cpu": f"{platform.processor() or platform.machine()}", "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
