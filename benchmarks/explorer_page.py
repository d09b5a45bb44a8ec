"""Time-to-interactive of the dataset explorer's embedding map in headless Chromium.

Starts `streamlit run streamlit_app.py` on a free local port (environment inherited: set
MEDIMG_MODELS_DIR / MEDIMG_DATA_DIR as for the app), opens the explorer page in fresh browser
sessions and prints, per visit:

- drawn: seconds from navigation until the WebGL map is drawn with every point of the embedding
  (Plotly has finished plotting onto its canvas);
- interactive: seconds from navigation until the browser's main thread is quiet after that (the
  end of the last "long task" (>50 ms) before a 1 s window without any): from then on hover,
  zoom and selection respond at once;
- drag: seconds a box-selection drag takes (Plotly re-styles every point on each mouse move;
  headless Chromium draws WebGL in software, so this is slower than in a desktop browser);
- select: seconds from releasing the mouse until the selected images (or, without the dataset,
  their file list) show beside the map: one rerun of the page on the server and the images.

The first visit also pays for reading the dataset and the embedding into the server's caches.
Usage: python -m benchmarks.explorer_page [--runs 3] [--screenshot out.png]
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
MAP = ".st-key-explorer_map .js-plotly-plot"
SELECTION = ".st-key-explorer_selection"

# Points drawn in the map (traces with meta "points"), once Plotly has plotted it onto a WebGL canvas.
MAP_POINTS_JS = """(sel) => {
  const gd = document.querySelector(sel);
  if (!gd || !gd._fullData || !gd.querySelector('canvas')) return -1;
  return gd._fullData.filter(t => t.meta === 'points').reduce((n, t) => n + (t.x ? t.x.length : 0), 0);
}"""
# Page coordinates of a data point (x, y) of the map.
POINT_PIXEL_JS = """([sel, x, y]) => {
  const gd = document.querySelector(sel), xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const r = gd.getBoundingClientRect();
  return [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(y)];
}"""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, log) -> subprocess.Popen:
    """`streamlit run` on 127.0.0.1:port; returns once /_stcore/health answers."""
    cmd = [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=os.environ.copy(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"streamlit exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise TimeoutError("streamlit did not start within 90 s")


# Records the main thread's long tasks (> 50 ms) from the start of every page.
LONG_TASKS_JS = """window.__longTasks = [];
new PerformanceObserver(list => list.getEntries().forEach(e => window.__longTasks.push(e.startTime + e.duration)))
  .observe({type: 'longtask', buffered: true});"""


def wait_until_quiet(page, quiet_ms: int = 1000, timeout_s: float = 120) -> float:
    """Wait for a quiet_ms window without long tasks; returns the end of the last one (s since navigation)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now, last = page.evaluate("() => [performance.now(), Math.max(0, ...window.__longTasks)]")
        if now - last >= quiet_ms:
            return last / 1000
        page.wait_for_timeout(100)
    raise TimeoutError(f"the page did not become quiet within {timeout_s:.0f} s")


def wait_for_map(page, n: int, timeout_ms: int = 120_000) -> float:
    """Wait until the map shows n points; returns the seconds waited."""
    t0 = time.perf_counter()
    page.wait_for_function(f"() => ({MAP_POINTS_JS})({json.dumps(MAP)}) === {n}", timeout=timeout_ms, polling=50)
    return time.perf_counter() - t0


def drag_select(page, x: float, y: float, radius: float = 25) -> float:
    """Box-select around page pixel (x, y) (the map's default drag mode is box select).

    Returns the seconds the drag itself took: Plotly re-styles the 53k points on every mouse move,
    which software WebGL (SwiftShader, headless) does far slower than a GPU would.
    """
    t0 = time.perf_counter()
    page.mouse.move(x - radius, y - radius)
    page.mouse.down()
    page.mouse.move(x + radius, y + radius, steps=2)
    page.mouse.up()
    return time.perf_counter() - t0


def select_around(page, x: float, y: float, timeout_ms: int = 60_000) -> tuple[float, float]:
    """Box-select around the data point (x, y).

    Returns:
        (seconds the drag took, seconds from releasing the mouse until the selection panel shows
        the selected images, or their file list when the dataset is absent)
    """
    px, py = page.evaluate(POINT_PIXEL_JS, [MAP, x, y])
    drag_s = drag_select(page, px, py)
    t0 = time.perf_counter()
    page.locator(SELECTION).get_by_text("selected").first.wait_for(timeout=timeout_ms)
    page.wait_for_function(f"""() => {{
        const s = document.querySelector({json.dumps(SELECTION)});
        const imgs = s ? [...s.querySelectorAll('img')] : [];
        return (imgs.length > 0 && imgs.every(i => i.complete)) || (s && s.querySelector('[data-testid=stDataFrame]'));
    }}""", timeout=timeout_ms, polling=50)
    return drag_s, time.perf_counter() - t0


def warm_up(browser, port: int) -> None:
    """Open the home page once, as a visitor would first (the timed runs then measure a warm server)."""
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"http://127.0.0.1:{port}/")
    page.get_by_text("Dataset explorer").first.wait_for(timeout=60_000)
    context.close()


def expected_embedding():
    """The embedding the page shows for the installed modality model (and dataset, when downloaded)."""
    from medimg_core import get_task
    from medimg_core.models.checkpoint import default_model_path
    from medimg_core.data.datasets import dataset_path, load_dataset
    from medimg_core.reports.embed import file_fingerprint, find_embedding

    spec = get_task("modality")
    data_fp = load_dataset(spec).fingerprint if dataset_path(spec) else None
    return find_embedding("modality", file_fingerprint(default_model_path("modality")), data_fp)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="fresh browser sessions to time")
    parser.add_argument("--screenshot", type=Path, help="save a full-page screenshot after the last selection")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from playwright.sync_api import sync_playwright

    emb = expected_embedding()
    if emb is None:
        print("no stored embedding for the installed model: run medimg embed --task modality")
        return 1
    method = "tsne" if "tsne" in emb.coords else "pca"
    target = emb.coords[method][int(emb.labels.argmax())]  # a point of the last class
    results = []
    with tempfile.TemporaryFile() as log, sync_playwright() as p:
        server = start_server(port := free_port(), log)
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            warm_up(browser, port)
            for run in range(args.runs):
                context = browser.new_context(viewport={"width": 1600, "height": 1000})
                context.add_init_script(LONG_TASKS_JS)
                page = context.new_page()
                page.goto(f"http://127.0.0.1:{port}/explorer")
                wait_for_map(page, len(emb))
                drawn_s = page.evaluate("() => performance.now()") / 1000
                interactive_s = max(drawn_s, wait_until_quiet(page))
                drag_s, select_s = select_around(page, float(target[0]), float(target[1]))
                results.append({"run": run + 1, "drawn_s": round(drawn_s, 2), "interactive_s": round(interactive_s, 2),
                                "drag_s": round(drag_s, 2), "select_s": round(select_s, 2)})
                print(f"run {run + 1}: map drawn after {drawn_s:.2f} s, interactive after {interactive_s:.2f} s; "
                      f"box drag {drag_s:.2f} s, selected images shown {select_s:.2f} s after releasing the mouse", flush=True)
                if args.screenshot and run == args.runs - 1:
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(args.screenshot), full_page=True)
                context.close()
        finally:
            browser.close()
            server.terminate()
            server.wait(timeout=20)
    warm = results[1:] or results
    print(json.dumps({"points": len(emb), "projection": method, "origin": emb.loaded_from, "chromium": CHROMIUM,
                      "cpu_cores": os.cpu_count(), "runs": results,
                      "interactive_s_warm_median": sorted(r["interactive_s"] for r in warm)[len(warm) // 2]}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
