"""Issue 8 lever: Pearson residuals instead of log1p + scale, judged on the baselines' PCA.

``python -m bench.pearson_lever``: every dev set, seeds 0, 1, 2; KMeans (true k) and Leiden
(resolution 1) on 50 PCs of scanpy's standard input and of analytic Pearson residuals (Lause et
al. 2021). Prints per-seed rows and the means (BENCHMARKS.md section 12).
"""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd


def pearson_pca(adata: ad.AnnData, seed: int, theta: float = 100.0, n_top_genes: int = 2000) -> np.ndarray:
    """50 PCs of the analytic Pearson residuals of the 2,000 genes scanpy's Pearson flavour selects."""
    import scanpy as sc

    from scdeep_core.pp import counts_matrix

    a = ad.AnnData(
        X=counts_matrix(adata), obs=pd.DataFrame(index=adata.obs_names), var=pd.DataFrame(index=adata.var_names)
    )
    sc.pp.filter_genes(a, min_cells=1)
    sc.experimental.pp.highly_variable_genes(
        a, flavor="pearson_residuals", n_top_genes=min(n_top_genes, a.n_vars - 1), theta=theta
    )
    a = a[:, a.var["highly_variable"]].copy()
    sc.experimental.pp.normalize_pearson_residuals(a, theta=theta)
    sc.tl.pca(a, n_comps=50, random_state=seed)
    return np.asarray(a.obsm["X_pca"])


def main() -> None:
    from sklearn.cluster import KMeans

    from scdeep_core import metrics
    from scdeep_core.graph import leiden_on_embedding
    from scdeep_core.standard import standard_pca

    from .common import DATASETS, SHARED

    warnings.filterwarnings("ignore")
    rows = []
    for name, (file, key, k) in DATASETS.items():
        adata = ad.read_h5ad(SHARED / file)
        truth = adata.obs[key].astype(str).to_numpy()
        for seed in range(3):
            for inp, pca in (("log1p + scale", standard_pca), ("Pearson residuals", pearson_pca)):
                pcs = pca(adata, seed=seed)
                kmeans = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(pcs)
                leiden = leiden_on_embedding(pcs, resolution=1.0, n_neighbors=15, seed=seed)
                rows.append(
                    {
                        "dataset": name,
                        "seed": seed,
                        "input": inp,
                        "kmeans": metrics.ari(truth, kmeans),
                        "leiden": metrics.ari(truth, leiden),
                        "leiden_k": len(set(leiden)),
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print(df.groupby(["input", "dataset"])[["kmeans", "leiden", "leiden_k"]].mean().unstack(0).round(3))
    print(df.groupby("input")[["kmeans", "leiden"]].mean().round(3))


if __name__ == "__main__":
    main()
