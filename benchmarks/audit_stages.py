"""Where the audit's time goes: each step of its decode and model stages on one thread, per MedNIST file.

`benchmarks.audit_throughput` times the whole audit against the decode-only floor; this splits the audit's work per
file into its steps, in process and without Ray, so the gap can be read off: what the floor does (reading and
decoding a file) against everything else the audit does for it (format, digest, picture check, pHash, model).
With `--int8`, the modality model's features also as an int8 model (PyTorch's FX graph mode post-training
quantization, engine x86, calibrated on other MedNIST files), with how many verdicts that changes.

Usage: MEDIMG_DATA_DIR=../shared/data python -m benchmarks.audit_stages [--files 3000] [--int8]
Prints one line per step: ms per file on one thread (the fastest of --repeats passes).
"""
from __future__ import annotations

import argparse
import copy
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import torch

from benchmarks.audit_throughput import unpack
from medimg_core.data.duplicates import perceptual_hashes
from medimg_core.inference.audit import decode_batch, file_digest, predictor_for, stage_side
from medimg_core.inference.audit_files import discover, file_format
from medimg_core.inference.picture_check import not_a_scan
from medimg_core.inference.predict import CPU_CHUNK
from medimg_core.io.imaging import read_image, to_model_input, to_uint8


def ms_per_item(step: Callable[[list], object], items: list, repeats: int) -> float:
    """The fastest of `repeats` calls of step(items), in ms per item."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step(items)
        best = min(best, time.perf_counter() - started)
    return 1000 * best / len(items)


def in_calls(model: Callable, inputs: list[torch.Tensor]) -> None:
    """model over the inputs in calls of predict.CPU_CHUNK images, as Classifier.infer runs it on the CPU."""
    with torch.inference_mode():
        for start in range(0, len(inputs), CPU_CHUNK):
            model(torch.stack(inputs[start:start + CPU_CHUNK]))


def int8_features(model: torch.nn.Module, calibration: torch.Tensor) -> torch.nn.Module:
    """model.features as an int8 model (FX graph mode, engine x86), its activation ranges from `calibration`."""
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    class Features(torch.nn.Module):
        def __init__(self, net: torch.nn.Module):
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net.features(x)

    torch.backends.quantized.engine = "x86"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        prepared = prepare_fx(Features(copy.deepcopy(model)).eval(), get_default_qconfig_mapping("x86"),
                              example_inputs=(calibration[:32],))
        with torch.inference_mode():
            for start in range(0, len(calibration), 32):
                prepared(calibration[start:start + 32])
        return convert_fx(prepared)


def int8_check(clf, images: list, x: list[torch.Tensor], calibration: list, repeats: int) -> None:
    """Print the modality model's features as float and as int8 (ms per image in calls of CPU_CHUNK), and how many of
    the images' labels and flags the int8 model changes. x: the images as model input; calibration: other images."""
    quantized = int8_features(clf.model, clf.input_tensor(calibration))
    float_ms = ms_per_item(lambda t: in_calls(clf.model.features, t), x, repeats)
    int8_ms = ms_per_item(lambda t: in_calls(quantized, t), [t.contiguous() for t in x], repeats)
    before = clf.predict_batch(images)
    clf.model.features = lambda batch: quantized(batch.contiguous())
    after = clf.predict_batch(images)
    labels = sum(a.label != b.label for a, b in zip(before, after))
    flags = sum(a.in_distribution != b.in_distribution for a, b in zip(before, after))
    print(f"{'model features, float (as loaded)':42s} {float_ms:6.3f}")
    print(f"{'model features, int8 (FX, x86)':42s} {int8_ms:6.3f}")
    print(f"int8 against float on {len(images)} files: {labels} labels and {flags} flags differ "
          f"(float flags {sum(not a.in_distribution for a in before)}, "
          f"int8 {sum(not b.in_distribution for b in after)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--int8", action="store_true", help="also the modality model as int8, and its verdicts")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = Path(os.environ.get("MEDIMG_DATA_DIR", "../shared/data"))
    with tempfile.TemporaryDirectory(prefix="audit-stages-") as tmp_name:
        tmp = Path(tmp_name)
        paths = unpack(data / "MedNIST.tar.gz", tmp, args.files + 512, ".jpeg", every=4)
        paths, calibration_paths = paths[:args.files], paths[args.files:]
        wanted = {str(p) for p in paths}
        items = [item for item in discover([tmp]) if str(item["path"]) in wanted]
        actor = predictor_for("modality", None)(threads=1)
        side, fit = stage_side(actor.clf.spec), actor.clf.spec.fit  # what the audit's decode stage hands on
        blobs = [p.read_bytes() for p in paths]
        pictures = [read_image(b) for b in blobs]
        images = [to_model_input(p, side, fit=fit) for p in pictures]
        decoded = decode_batch(pa.Table.from_pylist(items), side, fit, b"salt")
        model_inputs = list(actor.clf.input_tensor(images))
        steps = {
            "read the file's bytes": (lambda ps: [p.read_bytes() for p in ps], paths),
            "read_image (decode: the floor's work)": (lambda bs: [read_image(b) for b in bs], blobs),
            "file_format": (lambda bs: [file_format(b) for b in bs], blobs),
            "file_digest": (lambda bs: [file_digest(b, b"salt") for b in bs], blobs),
            "not_a_scan (the picture check)": (lambda ps: [not_a_scan(p) for p in ps], pictures),
            "to_model_input": (lambda ps: [to_model_input(p, side, fit=fit) for p in ps], pictures),
            "perceptual_hashes (one call)": (lambda ims: perceptual_hashes([to_uint8(i) for i in ims]), images),
            "decode stage in all (decode_batch)": (
                lambda its: decode_batch(pa.Table.from_pylist(its), side, fit, b"salt"), items),
            "model stage in all (the actor)": (
                lambda rows: [actor(decoded.slice(k, 256)) for k in range(0, len(rows), 256)],
                list(range(decoded.num_rows))),
            "- of which the model (Classifier.infer)": (lambda t: actor.clf.infer(torch.stack(t)), model_inputs),
        }
        print(f"{len(paths)} MedNIST JPEGs, one thread; ms per file")
        times = {}
        for name, (step, inputs) in steps.items():
            times[name] = ms_per_item(step, inputs, args.repeats)
            print(f"{name:42s} {times[name]:6.3f}", flush=True)
        floor = times["read the file's bytes"] + times["read_image (decode: the floor's work)"]
        audit = times["decode stage in all (decode_batch)"] + times["model stage in all (the actor)"]
        free_model = audit - times["- of which the model (Classifier.infer)"]
        print(f"the floor's work {floor:.3f} ms, the audit's {audit:.3f} ms per file: {audit / floor:.1f}x, "
              f"{free_model / floor:.1f}x with a model that cost nothing")
        if args.int8:
            calibration = [to_model_input(read_image(p.read_bytes()), side, fit=fit) for p in calibration_paths]
            int8_check(actor.clf, images, model_inputs, calibration, args.repeats)


if __name__ == "__main__":
    main()
