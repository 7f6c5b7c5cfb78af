"""Marker genes per cluster (scanpy ``rank_genes_groups``) and dot-plot tables."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc

from .pp import counts_matrix


def _log_normalised(adata: ad.AnnData) -> ad.AnnData:
    tmp = ad.AnnData(X=counts_matrix(adata).copy(), obs=adata.obs.copy(), var=pd.DataFrame(index=adata.var_names))
    sc.pp.normalize_total(tmp, target_sum=1e4)
    sc.pp.log1p(tmp)
    return tmp


def marker_genes(adata: ad.AnnData, groupby: str, *, n_genes: int = 10, method: str = "t-test") -> pd.DataFrame:
    """Top ``n_genes`` marker genes of each group in ``obs[groupby]``.

    Returns a long table with ``cluster, rank, gene, score, logfoldchange, pval_adj``.
    Cells with a missing group (e.g. all-zero cells) are left out.
    """
    tmp = _log_normalised(adata)
    tmp = tmp[tmp.obs[groupby].notna().to_numpy()].copy()
    tmp.obs[groupby] = tmp.obs[groupby].astype("category").cat.remove_unused_categories()
    groups = [g for g, n in tmp.obs[groupby].value_counts().items() if n >= 2]
    sc.tl.rank_genes_groups(tmp, groupby, groups=groups, reference="rest", method=method, n_genes=n_genes)
    df = sc.get.rank_genes_groups_df(tmp, group=None)
    df = df.rename(
        columns={
            "group": "cluster",
            "names": "gene",
            "scores": "score",
            "logfoldchanges": "logfoldchange",
            "pvals_adj": "pval_adj",
        }
    )
    df["rank"] = df.groupby("cluster", observed=True).cumcount() + 1
    return df[["cluster", "rank", "gene", "score", "logfoldchange", "pval_adj"]]


def dot_plot_tables(adata: ad.AnnData, groupby: str, genes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fraction of cells expressing and mean log expression of ``genes`` per group."""
    tmp = _log_normalised(adata[:, genes])
    groups = tmp.obs[groupby]
    x = tmp.X.toarray() if hasattr(tmp.X, "toarray") else np.asarray(tmp.X)
    frac = pd.DataFrame(x > 0, columns=genes).groupby(groups.to_numpy(), observed=True).mean()
    mean = pd.DataFrame(x, columns=genes).groupby(groups.to_numpy(), observed=True).mean()
    return frac, mean
