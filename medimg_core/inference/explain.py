"""Grad-CAM family heatmaps via pytorch-grad-cam, with hooks created and released per call."""
from __future__ import annotations

import copy
from collections.abc import Sequence

import numpy as np
import torch
from pytorch_grad_cam import (AblationCAM, EigenCAM, GradCAM, GradCAMPlusPlus, HiResCAM, LayerCAM, ScoreCAM,
                              XGradCAM)
from pytorch_grad_cam.utils.image import show_cam_on_image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

CAM_METHODS = {
    "Grad-CAM": GradCAM,
    "Grad-CAM++": GradCAMPlusPlus,
    "HiResCAM": HiResCAM,
    "XGradCAM": XGradCAM,
    "LayerCAM": LayerCAM,
    "EigenCAM": EigenCAM,
    "ScoreCAM": ScoreCAM,
    "AblationCAM": AblationCAM,
}
GRADIENT_FREE = ("ScoreCAM", "AblationCAM")  # many forward passes: slower


def compute_cam(model: torch.nn.Module, layer_name: str | Sequence[str], x: torch.Tensor, method: str,
                target: int | None) -> np.ndarray:
    """Run one CAM method on a 1 x 1 x S x S input; returns S x S float32 in [0, 1].

    Several layers (an ensemble's members) give one heatmap each, averaged by pytorch-grad-cam.
    The model is copied first, so concurrent calls (several browser sessions) never share
    hooks or stored activations, and the shared model is never touched.
    """
    if method not in CAM_METHODS:
        raise ValueError(f"unknown CAM method {method!r}; choose one of {', '.join(CAM_METHODS)}")
    private = copy.deepcopy(model).eval()
    names = [layer_name] if isinstance(layer_name, str) else list(layer_name)
    layers = [private.get_submodule(name) for name in names]
    targets = None if target is None else [ClassifierOutputTarget(int(target))]
    with CAM_METHODS[method](model=private, target_layers=layers) as cam:
        if method in GRADIENT_FREE:
            cam.batch_size = 64  # masked copies of the input run 64 at a time
        heat = cam(input_tensor=x.float(), targets=targets)[0]
    heat = np.nan_to_num(heat.astype(np.float32))
    return heat / heat.max() if heat.max() > 0 else heat


def overlay(image: np.ndarray, heatmap: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Colour the heatmap over a same-size [0, 1] grayscale image; returns HxWx3 uint8 RGB."""
    rgb = np.repeat(image[..., None], 3, axis=2).astype(np.float32)
    return show_cam_on_image(rgb, heatmap, use_rgb=True, image_weight=1.0 - float(opacity))
