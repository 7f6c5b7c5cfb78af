"""Issue 8 lever: what the clustering is run on, judged from the same DESC pretrainings.

``python -m bench.embedding_lever [desc|scdcc]``: every dev set, true k, KMeans (20 starts) on

- ``z``: one pretrained embedding (what the default initialises from), seeds 0, 1, 2;
- ``bag of 3``: three pretrainings (seeds s, s + 3, s + 6) side by side, each scaled to unit
  total variance, so seed-to-seed noise in the embedding averages out;
- ``z + PCA``: the embedding beside scanpy's 50 PCs (the baselines' space), each scaled to unit
  total variance;
- ``z smoothed``: each cell's embedding averaged with its 15 nearest neighbours' (in z);
- ``PCA``: scanpy's 50 PCs alone (the KMeans-on-PCA baseline).

Prints per-seed rows, the mean ARI per variant and dataset, and the seed-to-seed agreement (mean
pairwise ARI between the three seeds' labels) of each variant.

``python -m bench.embedding_lever desc --stage``: does the clustering stage keep what the start
gains? Each seed pretrains once; the stage then runs from the same weights twice, initialised by
KMeans on ``z`` (the default) and on ``z + PCA`` (the centroids are still the clusters' means in
``z``). Prints the ARI of each start and at the end of each stage. ``--with-target`` adds both
starts with section 13's square-root target (``p ∝ q² / f^0.5``): the two levers alone and together.
"""

from __future__ import annotations

import sys
import warnings

import anndata as ad
import numpy as np
import pandas as pd

from scdeep_core.recipe import unit_variance  # the thorough preset's own scaling: the lever measures what ships


def smoothed(z: np.ndarray, n_neighbors: int = 15) -> np.ndarray:
    """Each row averaged with its ``n_neighbors`` nearest rows (itself included)."""
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=n_neighbors).fit(z).kneighbors(z, return_distance=False)
    return z[idx].mean(axis=1)


def main(method: str = "desc") -> None:
    from sklearn.cluster import KMeans

    from scdeep_core import api, metrics
    from scdeep_core.config import config_for
    from scdeep_core.standard import standard_pca

    from .common import DATASETS, SHARED
    from .levers import seed_agreement

    warnings.filterwarnings("ignore")
    rows, labels = [], {}
    for name, (file, key, k) in DATASETS.items():
        adata = ad.read_h5ad(SHARED / file)
        z = {}
        for seed in range(9):
            pre = api.pretrain(adata, config_for(method, n_clusters=k, seed=seed), label_key=key)
            z[seed] = pre.z
            mask = pre.data.cell_mask
        truth = adata.obs[key].astype(str).to_numpy()[mask]
        for seed in range(3):
            pca = standard_pca(adata[mask], seed=seed)
            variants = {
                "z": z[seed],
                "bag of 3": np.hstack([unit_variance(z[s]) for s in (seed, seed + 3, seed + 6)]),
                "z + PCA": np.hstack([unit_variance(z[seed]), unit_variance(pca)]),
                "z smoothed": smoothed(z[seed]),
                "PCA": pca,
            }
            for variant, x in variants.items():
                lab = KMeans(n_clusters=k, n_init=20, random_state=seed).fit_predict(x)
                labels[name, variant, seed] = lab
                rows.append({"dataset": name, "seed": seed, "variant": variant, "ari": metrics.ari(truth, lab)})
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    table = df.groupby(["variant", "dataset"])["ari"].mean().unstack(1)
    table["mean"] = table.mean(axis=1)
    print(table.round(3).to_string())
    print(seed_agreement(labels).round(3).to_string())


def stage(method: str = "desc", with_target: bool = False) -> None:
    from sklearn.cluster import KMeans

    from scdeep_core import recipe, train
    from scdeep_core.standard import standard_pca

    from .levers import print_summary, save_rows, stage_from_same_weights
    from .target_lever import target_with_power

    def starts(adata, pre, seed):
        pca = unit_variance(standard_pca(adata[pre.data.cell_mask], seed=seed))

        def with_pca(z, cfg, k_selection=None, groups=None):
            x = np.hstack([unit_variance(z), pca])
            return KMeans(n_clusters=cfg.n_clusters, n_init=20, random_state=cfg.seed).fit_predict(x)

        variants = {"z": None, "z + PCA": with_pca}
        if with_target:  # section 13's square-root target, alone and with the z + PCA start
            sqrt_target = target_with_power(0.5)
            variants["z, target power 0.5"] = {(train, "target_distribution"): sqrt_target}
            variants["z + PCA, target power 0.5"] = {
                (recipe, "initial_clusters"): with_pca,
                (train, "target_distribution"): sqrt_target,
            }
        return variants

    df = stage_from_same_weights(method, recipe, "initial_clusters", starts)
    print_summary(df, "variant", df.attrs["labels"])
    save_rows(df, f"embedding_lever_stage_{method}{'_target' if with_target else ''}")


if __name__ == "__main__":
    if "--stage" in sys.argv:
        stage(*[a for a in sys.argv[1:] if not a.startswith("--")], with_target="--with-target" in sys.argv)
    else:
        main(*sys.argv[1:])
