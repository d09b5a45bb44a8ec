"""A scikit-learn baseline for comparison: logistic regression on PCA features of the pixels."""
from __future__ import annotations

import time

import numpy as np
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline

from ..inference.metrics import compute_metrics


def pca_logistic_baseline(train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray,
                          classes: tuple[str, ...], components: int = 64, max_train: int = 20000,
                          seed: int = 0) -> dict:
    """Fit PCA + logistic regression on (a sample of) the training pixels; metrics on validation."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(train_y), min(max_train, len(train_y)), replace=False)
    flat = lambda x: x.reshape(len(x), -1).astype(np.float32) / 255.0  # noqa: E731
    start = time.perf_counter()
    components = min(components, len(pick) - 1, train_x[0].size)  # a small training set has fewer components
    pipe = make_pipeline(PCA(components, random_state=seed), LogisticRegression(max_iter=500))
    pipe.fit(flat(train_x[pick]), train_y[pick])
    seconds = time.perf_counter() - start
    metrics = compute_metrics(pipe.predict_proba(flat(val_x)), val_y, classes)
    return {"model": f"PCA({components}) + logistic regression (scikit-learn)", "train_images": int(len(pick)),
            "training_seconds": round(seconds, 1), **{k: metrics[k] for k in ("accuracy", "macro_f1", "auc", "ece")}}
