"""Several users at once: ``python -m bench.load '{"sessions": 5, "repeats": 3}'``.

Serves the app, opens ``sessions`` real Chromium contexts that each load the built-in PBMC
and press Start (DESC, automatic k) at the same moment, and, while they train or wait in the
queue, a further context keeps switching pages (Data, Learn, Explore, Train) and times how long
each page takes to draw: its heading (first paint) and the whole page (its script finished and the
browser painted), then looks at it for ``dwell_s`` seconds. Prints one JSON line: runs finished,
time to all finished, draw times (median, p95, max; overall and per page) and the number of samples.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


HEADING_SHOWN = "name => [...document.querySelectorAll('h1')].some(h => h.innerText.trim() === name)"
SCRIPT_DONE = "() => document.querySelector('[data-test-script-state=notRunning]') !== null"


def serve() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "app.py"),
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("streamlit did not start")


def chromium_pids() -> set[int]:
    # Every process of a Chromium (browser, zygotes, renderers, GPU) has "chromium" in its command line.
    out = subprocess.run(["pgrep", "-f", "chromium"], capture_output=True, text=True).stdout
    return {int(pid) for pid in out.split()}


def open_page(page, link: str, heading: str) -> tuple[float, float]:
    """Click a sidebar link; seconds until the page's heading shows (first paint) and until its
    script has finished and the browser painted what it sent (complete)."""
    start = time.perf_counter()
    page.get_by_role("link", name=link).click()
    # Checked on every animation frame: Playwright's own assertions poll at 100, 250, 500,
    # 1000 ms steps, which rounded a 0.6 s draw up to 0.85 s and a 0.9 s one to 1.85 s.
    page.wait_for_function(HEADING_SHOWN, arg=heading, polling="raf")
    first = time.perf_counter() - start
    page.wait_for_function(SCRIPT_DONE, polling="raf")
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    return first, time.perf_counter() - start


def one_round(
    sessions: int = 5,
    pretrain_epochs: int = 0,
    timeout_s: float = 900,
    min_s: float = 0.0,
    dwell_s: float = 1.0,
    warm: bool = True,
) -> dict:
    """One scenario on a fresh server: the raw draws (page, seconds since Start, first paint, complete)."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import expect, sync_playwright

    proc, url = serve()
    try:
        with sync_playwright() as p:
            before = chromium_pids()
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            # The users' browsers would run on their own machines: here they share the server's
            # 2 cores, so they run at the lowest priority (their renderers inherit it) and the
            # measuring browser, launched later, at normal priority like the server.
            for pid in chromium_pids() - before:
                os.setpriority(os.PRIO_PROCESS, pid, 19)
            expect.set_options(timeout=120_000)
            users = []
            for _ in range(sessions):
                page = browser.new_context(viewport={"width": 1400, "height": 1600}).new_page()
                page.set_default_timeout(120_000)
                page.goto(url)
                page.get_by_role("button", name="Load dataset").click()
                expect(page.get_by_text("700 cells").first).to_be_visible()
                page.get_by_role("link", name="Train").click()
                page.get_by_text("DESC", exact=True).click()
                page.get_by_text("Hyperparameters").click()
                box = page.get_by_role("spinbutton", name="pretrain epochs (0 = auto)")
                box.fill(str(pretrain_epochs))
                box.press("Enter")
                page.wait_for_timeout(300)
                users.append(page)
            # The measuring user has used the app before: each page visited once, so the browser has
            # its scripts and fonts (a first visit to Learn costs 1.5-3 s idle; reported by the idle rows).
            viewer = (
                p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                .new_context(viewport={"width": 1400, "height": 1600})
                .new_page()
            )
            viewer.set_default_timeout(60_000)
            viewer.goto(url)
            viewer.get_by_role("button", name="Load dataset").click()
            expect(viewer.get_by_text("700 cells").first).to_be_visible()
            names = [
                ("Learn", "Learn: how the clustering loss works"),
                ("Data", "Data"),
                ("Explore", "Explore"),
                ("Train", "Train"),
            ]
            if warm:
                for link, heading in names:
                    open_page(viewer, link, heading)
            t0 = time.perf_counter()
            for page in users:  # everyone presses Start within a second
                page.get_by_role("button", name="Start").click()
            failures: list[dict] = []
            samples: list[list] = []  # page, seconds since Start, first paint, complete
            done = [False] * sessions
            i = 0
            while (not all(done) or time.perf_counter() - t0 < min_s) and time.perf_counter() - t0 < timeout_s:
                link, heading = names[i % len(names)]
                i += 1
                start = time.perf_counter()
                try:
                    first, complete = open_page(viewer, link, heading)
                except (AssertionError, PlaywrightError) as exc:  # a page that never drew: count it, show it, go on
                    shot = Path(os.environ.get("SCDEEP_LOAD_SHOTS", "/tmp")) / f"load_timeout_{len(failures)}.png"
                    viewer.screenshot(path=str(shot), full_page=True)
                    failures.append(
                        {
                            "page": link,
                            "after_s": round(start - t0, 1),
                            "error": str(exc).splitlines()[0],
                            "screenshot": str(shot),
                        }
                    )
                    first = complete = time.perf_counter() - start
                samples.append([link, round(start - t0, 1), round(first, 3), round(complete, 3)])
                viewer.wait_for_timeout(dwell_s * 1000)  # a user looks at the page before the next click
                for k, page in enumerate(users):
                    if not done[k] and page.get_by_text("desc: k=").count() > 0:
                        done[k] = True
            all_done_s = time.perf_counter() - t0
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    return {
        "finished": int(sum(done)),
        "all_finished_s": round(all_done_s, 1),
        "samples": samples,
        "failed_draws": failures,
    }


def measure(sessions: int = 5, repeats: int = 3, **kwargs) -> dict:
    """``repeats`` rounds of :func:`one_round` (a fresh server each), draws pooled: one round
    gives ~25 draws, too few for a stable 95th percentile on a noisy 2-core machine."""
    rounds = [one_round(sessions, **kwargs) for _ in range(repeats)]
    samples = [row for r in rounds for row in r["samples"]]
    names = np.asarray([row[0] for row in samples])
    d, c = np.asarray([row[2] for row in samples]), np.asarray([row[3] for row in samples])

    def stats(x: np.ndarray) -> dict:
        return {
            "median_s": round(float(np.median(x)), 3),
            "p95_s": round(float(np.quantile(x, 0.95)), 3),
            "max_s": round(float(x.max()), 3),
        }

    return {
        "sessions": sessions,
        "repeats": repeats,
        "finished": sum(r["finished"] for r in rounds),
        "all_finished_s": max(r["all_finished_s"] for r in rounds),
        "page_draws": int(len(d)),
        "first_paint": stats(d),
        "complete": stats(c),
        "failed_draws": [f for r in rounds for f in r["failed_draws"]],
        "by_page": {
            name: {"first_paint": stats(d[names == name]), "complete": stats(c[names == name])}
            for name in sorted(set(names))
        },
        "samples": samples,
    }


def browser_main(measure_fn) -> None:
    """Run ``measure_fn(**payload)`` (payload: the JSON in argv[1]) and print its JSON, or say it
    was skipped where there is no Chromium."""
    payload = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    if not os.path.exists(CHROMIUM):
        print(json.dumps({"skipped": "no /usr/bin/chromium"}))
        return
    print(json.dumps(measure_fn(**payload)))


if __name__ == "__main__":
    browser_main(measure)
