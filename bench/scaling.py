"""Scaling with the number of cells: resampled cells of a real dataset with binomial thinning."""

from __future__ import annotations

import json
import sys
import time

import anndata as ad
import numpy as np
import scipy.sparse as sp


def resample(adata: ad.AnnData, n_cells: int, seed: int = 0, label_key: str = "label") -> ad.AnnData:
    """``n_cells`` cells drawn with replacement, each cell's counts thinned binomially
    with its own keep-probability in [0.5, 1] (so duplicates are not identical)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, adata.n_obs, n_cells)
    x = sp.csr_matrix(adata.X)[rows].tocsr().astype(np.float32)
    keep = rng.uniform(0.5, 1.0, n_cells)
    per_entry = np.repeat(keep, np.diff(x.indptr))
    x.data = rng.binomial(x.data.astype(np.int64), per_entry).astype(np.float32)
    x.eliminate_zeros()
    obs = adata.obs.iloc[rows][[label_key]].reset_index(drop=True)
    obs.index = [f"cell{i}" for i in range(n_cells)]
    return ad.AnnData(X=x, obs=obs, var=adata.var[[]].copy())


def measure(path: str, n_cells: int, epochs: int) -> dict:
    import scdeep_core as sd

    from .common import peak_rss_mb

    adata = resample(ad.read_h5ad(path), n_cells)
    out = {"n_cells": n_cells}
    for method in ("desc", "scdcc"):
        cfg = sd.config_for(
            method, n_clusters=15, pretrain_epochs=epochs, pretrain_patience=0, max_cluster_epochs=epochs, tol=0.0
        )
        t = time.perf_counter()
        res = sd.fit(adata, cfg, label_key="label")
        hist = res.history
        out[method] = {
            "fit_s": time.perf_counter() - t,
            "pretrain_epoch_s": float(
                np.median(np.diff(np.r_[0.0, hist[hist["phase"] == "pretrain"]["elapsed"].to_numpy()])[1:])
            ),
            "cluster_epoch_s": res.timings["cluster_s"] / max(res.timings["cluster_epochs"], 1),
            "ari": res.scores["ari"],
        }
    out["peak_rss_mb"] = peak_rss_mb()
    return out


if __name__ == "__main__":
    p = json.loads(sys.argv[1])
    print(json.dumps(measure(p["path"], p["n_cells"], p.get("epochs", 3))))
