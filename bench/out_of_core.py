"""Out-of-core against in-memory training as the cells grow (issue 13 item 1).

``python -m bench.out_of_core 20000,100000 [--in-memory-up-to 100000]``: for each size, cells
resampled from ``cbmc_citeseq_8617`` with binomial thinning (:func:`bench.scaling.resample`) on
its 2,000 most variable genes are written to ``bench/scratch/ooc_<n>.h5ad`` (CSR); then, each in
a fresh process, a DESC and a scDCC run with a fixed schedule (2 pretraining epochs, 1 clustering
epoch, k = 15) reads the file with ``backed="r"`` (out of core) and, up to the given size, loads
it into memory. Prints one JSON row per run: wall, median pretraining and clustering epoch time,
peak RSS of the process, ARI. ``python -m bench.out_of_core 100000 --full desc``: default
pretraining (about 1,000 steps) and up to 10 clustering epochs, seeds 0-2, in memory, out of
core with the block shuffle and out of core in the in-memory cell order (``--seeds``, ``--modes``
choose; uncapped, the first fit had not ended after 6 min on 2 cores: the clustering stage's
tol was not reached in that time).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .common import ROOT, SHARED, run_isolated

SCRATCH = ROOT / "bench" / "scratch"


def write_file(n_cells: int) -> Path:
    """The resampled file of ``n_cells`` cells x 2,000 genes (made once)."""
    import anndata as ad

    from scdeep_core import pp

    from .scaling import resample

    path = SCRATCH / f"ooc_{n_cells}.h5ad"
    if not path.exists():
        source = ad.read_h5ad(SHARED / "cbmc_citeseq_8617.h5ad")
        genes = pp.prepare(source, method="desc", n_top_genes=2000).genes
        source = source[:, genes].copy()
        source.X = pp.counts_matrix(source)
        SCRATCH.mkdir(parents=True, exist_ok=True)
        resample(source, n_cells).write_h5ad(path)
    return path


def measure(path: str, method: str, backed: bool, full: bool = False, seed: int = 0, shuffle_block: int = 64) -> dict:
    import anndata as ad

    import scdeep_core as sd

    from .common import peak_rss_mb

    t = time.perf_counter()
    adata = ad.read_h5ad(path, backed="r") if backed else ad.read_h5ad(path)
    if full:  # the default pretraining (about 1,000 steps, early stopping); clustering capped at 10 epochs
        cfg = sd.config_for(method, n_clusters=15, seed=seed, max_cluster_epochs=10, shuffle_block=shuffle_block)
    else:
        cfg = sd.config_for(
            method,
            n_clusters=15,
            pretrain_epochs=2,
            pretrain_patience=0,
            max_cluster_epochs=1,
            tol=0.0,
            seed=seed,
            shuffle_block=shuffle_block,
        )
    res = sd.fit(adata, cfg, label_key="label")
    hist = res.history
    pre = np.diff(hist[hist["phase"] == "pretrain"]["elapsed"].to_numpy())
    return {
        "n_cells": int(adata.n_obs),
        "method": method,
        "seed": seed,
        "schedule": "default pretraining, <= 10 clustering epochs" if full else "2 + 1 epochs",
        "mode": (f"out of core, blocks of {shuffle_block}" if shuffle_block > 1 else "out of core, cell order")
        if backed
        else "in memory",
        "wall_s": round(time.perf_counter() - t, 1),
        "pretrain_epoch_s": round(float(np.median(pre)) if len(pre) else float("nan"), 2),
        "cluster_epoch_s": round(res.timings["cluster_s"] / max(res.timings.get("cluster_epochs", 1), 1), 2),
        "peak_rss_mb": round(peak_rss_mb()),
        "ari": round(res.scores["ari"], 3),
        "file_mb": round(Path(path).stat().st_size / 2**20),
    }


def main(sizes: list[int], in_memory_up_to: int) -> None:
    for n in sizes:
        path = write_file(n)
        for method in ("desc", "scdcc"):
            modes = (True, False) if n <= in_memory_up_to else (True,)
            for backed in modes:
                row = run_isolated("bench.out_of_core", {"path": str(path), "method": method, "backed": backed})
                print(json.dumps(row), flush=True)


FULL_MODES = {"memory": (False, 64), "blocks": (True, 64), "cells": (True, 1)}


def full_fits(n: int, method: str, seeds: list[int], modes: list[str]) -> None:
    """Default fits on the same file, each seed and mode in a fresh process.

    Modes: ``memory`` (loaded), ``blocks`` (out of core, the default block shuffle) and ``cells``
    (out of core with ``shuffle_block=1``: the in-memory minibatch order, so it differs from
    ``memory`` only by the float rounding of the streamed preprocessing).
    """
    path = write_file(n)
    for seed in seeds:
        for mode in modes:
            backed, block = FULL_MODES[mode]
            payload = {"path": str(path), "method": method, "backed": backed, "full": True, "seed": seed}
            print(json.dumps(run_isolated("bench.out_of_core", payload | {"shuffle_block": block})), flush=True)


if __name__ == "__main__":
    if sys.argv[1].startswith("{"):
        p = json.loads(sys.argv[1])
        args = (p["path"], p["method"], p["backed"], p.get("full", False), p.get("seed", 0), p.get("shuffle_block", 64))
        print(json.dumps(measure(*args)))
    elif "--full" in sys.argv:  # python -m bench.out_of_core 100000 --full desc [--seeds 0,1,2] [--modes memory,cells]

        def option(name: str, default: str) -> list[str]:
            return sys.argv[sys.argv.index(name) + 1].split(",") if name in sys.argv else default.split(",")

        seeds = [int(v) for v in option("--seeds", "0,1,2")]
        modes = option("--modes", "memory,blocks,cells")
        full_fits(int(sys.argv[1]), sys.argv[sys.argv.index("--full") + 1], seeds, modes)
    else:
        limit = int(sys.argv[sys.argv.index("--in-memory-up-to") + 1]) if "--in-memory-up-to" in sys.argv else 100_000
        main([int(v) for v in sys.argv[1].split(",")], limit)
