"""`medimg calibrate`: refit a trained model's temperature, rejection statistics and operating threshold on the
split it was trained with, the weights unchanged (calibration.py holds the fitting itself)."""
from __future__ import annotations

import time
from pathlib import Path

from tqdm.auto import tqdm

from .calibration import calibrate, calibration_sections
from ..models.checkpoint import load_checkpoint, read_card
from ..data.sources import own_origin
from .train import TrainConfig, card_parts, save_classifier, training_data, training_split


def recalibrate(path: Path, data_path: str | Path | None = None, command: str = "", out: Path | None = None,
                progress: bool = False) -> dict:
    """Refit temperature, OOD statistics and threshold of a trained checkpoint on its own split.

    The split is rebuilt from the card's training config; the dataset must have the same
    fingerprint as in training. Weights are unchanged; thresholds chosen by cross-validation
    (the card's `rejection`) are kept. The recalibrated model and card are written to `out`
    (default: over `path`; the CLI passes a copy, see runs.writable_model). progress: a bar of
    the steps on stderr. Returns the updated card.
    """
    with tqdm(total=4, desc="calibrate", unit="step", disable=None if progress else True) as bar:
        bar.set_postfix_str("reading the data")
        model, spec, state = load_checkpoint(path)
        card = read_card(path)
        cfg = TrainConfig(**card["training"]["config"])
        ds, _ = training_data(spec, cfg, data_path, parts=card_parts(card))
        if ds.fingerprint != card["data"]["fingerprint"]:
            raise ValueError(f"the dataset's fingerprint {ds.fingerprint} differs from the one {path} was trained on "
                             f"({card['data']['fingerprint']}); recalibrate on the same data")
        bar.update()
        bar.set_postfix_str("rebuilding the split")
        _, train_idx, val_idx = training_split(ds, spec, cfg)
        own_val = val_idx[ds.origin[val_idx] == own_origin(spec)]
        bar.update()
        bar.set_postfix_str(f"features of {len(train_idx) + len(own_val):,} images")
        clf, fitted = calibrate(model, spec, ds, train_idx, own_val, cfg.ood_quantile, card.get("rejection"))
        bar.update()
        bar.set_postfix_str("writing")
        card.update(calibration_sections(clf, fitted, cfg.ood_quantile))
        card["training"]["recalibrated"] = {"command": command, "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        clf.card = card
        save_classifier(clf, Path(out or path), state["model_args"])
        bar.update()
    return card
