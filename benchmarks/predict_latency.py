"""Load time and single-image predict / Grad-CAM latency of a shipped model on this CPU.

Usage: python -m benchmarks.predict_latency [--task modality] [--repeats 200] [--threads N]
Prints one line per measurement (median and 95th percentile over repeats).
"""
from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys

import numpy as np
from PIL import Image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="modality")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()

    # load time in a fresh process, including `import torch`
    code = ("import time; t=time.perf_counter(); import torch; from medimg_core import load_classifier; "
            f"t1=time.perf_counter(); load_classifier({args.task!r}); t2=time.perf_counter(); print(t1-t, t2-t1)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    runs = np.array([[float(v) for v in subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                          check=True, cwd=root).stdout.split()] for _ in range(5)])
    print(f"load in a fresh process: import torch + medimg_core median {np.median(runs[:, 0]) * 1000:.0f} ms, "
          f"then load_classifier median {np.median(runs[:, 1]) * 1000:.0f} ms (over 5)")

    import torch

    from medimg_core import load_classifier, read_image
    from medimg_core.inference.speed import reference_model, reference_predict, timed_ms

    if args.threads:
        torch.set_num_threads(args.threads)
    clf = load_classifier(args.task)
    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (512, 512), dtype=np.uint8)).save(buf, format="PNG")
    png = buf.getvalue()
    image = read_image(png)

    reference = reference_model(len(clf.classes))
    size = clf.spec.image_size
    ms_ref = timed_ms(lambda: reference_predict(reference, image, size), args.repeats)
    ms_clf = timed_ms(lambda: clf.predict(image), args.repeats)
    print(f"fixed two-conv reference (512x512 image read, letterboxed to {size}): median {np.median(ms_ref):.2f} ms; "
          f"predict: median {np.median(ms_clf):.2f} ms = {np.median(ms_clf) / np.median(ms_ref):.1f}x the reference")
    for name, fn, n in [
        ("predict (512x512 image already read)", lambda: clf.predict(image), args.repeats),
        ("read_image + predict (512x512 PNG bytes)", lambda: clf.predict(read_image(png)), args.repeats),
        ("explain Grad-CAM", lambda: clf.explain(image, "Grad-CAM"), max(20, args.repeats // 4)),
        ("explain ScoreCAM", lambda: clf.explain(image, "ScoreCAM"), 10),
    ]:
        ms = timed_ms(fn, n)
        print(f"{name}: median {np.median(ms):.2f} ms, p95 {np.percentile(ms, 95):.2f} ms over {n} "
              f"(torch threads {torch.get_num_threads()})")


if __name__ == "__main__":
    main()
