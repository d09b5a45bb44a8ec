"""Take the README's screenshot: the Predict page with a shipped example scan, in headless Chromium.

Starts `streamlit run streamlit_app.py` on a free local port (as `benchmarks/first_paint.py` does),
drops one of the shipped MedNIST examples (`assets/examples/`, CC BY-SA 4.0) into the Predict page,
waits for the label, the charts and the Grad-CAM heatmap, and saves a small palette PNG.
Not for: the documentation build (mkdocs never runs this; re-run it by hand when the page changes).
Usage: python docs/tools/screenshot_predict.py [--example assets/examples/modality/HeadCT/<file>.png]
"""
from __future__ import annotations

import argparse
import io
import re
import sys
import tempfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the benchmarks package of this checkout, when run as a script

from benchmarks.explorer_page import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402
from benchmarks.first_paint import start_server, wait_healthy  # noqa: E402

OUT = ROOT / "docs" / "images" / "predict-page.png"
TIMEOUT_MS = 120_000


def default_example() -> Path:
    """The first shipped head CT example (a shipped file, so the screenshot can be taken without data)."""
    examples = sorted((ROOT / "assets" / "examples" / "modality" / "HeadCT").glob("*.png"))
    if not examples:
        raise SystemExit("no shipped example under assets/examples/modality/HeadCT/: pass --example PATH")
    return examples[0]


def capture(example: Path, width: int, height: int) -> bytes:
    """A PNG of the Predict page after `example` was dropped in and its result drawn."""
    from playwright.sync_api import sync_playwright

    port = free_port()
    with tempfile.TemporaryFile() as log, sync_playwright() as p:
        server = start_server(port, log)
        try:
            wait_healthy(port, server)
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"http://127.0.0.1:{port}/predict")
            page.locator("input[type=file]").first.set_input_files(str(example))
            page.get_by_role("heading", name=example.name, exact=True).wait_for(timeout=TIMEOUT_MS)
            page.get_by_text(re.compile(r"^Raw heatmap")).wait_for(timeout=TIMEOUT_MS)
            page.locator("[data-testid=stPlotlyChart]").first.wait_for(timeout=TIMEOUT_MS)
            page.wait_for_timeout(1500)  # let the charts finish their first animation
            shot = page.screenshot(full_page=False)
            browser.close()
        finally:
            server.terminate()
            server.wait(timeout=20)
    return shot


def shrink(png: bytes, width: int, colours: int) -> Image.Image:
    """Scale to `width` pixels and keep `colours` palette colours: a README picture of a few hundred kB."""
    image = Image.open(io.BytesIO(png)).convert("RGB")
    height = round(image.height * width / image.width)
    return image.resize((width, height), Image.Resampling.LANCZOS).quantize(colours, dither=Image.Dither.NONE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", type=Path, help="image to drop in (default: a shipped head CT example)")
    parser.add_argument("--width", type=int, default=1000, help="width of the saved PNG in pixels (default 1000)")
    parser.add_argument("--colours", type=int, default=256, help="palette colours of the saved PNG (default 256)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    example = (args.example or default_example()).resolve()
    shrink(capture(example, 1440, 1420), args.width, args.colours).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1024:.0f} kB) from {example.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
