"""CPU latency of a classifier, recorded in model cards so the Models page can compare speed."""
from __future__ import annotations

import platform
import time
from collections.abc import Callable

import numpy as np
import torch

from .predict import Classifier


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
    return {"predict_ms_median": round(float(np.median(ms)), 2), "predict_ms_p95": round(float(np.percentile(ms, 95)), 2),
            "repeats": repeats, "threads": torch.get_num_threads(),
            "cpu": f"{platform.processor() or platform.machine()}", "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
