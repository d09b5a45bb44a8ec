"""Training throughput (images/s, forward + backward + AdamW step) of the ResNet-18 (or `--architecture`) at
several input sizes and widths on this machine, in float32 (contiguous and channels-last) and in bf16 autocast
(channels-last), and what `torch.compile` costs and buys.

Usage: python -m benchmarks.train_throughput [--sizes 160 192 224] [--widths 32 48 64] [--batch-size 64]
           [--steps 6] [--compile] [--architecture resnet18|resnet50|compact-cnn]
Prints one Markdown table row per (size, width): images/s in fp32 (both layouts) and bf16, and the speed-ups of
channels-last fp32 and of bf16 over contiguous fp32.
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from medimg_core.models.architectures import build_model
from medimg_core.training.fit import bf16_is_emulated


def images_per_second(model: torch.nn.Module, size: int, batch: int, steps: int, bf16: bool,
                      channels_last: bool = True) -> float:
    """Training images/s over `steps` steps after two warm-up steps (random inputs, 4 classes)."""
    layout = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=layout).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(batch, 1, size, size).contiguous(memory_format=layout)
    y = torch.randint(0, 4, (batch,))
    elapsed = 0.0
    for step in range(steps + 2):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step >= 2:
            elapsed += time.perf_counter() - started
    return batch * steps / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 160, 192, 224])
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 48, 64])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--architecture", default="resnet18", help="an architecture of models.architectures")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile at the first size and width")
    args = parser.parse_args()
    print(f"{args.architecture}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"batch {args.batch_size}, "
          f"CPU instructions: {torch.backends.cpu.get_cpu_capability()}, native bf16: "
          f"{not bf16_is_emulated(torch.device('cpu'))}, AMX: {torch.cpu._is_amx_tile_supported()}")
    print("| input | width | parameters | fp32 img/s | fp32 channels-last | bf16 channels-last | speed-ups |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for size in args.sizes:
        for width in args.widths:
            torch.manual_seed(0)
            model = build_model(args.architecture, 4, width=width, reject=True)
            n = sum(p.numel() for p in model.parameters())
            fp32 = images_per_second(model, size, args.batch_size, args.steps, bf16=False, channels_last=False)
            fp32_cl = images_per_second(model, size, args.batch_size, args.steps, bf16=False)
            bf16 = images_per_second(model, size, args.batch_size, args.steps, bf16=True)
            print(f"| {size} px | {width} | {n / 1e6:.1f} M | {fp32:.0f} | {fp32_cl:.0f} | {bf16:.0f} | "
                  f"{fp32_cl / fp32:.2f}x / {bf16 / fp32:.2f}x |", flush=True)
    if args.compile:
        size, width = args.sizes[0], args.widths[0]
        model = build_model(args.architecture, 4, width=width, reject=True)
        started = time.perf_counter()
        compiled = torch.compile(model)
        first = images_per_second(compiled, size, args.batch_size, 1, bf16=True)
        compile_s = time.perf_counter() - started
        steady = images_per_second(compiled, size, args.batch_size, args.steps, bf16=True)
        eager = images_per_second(build_model(args.architecture, 4, width=width, reject=True), size, args.batch_size,
                                  args.steps, bf16=True)
        print(f"torch.compile at {size} px, width {width}, bf16: {compile_s:.0f} s to compile and run 3 steps "
              f"({first:.0f} img/s then), {steady:.0f} img/s once compiled vs {eager:.0f} eager "
              f"({steady / eager:.2f}x); it pays off after {compile_s / max(1e-9, 1 / eager - 1 / steady) / 1000:.0f}k images"
              if steady > eager else
              f"torch.compile at {size} px, width {width}, bf16: {compile_s:.0f} s to compile, {steady:.0f} img/s "
              f"vs {eager:.0f} eager: no gain, so training stays eager")


if __name__ == "__main__":
    main()
