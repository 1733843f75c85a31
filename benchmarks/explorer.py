"""The explorer, measured in a real browser (Debian's chromium through Playwright) against its goals.

Goals (issue 10): a parameter change at 32×32 repaints in ≤ 100 ms end to end, the server's part
≤ 30 ms; a 64×64 numeric animation plays smoothly; the page loads in ≤ 1 s.

- **load**: a fresh tab, from navigation to the first drawing (``data-ready``) — cold JS, first
  request, first layout.
- **change**: typing a kernel size at 32×32 (numeric mode on and off): from the change to the browser's
  next painted frame after the drawing (``data-painted-ms``, measured by the page), and the server's
  own time for the request (``data-server-ms``).
- **animation**: a 64×64 numeric animation played at 60 frames a second for 3 s; the page's cost of
  one frame (``show``) and the share of display frames that took longer than 1.5 vsyncs (jank).

Medians over ``--repeats``. The server is ``convarith serve`` in its own process, as a user runs
it (in this process, Playwright's polling would hold the interpreter lock the server needs).

    python benchmarks/explorer.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"
BASE = "op=conv2d&kernel_size=3,3&stride=1,1&padding=1:1,1:1"


def wait_ready(page, before: str | None) -> None:
    """Wait, in the page (no polling from here: polling would take the cores the page needs), for a new drawing."""
    page.evaluate(
        """(before) => new Promise((done) => {
             const root = document.getElementById("explorer");
             const ready = () => root.dataset.ready !== undefined && root.dataset.ready !== before;
             if (ready()) { done(); return; }
             new MutationObserver((_, observer) => { if (ready()) { observer.disconnect(); done(); } })
               .observe(root, { attributes: true });
           })""",
        before,
    )


def painted(page) -> float:
    """The page's own end-to-end time of the last change, once the browser has painted it."""
    return float(
        page.evaluate(
            """() => new Promise((done) => {
                 const root = document.getElementById("explorer");
                 if (root.dataset.paintedMs) { done(root.dataset.paintedMs); return; }
                 new MutationObserver((_, observer) => {
                   if (root.dataset.paintedMs) { observer.disconnect(); done(root.dataset.paintedMs); }
                 }).observe(root, { attributes: true });
               })"""
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "convarith"), "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    assert server.stdout is not None
    url = server.stdout.readline().split()[2]  # "convarith explorer: URL  (Ctrl+C to stop)"
    results: dict[str, float] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        loads = []
        for _ in range(args.repeats):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            start = time.perf_counter()
            page.goto(f"{url}#{BASE}&input_shape=32,32")
            wait_ready(page, None)
            loads.append((time.perf_counter() - start) * 1000)
            page.close()
        results["load, 32×32 (ms)"] = statistics.median(loads)
        for numeric in (0, 1):
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}#{BASE}&input_shape=32,32&numeric={numeric}")
            wait_ready(page, None)
            ends, servers = [], []
            field = page.locator(".cx-form [data-param='kernel_size'][data-axis='1']")
            for n in range(args.repeats):
                before = page.get_attribute("#explorer", "data-ready")
                field.fill(str(5 - n % 2 * 2))  # 5, 3, 5, 3, …: every change a new layer
                field.press("Tab")
                wait_ready(page, before)
                ends.append(painted(page))
                servers.append(float(page.get_attribute("#explorer", "data-server-ms")))
            mode = "numeric" if numeric else "plain"
            results[f"change at 32×32, {mode}: end to end (ms)"] = statistics.median(ends)
            results[f"change at 32×32, {mode}: server (ms)"] = statistics.median(servers)
            page.close()
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        start = time.perf_counter()
        page.goto(f"{url}#{BASE}&input_shape=64,64&numeric=1")
        wait_ready(page, None)
        results["load, 64×64 numeric (ms)"] = (time.perf_counter() - start) * 1000
        per_frame = page.evaluate(
            """() => { const e = window.convarithExplorer, n = 400, t = performance.now();
                       for (let f = 0; f < n; f++) e.show(f); return (performance.now() - t) / n; }"""
        )
        results["64×64 numeric: one frame's update (ms)"] = per_frame
        jank = page.evaluate(
            """() => new Promise((done) => {
                 const e = window.convarithExplorer; e.show(0); e.fps = 60; e.play();
                 const stamps = []; const t0 = performance.now();
                 const tick = (t) => { stamps.push(t); if (t - t0 < 3000) requestAnimationFrame(tick);
                   else { e.stop(); const gaps = stamps.slice(1).map((s, i) => s - stamps[i]);
                          const vsync = gaps.slice().sort((a, b) => a - b)[Math.floor(gaps.length / 2)];
                          done({ frames: e.frame, long: gaps.filter((g) => g > 1.5 * vsync).length / gaps.length,
                                 vsync }); } };
                 requestAnimationFrame(tick); })"""
        )
        results["64×64 numeric at 60 frames/s: frames shown in 3 s"] = jank["frames"]
        results["64×64 numeric at 60 frames/s: display frames late (%)"] = 100 * jank["long"]
        browser.close()
    server.terminate()
    server.wait()
    width = max(map(len, results))
    for name, value in results.items():
        print(f"{name:<{width}}  {value:8.1f}")


if __name__ == "__main__":
    main()
