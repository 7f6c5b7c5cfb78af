"""How fast the Learn page answers: ``python -m bench.learn_step '{"steps": 15}'``.

Serves the app, opens Learn in real Chromium on an idle machine and presses Step ``steps``
times. Each press is timed inside the page (no automation round trips): from the click to the
moment the three toy panels show their new images, loaded and painted. Also times moving the
alpha slider with the keyboard (the panels redraw for the new alpha). Prints one JSON line.
"""

from __future__ import annotations

import numpy as np

from bench.load import ARGS, CHROMIUM, SCRIPT_DONE, browser_main, open_page, serve

# The src of the three toy panels (alt texts start "q:", "p:" and "pull"); "?loading" until decoded.
PANELS = (
    "() => [...document.querySelectorAll('img')].filter(i => /^(q:|p:|pull)/.test(i.alt))"
    ".map(i => i.src + (i.complete ? '' : '?loading'))"
)
TIMED = (
    """action => new Promise(resolve => {
    const panels = PANELS;
    const before = panels();
    const t0 = performance.now();
    if (action === 'step') [...document.querySelectorAll('button')].find(b => b.innerText.trim() === 'Step').click();
    const poll = () => {
        const now = panels();
        if (now.length === 3 && now.every((s, i) => s !== before[i] && !s.endsWith('?loading')))
            requestAnimationFrame(() => resolve(performance.now() - t0));  // the frame that shows them
        else requestAnimationFrame(poll);
    };
    requestAnimationFrame(poll);
})"""
).replace("PANELS", PANELS, 1)


def measure(steps: int = 15, slider_moves: int = 8) -> dict:
    from playwright.sync_api import sync_playwright

    proc, url = serve()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
            page.goto(url, timeout=120_000)
            page.wait_for_function(SCRIPT_DONE)
            open_page(page, "Learn", "Learn: how the clustering loss works")
            page.wait_for_timeout(2000)
            step_s = []
            for _ in range(steps + 1):
                step_s.append(page.evaluate(TIMED, "step") / 1000)
                page.wait_for_timeout(700)
            slider_s = []
            thumb = page.get_by_role("slider", name="alpha (Student's t degrees of freedom)")
            for i in range(slider_moves + 1):
                # Start watching (the clock starts here, a little before the key press lands), press, wait.
                page.evaluate(
                    "() => "
                    f"{{ window.__answered = undefined; ({TIMED})('wait').then(s => {{ window.__answered = s; }}); }}"
                )
                thumb.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
                page.wait_for_function("() => window.__answered !== undefined", polling="raf", timeout=30_000)
                slider_s.append(page.evaluate("() => window.__answered") / 1000)
                page.wait_for_timeout(700)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(10)
    step_s, slider_s = np.array(step_s[1:]), np.array(slider_s[1:])  # the first of each warms caches

    def stats(x: np.ndarray) -> dict:
        return {
            "median_s": round(float(np.median(x)), 3),
            "p90_s": round(float(np.quantile(x, 0.9)), 3),
            "n": int(len(x)),
        }

    return {"step": stats(step_s), "slider": stats(slider_s)}


if __name__ == "__main__":
    browser_main(measure)
