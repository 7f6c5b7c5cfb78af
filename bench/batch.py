"""Batch correction on the simulator, one fit per fresh process: ``python -m bench.batch '<json>'``.

Payload: ``{"variant", "seed", "sim"}`` where ``sim`` are :func:`scdeep_core.datasets.simulate_counts`
arguments (with ``n_batches``). Variants: ``<method>_free`` (the same simulation without batches),
``<method>_without`` (batches, no ``batch_key``), ``<method>_with`` (``batch_key="batch"``), and
the scanpy baselines ``kmeans_pca`` (uncorrected) and ``combat_kmeans_pca`` (``sc.pp.combat`` on the
log-normalised data first). Prints ARI against the groups and batch mixing (iLISI, batch ASW
within the true groups) of the embedding the clusters come from.
"""

from __future__ import annotations

import json
import sys
import time


def measure(variant: str, seed: int, sim: dict) -> dict:
    import numpy as np

    import scdeep_core as sd
    from scdeep_core import metrics

    from .common import peak_rss_mb

    method, _, mode = variant.partition("_")
    batches = sim if mode != "free" else {**sim, "n_batches": 1}
    adata = sd.datasets.simulate_counts(**batches, seed=seed)
    k = int(adata.obs["group"].nunique())
    t0 = time.perf_counter()
    if method in ("desc", "scdcc"):
        cfg = sd.config_for(method, n_clusters=k, seed=seed, batch_key="batch" if mode == "with" else None)
        result = sd.fit(adata, cfg, label_key="group", copy=True)
        mask, embedding, labels = result.cell_mask, result.embedding, result.labels
    else:  # scanpy's path, with ComBat first for the corrected baseline
        import scanpy as sc
        from sklearn.cluster import KMeans

        work = adata.copy()
        sc.pp.normalize_total(work, target_sum=1e4)
        sc.pp.log1p(work)
        sc.pp.highly_variable_genes(work, n_top_genes=min(2000, work.n_vars - 1))
        work = work[:, work.var["highly_variable"]].copy()
        if variant.startswith("combat"):
            sc.pp.combat(work, key="batch")
        sc.pp.scale(work, max_value=10)
        sc.pp.pca(work, n_comps=50, random_state=seed)
        embedding = work.obsm["X_pca"]
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(embedding)
        mask = np.ones(adata.n_obs, bool)
    wall = time.perf_counter() - t0
    groups = adata.obs["group"].to_numpy()[mask]
    out = {"ari": metrics.ari(groups, labels), "wall_s": wall, "peak_rss_mb": peak_rss_mb()}
    if "batch" in adata.obs:
        batch = adata.obs["batch"].to_numpy()[mask]
        out |= {"ilisi": metrics.ilisi(embedding, batch), "batch_asw": metrics.batch_asw(embedding, batch, groups)}
    return out


if __name__ == "__main__":
    p = json.loads(sys.argv[1])
    print(json.dumps(measure(p["variant"], p["seed"], p["sim"])))
