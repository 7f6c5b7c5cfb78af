"""How honest is the progress a user sees? Trace a dashboard run's bar and time left.

Runs one :class:`~scdeep_core.jobs.TrainingJob` (training process + UMAP, as the Train page
starts it) with the method's defaults and the true k, reads ``job.snapshot()`` every 0.5 s
(what the page draws) and reports, against the run's real end:

- the first estimate of the time left and the truth at that moment;
- the largest rise of the estimate between two readings (an honest estimate falls with time);
- the median relative error of the estimate;
- where the bar stood at 25 / 50 / 80 / 95 % of the run's time (a bar that follows time reads
  about the same numbers);
- the largest rise of the "at most" bound and how close it came to the truth (negative = it
  was not a bound).

Usage: ``python -m bench.progress_trace ../shared/data/pbmc_10x_4271.h5ad scdcc [out.json]``
"""

from __future__ import annotations

import json
import sys
import time
from itertools import pairwise


def trace(path: str, method: str) -> dict:
    import anndata as ad

    from scdeep_core import config_for
    from scdeep_core.jobs import JobRegistry, TrainingJob

    adata = ad.read_h5ad(path)
    cfg = config_for(method, n_clusters=int(adata.obs["label"].nunique()), seed=0)
    job = JobRegistry().submit(TrainingJob(adata, method, cfg, umap=True, label_key="label"))
    rows, t0 = [], time.perf_counter()
    while True:
        v = job.snapshot()
        rows.append(
            {
                "t": time.perf_counter() - t0,
                "phase": v.phase,
                "progress": v.progress,
                "eta": v.eta,
                "eta_max": v.eta_max,
            }
        )
        if v.status not in ("running", "queued", "created"):
            break
        time.sleep(0.5)
    return {"total": rows[-1]["t"], "rows": rows, "method": method, "data": path}


def summarise(run: dict) -> dict:
    total, rows = run["total"], run["rows"]
    timed = [r for r in rows if r["eta"] is not None and r["phase"] not in ("done", "stopped")]
    rises = [b["eta"] - a["eta"] for a, b in pairwise(timed)]
    bounds = [r for r in timed if r["eta_max"] is not None]
    bound_rises = [b["eta_max"] - a["eta_max"] for a, b in pairwise(bounds)]
    errors = sorted(abs(r["eta"] - (total - r["t"])) / max(total - r["t"], 1.0) for r in timed)
    at = {}
    for frac in (0.25, 0.5, 0.8, 0.95):
        r = min(rows, key=lambda r: abs(r["t"] - frac * total))
        at[f"bar_at_{int(frac * 100)}pct"] = round(r["progress"], 2)
    first = timed[0] if timed else None
    return {
        "total_s": round(total, 1),
        "first_estimate_s": round(first["eta"], 1) if first else None,
        "true_left_then_s": round(total - first["t"], 1) if first else None,
        "largest_rise_s": round(max(rises, default=0.0), 1),
        "median_relative_error": round(errors[len(errors) // 2], 2) if errors else None,
        **at,
        "largest_bound_rise_s": round(max(bound_rises, default=0.0), 1),
        "bound_minus_truth_min_s": round(min((r["eta_max"] - (total - r["t"]) for r in bounds), default=0.0), 1),
    }


def main(argv: list[str]) -> None:
    path, method = argv[0], argv[1]
    run = trace(path, method)
    if len(argv) > 2:
        with open(argv[2], "w") as fh:
            json.dump(run, fh)
    print(json.dumps(summarise(run), indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
