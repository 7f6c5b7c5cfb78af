"""Clustering scores against known labels (ARI, NMI, ACC with Hungarian matching, confusion table)
and batch mixing in an embedding (iLISI, batch ASW)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, silhouette_samples
from sklearn.neighbors import NearestNeighbors


def _as_codes(labels: Sequence | np.ndarray) -> np.ndarray:
    return pd.factorize(pd.Series(np.asarray(labels)).astype(str))[0]


def ari(truth: Sequence, pred: Sequence) -> float:
    """Adjusted Rand index."""
    return float(adjusted_rand_score(_as_codes(truth), _as_codes(pred)))


def nmi(truth: Sequence, pred: Sequence) -> float:
    """Normalised mutual information (arithmetic mean normalisation, as scikit-learn)."""
    return float(normalized_mutual_info_score(_as_codes(truth), _as_codes(pred)))


def acc(truth: Sequence, pred: Sequence) -> float:
    """Clustering accuracy: the fraction of cells right under the best one-to-one matching
    of clusters to labels (Hungarian algorithm; unmatched clusters count as wrong)."""
    table = confusion(truth, pred).to_numpy()
    rows, cols = linear_sum_assignment(-table)
    return float(table[rows, cols].sum() / max(table.sum(), 1))


def confusion(truth: Sequence, pred: Sequence) -> pd.DataFrame:
    """Cells per (label, cluster): rows are labels, columns clusters."""
    t = pd.Series(np.asarray(truth), name="label").astype(str)
    p = pd.Series(np.asarray(pred), name="cluster").astype(str)
    return pd.crosstab(t, p)


def scores(truth: Sequence, pred: Sequence) -> dict[str, float]:
    """ARI, NMI and ACC in one dict."""
    return {"ari": ari(truth, pred), "nmi": nmi(truth, pred), "acc": acc(truth, pred)}


def ilisi(embedding: np.ndarray, batch: Sequence, n_neighbors: int = 30) -> float:
    """Batch mixing: the median over cells of the inverse Simpson index of the batches among each
    cell's ``n_neighbors`` nearest neighbours, rescaled to 0 (only its own batch around every
    cell) .. 1 (every batch equally around it).

    This is scIB's iLISI (Korsunsky et al. 2019, Luecken et al. 2022) with uniform neighbour
    weights instead of LISI's perplexity-calibrated Gaussian ones: the same scale and ordering,
    without the bandwidth search.

    Parameters
    ----------
    embedding
        Cells x dimensions.
    batch
        The batch of each cell.
    n_neighbors
        Neighbourhood size (scIB uses 90 with perplexity 30; 30 uniform neighbours is comparable).

    Returns
    -------
    float
        In [0, 1]; NaN with a single batch.
    """
    codes = _as_codes(batch)
    n_batches = int(codes.max()) + 1 if len(codes) else 0
    if n_batches < 2:
        return float("nan")
    k = min(n_neighbors, len(codes) - 1)
    _, idx = NearestNeighbors(n_neighbors=k + 1).fit(embedding).kneighbors(embedding)
    neighbours = codes[idx[:, 1:]]  # without the cell itself
    share = np.stack([(neighbours == b).mean(axis=1) for b in range(n_batches)], axis=1)
    simpson = 1.0 / np.maximum((share**2).sum(axis=1), 1e-12)
    return float((np.median(simpson) - 1.0) / (n_batches - 1))


def batch_asw(embedding: np.ndarray, batch: Sequence, groups: Sequence) -> float:
    """Batch mixing within each cell group: scIB's batch ASW.

    In each group (a known cell type, or a cluster), the silhouette of the cells' *batch* labels;
    ``1 - |silhouette|`` per cell, averaged per group, then over groups. 1: batches are mixed
    within every group; 0: they are separated. Groups with one batch or one cell are skipped.

    Parameters
    ----------
    embedding
        Cells x dimensions.
    batch
        The batch of each cell.
    groups
        The cell type (or cluster) of each cell.

    Returns
    -------
    float
        In [0, 1]; NaN if no group holds two batches.
    """
    b = _as_codes(batch)
    g = _as_codes(groups)
    per_group = []
    for code in np.unique(g):
        rows = np.flatnonzero(g == code)
        n_b = len(np.unique(b[rows]))
        if n_b < 2 or len(rows) <= n_b:
            continue
        per_group.append(float(np.mean(1.0 - np.abs(silhouette_samples(embedding[rows], b[rows])))))
    return float(np.mean(per_group)) if per_group else float("nan")
