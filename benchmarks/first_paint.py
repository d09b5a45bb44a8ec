"""First paint of the app: seconds from `streamlit run` to the home page drawn in headless Chromium.

Each run starts a fresh `streamlit run streamlit_app.py` on a free local port (environment
inherited: set MEDIMG_DATA_DIR / MEDIMG_MODELS_DIR as for the app), opens it in a new browser
session as soon as the server answers, and prints, counted from the moment the process started:

- title: the home page's title is visible;
- page: the whole home page is drawn (its last section, the datasets, is visible) and the browser
  has painted the frame after it.

A fresh process per run, because the first visitor of a server pays for the page's imports.
The browser starts before the timed runs (a visitor's browser is already open).
Usage: python -m benchmarks.first_paint [--runs 5]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

from benchmarks.explorer_page import CHROMIUM, CHROMIUM_ARGS, ROOT, free_port

TITLE = "medimg: medical image classification studio"
LAST_SECTION = "prediction works without them"  # the caption that ends the home page
NEXT_FRAME_JS = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"


def start_server(port: int, log) -> subprocess.Popen:
    """Start `streamlit run` on 127.0.0.1:port (not waiting for it)."""
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    return subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(port: int, server: subprocess.Popen, timeout: float = 90) -> None:
    """Poll /_stcore/health every 50 ms until it answers; fail if the server dies or never answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"streamlit did not answer within {timeout:.0f} s")


def time_first_paint(browser, log) -> dict[str, float]:
    """One fresh server and browser session; seconds from process start to the title and to the whole page."""
    port = free_port()
    start = time.perf_counter()
    server = start_server(port, log)
    try:
        wait_healthy(port, server)
        healthy = time.perf_counter() - start
        context = browser.new_context(viewport={"width": 1600, "height": 1000})
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_role("heading", name=TITLE).wait_for(state="visible", timeout=120_000)
        page.evaluate(NEXT_FRAME_JS)
        title = time.perf_counter() - start
        page.get_by_text(LAST_SECTION).wait_for(state="visible", timeout=120_000)
        page.evaluate(NEXT_FRAME_JS)
        whole = time.perf_counter() - start
        context.close()
    finally:
        server.terminate()
        server.wait(timeout=20)
    return {"server_up_s": round(healthy, 2), "title_s": round(title, 2), "page_s": round(whole, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh server processes to time")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results = []
    with tempfile.TemporaryFile() as log, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for run in range(args.runs):
                r = time_first_paint(browser, log)
                results.append(r)
                print(f"run {run + 1}: server up {r['server_up_s']:.2f} s, title painted {r['title_s']:.2f} s, "
                      f"home page painted {r['page_s']:.2f} s after `streamlit run` started", flush=True)
        finally:
            browser.close()
    load = os.getloadavg()[0]
    summary = {k.replace("_s", "_median_s"): round(statistics.median(r[k] for r in results), 2)
               for k in ("server_up_s", "title_s", "page_s")}
    print(f"median of {len(results)}: title {summary['title_median_s']:.2f} s, "
          f"page {summary['page_median_s']:.2f} s (cpu cores {os.cpu_count()}, 1-min load average {load:.1f})")
    print(json.dumps({"runs": results, **summary, "cpu_cores": os.cpu_count(), "load_average_1min": round(load, 2)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
