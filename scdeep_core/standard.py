"""The standard scanpy path, as a yardstick beside each deep run: does the deep method find
something the usual pipeline does not?

:func:`standard_clustering` is what a scanpy user runs in seconds (library-size normalisation,
log1p, 2,000 highly variable genes, scaling, 50 PCs, 15 neighbours, Leiden at resolution 1; the
same path as the baselines in BENCHMARKS.md). :func:`compare` says where two clusterings of the
same cells agree and where one splits what the other keeps together.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd

from . import metrics
from .graph import leiden_on_embedding
from .pp import counts_matrix


def standard_pca(adata: ad.AnnData, n_top_genes: int = 2000, n_comps: int = 50, seed: int = 0) -> np.ndarray:
    """PCs of normalised, log1p, highly-variable, scaled counts (scanpy's standard preprocessing)."""
    import scanpy as sc

    a = ad.AnnData(
        X=counts_matrix(adata).astype(np.float32),
        obs=pd.DataFrame(index=adata.obs_names),
        var=pd.DataFrame(index=adata.var_names),
    )
    sc.pp.normalize_total(a, target_sum=1e4)
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, n_top_genes=min(n_top_genes, a.n_vars - 1), flavor="seurat")
    a = a[:, a.var["highly_variable"]].copy()
    with warnings.catch_warnings():  # "zero-centering densifies": expected, the genes are only the HVGs
        warnings.simplefilter("ignore", UserWarning)
        sc.pp.scale(a, max_value=10)
    sc.tl.pca(a, n_comps=min(n_comps, a.n_vars - 1, a.n_obs - 1), random_state=seed)
    return np.asarray(a.obsm["X_pca"])


def standard_clustering(adata: ad.AnnData, resolution: float = 1.0, n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    """Leiden clusters (resolution 1, 15 neighbours) on the standard PCA; labels ordered by size."""
    return leiden_on_embedding(
        standard_pca(adata, seed=seed), resolution=resolution, n_neighbors=n_neighbors, seed=seed
    )


@dataclass
class Comparison:
    """How two clusterings of the same cells relate (``a``: the deep run, ``b``: the standard path).

    ``agree[i]`` is False for a cell whose ``a`` cluster mostly lies in another ``b`` cluster than
    its own; ``splits`` lists each ``b`` cluster that ``a`` divides (and ``merges`` the reverse):
    a part counts when it holds at least ``min_share`` of the cluster's cells.
    """

    ari: float
    table: pd.DataFrame
    agree: np.ndarray
    splits: dict[str, list[str]]
    merges: dict[str, list[str]]

    def sentences(self, a_name: str = "the run", b_name: str = "the standard path") -> list[str]:
        """Plain words for the splits and merges."""
        out = [
            f"{b_name} cluster {b} is divided by {a_name} into {', '.join(parts)}" for b, parts in self.splits.items()
        ]
        out += [f"{a_name} cluster {a} spans {b_name} clusters {', '.join(parts)}" for a, parts in self.merges.items()]
        return out


def compare(a: pd.Series | np.ndarray, b: pd.Series | np.ndarray, min_share: float = 0.2) -> Comparison:
    """Agreement of clusterings ``a`` and ``b`` (cells with a missing label in either are left out
    of the scores and count as agreeing)."""
    a, b = pd.Series(np.asarray(a, dtype=object)).astype(str), pd.Series(np.asarray(b, dtype=object)).astype(str)
    known = ((a != "nan") & (b != "nan")).to_numpy()  # NaN (cells a method could not use) reads "nan"
    table = pd.crosstab(a[known], b[known])
    best_b = table.idxmax(axis=1)  # the b cluster holding most of each a cluster
    agree = np.ones(len(a), bool)
    agree[known] = b[known].to_numpy() == best_b.loc[a[known]].to_numpy()
    by_b = table / table.sum(axis=0)
    by_a = table.div(table.sum(axis=1), axis=0)
    splits = {str(col): [str(r) for r in by_b.index[by_b[col] >= min_share]] for col in table.columns}
    merges = {str(row): [str(c) for c in by_a.columns[by_a.loc[row] >= min_share]] for row in table.index}
    return Comparison(
        ari=float(metrics.ari(a[known], b[known])) if known.any() else float("nan"),
        table=table,
        agree=agree,
        splits={k: v for k, v in splits.items() if len(v) > 1},
        merges={k: v for k, v in merges.items() if len(v) > 1},
    )
