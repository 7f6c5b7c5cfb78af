"""One accuracy measurement in a fresh process: ``python -m bench.run_one '<json>'``.

Payload: ``{"path", "label_key", "k", "variant", "seeds", "overrides"}``; prints one JSON
line with per-seed ARI/NMI/ACC, wall times and the peak RSS of the process.
"""
from __future__ import annotations

import json
import sys
import time

import numpy as np


def baseline(adata, label_key: str, k: int, variant: str, seed: int) -> dict:
    import scanpy as sc
    from sklearn.cluster import KMeans

    from scdeep_core import metrics
    from scdeep_core.graph import leiden_on_embedding

    a = adata.copy()
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, n_top_genes=min(2000, a.n_vars - 1), flavor="seurat")
    a = a[:, a.var["highly_variable"]].copy()
    sc.pp.scale(a, max_value=10)
    sc.tl.pca(a, n_comps=50, random_state=seed)
    if variant == "kmeans_pca":
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(a.obsm["X_pca"])
    else:  # scanpy's standard path: 15 neighbours, Leiden at resolution 1
        labels = leiden_on_embedding(a.obsm["X_pca"], resolution=1.0, n_neighbors=15, seed=seed)
    return metrics.scores(adata.obs[label_key], labels) | {"k_found": int(len(set(labels)))}


def main() -> None:
    p = json.loads(sys.argv[1])
    import anndata as ad

    import scdeep_core as sd

    from .common import peak_rss_mb

    adata0 = ad.read_h5ad(p["path"])
    rows = []
    for seed in p["seeds"]:
        t0 = time.perf_counter()
        variant = p["variant"]
        if variant in ("kmeans_pca", "leiden_scanpy"):
            row = baseline(adata0, p["label_key"], p["k"], variant, seed)
        else:
            method = "desc" if variant == "desc" else "scdcc"
            kw = dict(p.get("overrides", {}), seed=seed)
            if variant == "scdcc_k_estimated":
                kw["n_clusters"] = None
            else:
                kw["n_clusters"] = p["k"]
            if variant == "scdcc_constraints":
                kw["constraints"] = sd.ConstraintConfig(source="labels", label_key=p["label_key"], fraction=0.1, n_pairs=2000)
            res = sd.fit(adata0.copy(), method, sd.config_for(method, **kw), label_key=p["label_key"])
            row = dict(res.scores) | {"k_found": res.n_clusters, "pretrain_epochs": res.timings["pretrain_epochs"],
                                      "cluster_epochs": res.timings["cluster_epochs"]}
        row["seconds"] = time.perf_counter() - t0
        row["seed"] = seed
        rows.append(row)
    print(json.dumps({"rows": rows, "peak_rss_mb": peak_rss_mb()}))


if __name__ == "__main__":
    main()
