"""A class demo: N browser sessions dropping a scan on the Predict page at the same moment, and one session alone.

Starts `streamlit run streamlit_app.py` in --root (default: this checkout) on a free local port
(environment inherited: set MEDIMG_DATA_DIR as for the app), drives headless Chromium with
Playwright, and prints, per round, the slowest and the median of, counted from the moment a
session's file is handed to its upload box:

- uploaded (in the JSON only): the server has taken the file (the browser's upload request is done);
- label: the result card's heading (the label, or "Not recognised") is on the page;
- done: the page has finished its run (card, probabilities, heatmap and any second step drawn).

Each round opens N fresh sessions on the Predict page and waits until every one shows the upload
box (the shipped scan-type model is loaded then), then all drop their file at once. Most
sessions drop a shipped MedNIST chest X-ray (`assets/examples/modality/CXR`), so the pneumonia
triage runs; every --flagged-every'th drops a brain MRI slice from $MEDIMG_DATA_DIR that the
scan-type model flags as unfamiliar (a checkerboard drawn in code when the archive is absent),
so the other tasks' models are asked whether they know it. The first round is the class arriving
at a freshly started app; the browser's own drawing shares the machine with the server.
--py-spy FILE samples the server during the class rounds (collapsed stacks; needs py-spy).

Usage: python -m benchmarks.class_demo [--sessions 8] [--rounds 2] [--alone 3] [--root DIR] [--py-spy FILE]
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.async_api import TimeoutError as PlaywrightTimeout

from benchmarks.explorer_page import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port
from benchmarks.first_paint import wait_healthy

TIMEOUT_MS = 300_000  # one session's longest wait for its label or the end of its run
LABEL = "[data-testid=stMarkdownContainer] h2"  # the result card's heading: the label or "Not recognised"
IDLE = "[data-testid=stApp][data-test-script-state=notRunning]"
EXCEPTION = "[data-testid=stException]"  # a failed run shows this instead of a label
BRAIN_ARCHIVE = "brain-tumor-mri-training.tar.gz"


@dataclass
class Upload:
    """One file a session drops: its name, bytes and what it stands for."""

    name: str
    data: bytes
    kind: str  # "chest X-ray" or "flagged"


def png_of(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 array."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def checkerboard_png(cells: int = 8, size: int = 96) -> bytes:
    """A black-and-white checkerboard: a picture that is no scan of any kind."""
    yy, xx = np.mgrid[:size, :size] * cells // size
    return png_of(((xx + yy) % 2 * 255).astype(np.uint8))


def chest_xrays(root: Path) -> list[bytes]:
    """The shipped MedNIST chest X-ray examples (PNG bytes)."""
    files = sorted((root / "assets" / "examples" / "modality" / "CXR").glob("*.png"))
    if not files:
        raise FileNotFoundError(f"no chest X-ray examples in {root}/assets/examples/modality/CXR")
    return [f.read_bytes() for f in files]


def flagged_image(limit: int = 40) -> tuple[str, bytes]:
    """A brain MRI slice the scan-type model flags (read in memory from the data folder), else a checkerboard."""
    archive = Path(os.environ.get("MEDIMG_DATA_DIR", ROOT.parent / "shared" / "data")) / BRAIN_ARCHIVE
    if archive.is_file():
        from medimg_core import load_classifier, read_image

        modality = load_classifier("modality")
        with tarfile.open(archive) as tar:
            for n, member in enumerate(m for m in tar if m.isfile() and m.name.endswith(".jpg")):
                data = tar.extractfile(member).read()
                if not modality.predict(read_image(data)).in_distribution:
                    return "brain-mri.jpg", data
                if n >= limit:
                    break
    return "checkerboard.png", checkerboard_png()


def class_uploads(n: int, flagged_every: int, root: Path) -> list[Upload]:
    """What each of n sessions drops: chest X-rays, and a flagged image in every flagged_every'th session."""
    xrays, (flag_name, flag_data) = chest_xrays(root), flagged_image()
    uploads = []
    for i in range(n):
        if flagged_every and (i + 1) % flagged_every == 0:
            uploads.append(Upload(f"s{i + 1}-{flag_name}", flag_data, "flagged"))
        else:
            uploads.append(Upload(f"s{i + 1}-chest.png", xrays[i % len(xrays)], "chest X-ray"))
    return uploads


def start_server(root: Path, port: int, log) -> subprocess.Popen:
    """Start `streamlit run streamlit_app.py` in `root` on 127.0.0.1:port (not waiting for it)."""
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    return subprocess.Popen(cmd, cwd=root, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)


async def open_predict(browser, url: str):
    """A fresh browser context (its own Streamlit session) on the Predict page, once the page has run."""
    context = await browser.new_context(viewport={"width": 1600, "height": 1200})
    page = await context.new_page()
    await page.goto(f"{url}/predict")
    await page.locator("input[type=file]").first.wait_for(state="attached", timeout=TIMEOUT_MS)
    await page.get_by_text("Drop a scan above").wait_for(timeout=TIMEOUT_MS)
    await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)
    return context, page


async def drop_and_time(page, upload: Upload) -> dict:
    """Hand the file to the page's upload box; seconds until the label shows and until the run ends."""
    mime = "image/jpeg" if upload.name.endswith(".jpg") else "image/png"
    uploaded: list[float] = []  # when the server has taken the file (its upload request has finished)
    page.on("requestfinished", lambda r: uploaded.append(time.perf_counter()) if "upload_file" in r.url else None)
    start = time.perf_counter()
    await page.locator("input[type=file]").first.set_input_files(
        {"name": upload.name, "mimeType": mime, "buffer": upload.data})
    heading = page.locator(f"{LABEL}, {EXCEPTION}").first
    try:
        await heading.wait_for(timeout=TIMEOUT_MS)
        label_s = time.perf_counter() - start
        await page.locator(IDLE).wait_for(state="attached", timeout=TIMEOUT_MS)
        done_s = time.perf_counter() - start
    except PlaywrightTimeout:
        text = await page.locator("[data-testid=stMain]").inner_text()
        return {"kind": upload.kind, "label": None, "label_s": None, "done_s": None,
                "missing": f"nothing within {TIMEOUT_MS / 1000:.0f} s; the page shows: {text[-600:]!r}"}
    failed = page.locator(EXCEPTION)
    return {"kind": upload.kind, "label": (await heading.inner_text()).strip()[:80],
            "uploaded_s": round(uploaded[0] - start, 2) if uploaded else None, "label_s": round(label_s, 2),
            "done_s": round(done_s, 2), "second_step": await page.locator(".st-key-follow_up").count() > 0,
            "other_task": await page.locator(".st-key-other_tasks").count() > 0,
            "exception": (await failed.first.inner_text())[-2000:] if await failed.count() else None}


async def class_round(browser, url: str, uploads: list[Upload]) -> list[dict]:
    """len(uploads) fresh sessions, all ready, then all dropping their file at the same moment."""
    opened = await asyncio.gather(*(open_predict(browser, url) for _ in uploads))
    try:
        return list(await asyncio.gather(*(drop_and_time(page, up) for (_, page), up in zip(opened, uploads))))
    finally:
        await asyncio.gather(*(context.close() for context, _ in opened))


def summary(results: list[dict]) -> dict:
    """Slowest and median label and done seconds of a round (a session that got nothing counts as TIMEOUT_MS)."""
    wait = TIMEOUT_MS / 1000
    label = [wait if r["label_s"] is None else r["label_s"] for r in results]
    done = [wait if r["done_s"] is None else r["done_s"] for r in results]
    return {"label_max_s": max(label), "label_median_s": round(statistics.median(label), 2),
            "done_max_s": max(done), "done_median_s": round(statistics.median(done), 2),
            "missing": sum(r["label_s"] is None for r in results),
            "exceptions": sum(bool(r.get("exception")) for r in results)}


def uptime() -> str:
    """The machine's `uptime` line (load averages over 1, 5 and 15 minutes)."""
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def start_profiler(pid: int, out: str) -> subprocess.Popen:
    """py-spy sampling every thread of the server process into collapsed stacks (stopped with SIGINT)."""
    py_spy = Path(sys.executable).with_name("py-spy")
    cmd = [str(py_spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "50", "--threads", "-o", out]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def run(args) -> dict:
    """Start the server, run the class rounds and the lone sessions, and return every timing."""
    from playwright.async_api import async_playwright

    root = Path(args.root).resolve()
    uploads = class_uploads(args.sessions, args.flagged_every, root)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = {"root": str(root), "sessions": args.sessions, "uptime_before": uptime(), "rounds": [], "alone": []}
    with tempfile.TemporaryFile() as log:
        server = start_server(root, port, log)
        try:
            wait_healthy(port, server)
            async with async_playwright() as p:
                browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                profiler = start_profiler(server.pid, args.py_spy) if args.py_spy else None
                for n in range(args.rounds):
                    results = await class_round(browser, url, uploads)
                    out["rounds"].append({"results": results, **summary(results)})
                    s = out["rounds"][-1]
                    print(f"round {n + 1}: {args.sessions} sessions at once: label slowest {s['label_max_s']:.2f} s, "
                          f"median {s['label_median_s']:.2f} s; done slowest {s['done_max_s']:.2f} s, "
                          f"median {s['done_median_s']:.2f} s; no result {s['missing']}, exceptions {s['exceptions']}",
                          flush=True)
                if profiler:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(timeout=60)
                for n in range(args.alone):
                    result = (await class_round(browser, url, uploads[:1]))[0]
                    out["alone"].append(result)
                    print(f"alone {n + 1}: label {result['label_s']} s, done {result['done_s']} s", flush=True)
                await browser.close()
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()
            if args.log:
                log.seek(0)
                Path(args.log).write_bytes(log.read())
    out["uptime_after"] = uptime()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8, help="browser sessions uploading at once")
    parser.add_argument("--rounds", type=int, default=2, help="class rounds (the first meets a fresh server)")
    parser.add_argument("--alone", type=int, default=3, help="single sessions afterwards, one at a time")
    parser.add_argument("--flagged-every", type=int, default=4, help="every k-th session drops a flagged image (0: none)")
    parser.add_argument("--root", default=str(ROOT), help="the checkout whose app is served")
    parser.add_argument("--py-spy", default=None, metavar="FILE", help="sample the server during the class rounds")
    parser.add_argument("--log", default=None, metavar="FILE", help="keep the server's output here")
    args = parser.parse_args()
    out = asyncio.run(run(args))
    if out["rounds"]:
        worst = max(r["label_max_s"] for r in out["rounds"])
        print(f"class: slowest upload-to-label {worst:.2f} s over {len(out['rounds'])} rounds of {args.sessions}")
    if out["alone"]:
        print(f"alone: median upload-to-label {summary(out['alone'])['label_median_s']:.2f} s over {len(out['alone'])}")
    print(f"uptime before: {out['uptime_before']}\nuptime after:  {out['uptime_after']}")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
