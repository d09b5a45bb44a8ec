"""Images per model call on the CPU: each shipped model's ms per image at several call sizes.

`Classifier.infer` cuts a batch into calls of `predict.CPU_CHUNK` images on the CPU. This measures why: the model's
features over random inputs at each call size, as the checkpoint holds it and as `load_classifier` makes it (batch
norms folded, channels-last). Small calls keep the activations in the cache.

Usage: python -m benchmarks.model_chunk [--tasks modality pneumonia brain-tumor] [--chunks 16 32 64 128 256]
           [--threads 2] [--repeats 2]
Prints one line per task and model form: ms per image at each call size (the fastest of `repeats` passes).
"""
from __future__ import annotations

import argparse
import time

import torch


def ms_per_image(model: torch.nn.Module, x: torch.Tensor, chunk: int, repeats: int) -> float:
    """The fastest of `repeats` passes of model.features over x in calls of `chunk` images, in ms per image."""
    best = float("inf")
    with torch.inference_mode():
        model.features(x[:chunk])
        for _ in range(repeats):
            started = time.perf_counter()
            for start in range(0, len(x), chunk):
                model.features(x[start:start + chunk])
            best = min(best, time.perf_counter() - started)
    return 1000 * best / len(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["modality", "pneumonia", "brain-tumor"])
    parser.add_argument("--chunks", nargs="+", type=int, default=[16, 32, 64, 128, 256])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    from medimg_core import load_classifier
    from medimg_core.models.checkpoint import load_checkpoint

    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads {torch.get_num_threads()}; ms per image at {' / '.join(map(str, args.chunks))} a call")
    for task in args.tasks:
        clf = load_classifier(task)
        side = clf.spec.image_size
        x = torch.rand(max(args.chunks), 1, side, side, generator=torch.Generator().manual_seed(0))
        plain = load_checkpoint(clf.path)[0]
        for name, model, inputs in [("as the checkpoint holds it", plain, x),
                                    ("as load_classifier makes it", clf.model,
                                     x.contiguous(memory_format=torch.channels_last))]:
            cells = [f"{ms_per_image(model, inputs, chunk, args.repeats):.2f}" for chunk in args.chunks]
            print(f"{task} ({side} px), {name}: {' / '.join(cells)}", flush=True)


if __name__ == "__main__":
    main()
