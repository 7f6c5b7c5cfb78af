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
    from sklearn.cluster import KMeans

    from scdeep_core import metrics
    from scdeep_core.graph import leiden_on_embedding, leiden_with_k
    from scdeep_core.standard import standard_pca

    pcs = standard_pca(adata, seed=seed)  # the app's "standard pipeline" comparison uses the same path
    if variant == "kmeans_pca":
        labels = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(pcs)
    elif variant == "leiden_k":
        labels = leiden_with_k(pcs, k, seed)
    else:  # scanpy's standard path: 15 neighbours, Leiden at resolution 1
        labels = leiden_on_embedding(pcs, resolution=1.0, n_neighbors=15, seed=seed)
    return metrics.scores(adata.obs[label_key], labels) | {"k_found": int(len(set(labels)))}, labels


def main() -> None:
    p = json.loads(sys.argv[1])
    import anndata as ad
    from sklearn.cluster import KMeans

    import scdeep_core as sd
    from scdeep_core import metrics

    from .common import peak_rss_mb

    adata0 = ad.read_h5ad(p["path"])
    rows, all_labels = [], []
    for seed in p["seeds"]:
        t0 = time.perf_counter()
        variant = p["variant"]
        if variant in BASELINES:
            row, labels = baseline(adata0, p["label_key"], p["k"], variant, seed)
        else:
            method = variant.split("_")[0]
            kw = dict(p.get("overrides", {}), seed=seed)
            kw["n_clusters"] = "auto" if variant.endswith("_auto") else p["k"]
            if variant == "scdcc_constraints":
                kw["constraints"] = sd.ConstraintConfig(
                    source="labels", label_key=p["label_key"], fraction=0.1, n_pairs=2000
                )
            preset = "thorough" if "_thorough" in variant else "fast"
            res = sd.fit(adata0.copy(), sd.config_for(method, preset=preset, **kw), label_key=p["label_key"])
            seconds = time.perf_counter() - t0
            pre = res.pretrained
            # Where accuracy is made or lost: KMeans (true k) on the pretrained embedding, the initial
            # clusters, the end.
            km = KMeans(n_clusters=p["k"], n_init=20, random_state=seed).fit_predict(pre.z)
            mask = pre.eval_mask if pre.eval_mask is not None else slice(None)
            row = dict(res.scores) | {
                "k_found": res.n_clusters,
                "pretrain_epochs": res.timings["pretrain_epochs"],
                "cluster_epochs": res.timings["cluster_epochs"],
                "converged": bool(res.converged),
                "ari_pretrain_kmeans": metrics.ari(pre.truth[mask], km[mask]),
                "ari_init": res.init_scores.get("ari"),
                "seconds": seconds,
            }
            labels = np.full(adata0.n_obs, -1)
            labels[res.cell_mask] = res.labels
        row.setdefault("seconds", time.perf_counter() - t0)
        row["seed"] = seed
        rows.append(row)
        all_labels.append(np.asarray(labels))
    # Seed-to-seed agreement: mean ARI over pairs of seeds (all cells).
    pairs = [metrics.ari(a, b) for i, a in enumerate(all_labels) for b in all_labels[i + 1 :]]
    agreement = float(np.mean(pairs)) if pairs else float("nan")
    for row in rows:
        row["seed_agreement"] = agreement
    print(json.dumps({"rows": rows, "peak_rss_mb": peak_rss_mb()}))


BASELINES = ("kmeans_pca", "leiden_scanpy", "leiden_k")


if __name__ == "__main__":
    main()
