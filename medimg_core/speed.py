"""CPU latency of a classifier, recorded in model cards so the Models page can compare speed."""
from __future__ import annotations

import platform
import time

import numpy as np
import torch

from .predict import Classifier


def predict_latency(clf: Classifier, repeats: int = 100, seed: int = 0) -> dict:
    """Milliseconds of one single-image `predict` (image already read, at the model's size) on this CPU."""
    rng = np.random.default_rng(seed)
    size = clf.spec.image_size
    image = rng.random((size, size), dtype=np.float32)
    clf.predict(image)  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        clf.predict(image)
        times.append(time.perf_counter() - started)
    ms = np.array(times) * 1000
    return {"predict_ms_median": round(float(np.median(ms)), 2), "predict_ms_p95": round(float(np.percentile(ms, 95)), 2),
            "repeats": repeats, "threads": torch.get_num_threads(),
            "cpu": f"{platform.processor() or platform.machine()}", "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
