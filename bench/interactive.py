"""A simulated user teaching scDCC with selections: ``python -m bench.interactive '<json>'``.

Payload: ``{"path", "label_key", "k", "seed", "sizes"}``. One unconstrained scDCC fit (true k), then,
for each size n, the user "lassos" n labelled cells of every type (a "same type" selection each)
and marks the two types the unconstrained run mixes most as "different types"; the clustering
stage re-runs from the same pretrained autoencoder with those constraints. Prints, per size, the
ARI of both runs on the cells no selection touched, and the time to re-cluster.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np


def most_mixed_pair(truth: np.ndarray, labels: np.ndarray) -> tuple[str, str]:
    """The two labelled types whose cells the clustering spreads over the same clusters most
    (overlap of their distributions over clusters)."""
    from scdeep_core import metrics

    table = metrics.confusion(truth, labels)
    share = table.div(table.sum(axis=1), axis=0).to_numpy()
    overlap = np.minimum(share[:, None, :], share[None, :, :]).sum(axis=2)
    np.fill_diagonal(overlap, -1)
    i, j = np.unravel_index(np.argmax(overlap), overlap.shape)
    return str(table.index[i]), str(table.index[j])


def measure(path: str, label_key: str, k: int, seed: int, sizes: list[int]) -> dict:
    import anndata as ad

    import scdeep_core as sd
    from scdeep_core import metrics
    from scdeep_core.constraints import Selection

    adata = ad.read_h5ad(path)
    cfg = sd.config_for("scdcc", n_clusters=k, seed=seed)
    t0 = time.perf_counter()
    base = sd.fit(adata, cfg, label_key=label_key, copy=True)
    fit_s = time.perf_counter() - t0
    truth = adata.obs[label_key].astype(str).to_numpy()
    base_labels = np.full(adata.n_obs, -1)
    base_labels[base.cell_mask] = base.labels
    merged = most_mixed_pair(truth[base.cell_mask], base.labels)
    rng = np.random.default_rng([seed, 7])
    out = {"fit_s": fit_s, "base_ari": base.scores.get("ari"), "mixed_pair": list(merged), "sizes": {}}
    for n in sizes:
        selections, first_of = [], {}
        for label in sorted(set(truth)):
            names = adata.obs_names[truth == label]
            first_of[label] = len(selections)
            selections.append(Selection(list(rng.choice(names, min(n, len(names)), replace=False))))
        a, b = merged
        selections.append(Selection(selections[first_of[a]].cells, "different", versus=first_of[b]))
        t = time.perf_counter()
        taught = sd.recluster(adata, base.pretrained, cfg, constraints=selections, key_added=f"scdcc_n{n}", copy=True)
        recluster_s = time.perf_counter() - t
        mask = np.zeros(adata.n_obs, bool)
        mask[np.flatnonzero(base.cell_mask)[taught.eval_mask]] = True  # cells no selection touched
        labels = np.full(adata.n_obs, -1)
        labels[taught.cell_mask] = taught.labels
        pairs = taught.constraints["pairs"]
        out["sizes"][str(n)] = {
            "ari_taught": metrics.ari(truth[mask], labels[mask]),
            "ari_taught_init": taught.init_scores.get("ari"),  # its initial clustering, same cells
            "ari_unconstrained": metrics.ari(truth[mask], base_labels[mask]),
            "recluster_s": recluster_s,
            "n_must_link": int((pairs["type"] == "ml").sum()),
            "n_cannot_link": int((pairs["type"] == "cl").sum()),
            "n_scored": int(mask.sum()),
        }
    return out


if __name__ == "__main__":
    p = json.loads(sys.argv[1])
    print(json.dumps(measure(p["path"], p["label_key"], p["k"], p["seed"], p["sizes"])))
