"""Choosing the number of clusters when the user does not know it.

The pretrained embedding is clustered with Leiden over a grid of resolutions (its kNN
graph is built once). Each resolution is scored by how reproducible its clusters are:
the cells are subsampled several times (80 % each), the subsample's graph is clustered
again at the same resolution, and

* ``stability`` is the mean ARI between the full clustering (restricted to the subsample)
  and the subsample's own clustering (scCCESS / clustree-style agreement);
* every cluster gets Hennig's bootstrap Jaccard (``clusterboot``, Hennig 2007): its best
  Jaccard overlap with a cluster of each subsample, averaged. Hennig calls a cluster
  stable from 0.75 and dissolved below 0.5; ``stable_cells`` is the fraction of cells in
  stable clusters.

The choice (see :func:`pick_resolution`) is the finest resolution whose clustering is
still reproducible. Reproducible is not the same as real: Leiden also cuts one large,
homogeneous group in the same place every time. So neighbouring clusters are then merged
while the cells of the pair, projected on the line joining their centres, are better
described by one Gaussian than by two (BIC; :func:`merge_unimodal_neighbours`). The whole
table is kept so a user can see why and pick another k.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score, silhouette_score
from sklearn.mixture import GaussianMixture

from .graph import fuzzy_connectivities, knn, leiden, to_igraph

#: Resolutions scanned by default: geometric from coarse to fine (Leiden's 1.0 in the middle).
DEFAULT_RESOLUTIONS: tuple[float, ...] = tuple(float(r) for r in np.round(np.geomspace(0.05, 2.0, 12), 3))
#: Hennig's threshold for a stable cluster (bootstrap Jaccard).
STABLE_JACCARD = 0.75


@dataclass
class KSelection:
    """The scan behind an automatic choice of k.

    Attributes
    ----------
    table
        One row per resolution: ``resolution``, ``n_clusters``, ``stability`` (mean ARI to
        subsample clusterings), ``stability_sd``, ``stable_cells`` (fraction of cells in
        clusters with bootstrap Jaccard >= 0.75), ``min_jaccard`` and ``silhouette``.
    chosen
        Row of ``table`` that was chosen.
    labels
        Leiden labels of every cell at each resolution, ``(n_cells, n_resolutions)``.
    rule
        One sentence saying how the row was chosen.
    """

    table: pd.DataFrame
    chosen: int
    labels: np.ndarray
    rule: str
    final_labels: np.ndarray | None = None
    n_merged: int = 0

    @property
    def n_clusters(self) -> int:
        """The chosen k: clusters at the chosen resolution, less the merged pairs."""
        return int(self.table.loc[self.chosen, "n_clusters"]) - self.n_merged

    @property
    def resolution(self) -> float:
        return float(self.table.loc[self.chosen, "resolution"])

    @property
    def chosen_labels(self) -> np.ndarray:
        """Labels of the chosen clustering (after merges)."""
        return self.final_labels if self.final_labels is not None else self.labels[:, self.chosen]

    def candidates(self) -> pd.DataFrame:
        """One row per distinct number of clusters (the most stable resolution giving it)."""
        t = self.table.assign(chosen=False)
        t.loc[self.chosen, "chosen"] = True
        best = t.sort_values(["chosen", "stability"], ascending=False).drop_duplicates("n_clusters")
        return best.sort_values("n_clusters").reset_index(drop=True)

    def to_uns(self) -> dict:
        """h5ad-friendly form: the table's columns as arrays (per-resolution labels are not kept)."""
        return {
            "table": {c: self.table[c].to_numpy() for c in self.table.columns},
            "chosen": int(self.chosen),
            "rule": self.rule,
            "n_merged": int(self.n_merged),
        }

    @classmethod
    def from_uns(cls, d: dict) -> KSelection:
        """Inverse of :meth:`to_uns` (``labels`` come back empty)."""
        table = pd.DataFrame({c: np.asarray(v) for c, v in d["table"].items()})
        return cls(
            table=table,
            chosen=int(d["chosen"]),
            labels=np.empty((0, len(table)), dtype=int),
            rule=str(d["rule"]),
            n_merged=int(d.get("n_merged", 0)),
        )

    def summary(self) -> str:
        """One line: the chosen k and why."""
        row = self.table.loc[self.chosen]
        merged = (
            f"; {self.n_merged} pair(s) of its {int(row['n_clusters'])} clusters merged as one continuous group"
            if self.n_merged
            else ""
        )
        return (
            f"k = {self.n_clusters} (Leiden resolution {row['resolution']:g}; stability {row['stability']:.2f}, "
            f"{row['stable_cells']:.0%} of cells in stable clusters{merged}). {self.rule}"
        )


def _cluster_jaccards(full: np.ndarray, sub: np.ndarray, k: int) -> np.ndarray:
    """Best Jaccard overlap of each of the ``k`` full clusters with a cluster of ``sub``."""
    table = sp.csr_matrix((np.ones(len(full)), (full, sub)), shape=(k, int(sub.max()) + 1)).toarray()
    union = table.sum(1, keepdims=True) + table.sum(0, keepdims=True) - table
    return (table / np.maximum(union, 1)).max(axis=1)


def scan_resolutions(
    z: np.ndarray,
    *,
    resolutions: tuple[float, ...] = DEFAULT_RESOLUTIONS,
    n_neighbors: int = 15,
    n_subsamples: int = 4,
    fraction: float = 0.8,
    seed: int = 0,
    silhouette_cells: int = 2000,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Leiden clusterings of ``z`` over ``resolutions`` with their stability scores.

    Returns
    -------
    (DataFrame, ndarray)
        The score table (see :class:`KSelection`) and the labels, one column per resolution.
    """
    n = z.shape[0]
    rng = np.random.default_rng(seed)
    graph = to_igraph(fuzzy_connectivities(*knn(z, n_neighbors)))
    subsets = [np.sort(rng.choice(n, size=max(int(fraction * n), 2), replace=False)) for _ in range(n_subsamples)]
    subgraphs = [graph.induced_subgraph(s) for s in subsets]
    sil_rows = rng.choice(n, size=min(silhouette_cells, n), replace=False)
    rows, all_labels = [], []
    for r in resolutions:
        labels = leiden(graph, resolution=r, seed=seed)
        k = int(labels.max()) + 1
        aris, jac = [], np.zeros((n_subsamples, k))
        for b, (rows_b, g_b) in enumerate(zip(subsets, subgraphs, strict=True)):
            sub_labels = leiden(g_b, resolution=r, seed=seed + b + 1)
            aris.append(adjusted_rand_score(labels[rows_b], sub_labels))
            jac[b] = _cluster_jaccards(labels[rows_b], sub_labels, k)
        jaccard = jac.mean(axis=0)
        sizes = np.bincount(labels, minlength=k)
        sil = (
            float(silhouette_score(z[sil_rows], labels[sil_rows]))
            if 1 < len(np.unique(labels[sil_rows])) < len(sil_rows)
            else 0.0
        )
        rows.append(
            {
                "resolution": float(r),
                "n_clusters": k,
                "stability": float(np.mean(aris)),
                "stability_sd": float(np.std(aris)),
                "stable_cells": float(sizes[jaccard >= STABLE_JACCARD].sum() / n),
                "min_jaccard": float(jaccard.min()),
                "silhouette": sil,
            }
        )
        all_labels.append(labels)
    return pd.DataFrame(rows), np.column_stack(all_labels)


def pick_resolution(table: pd.DataFrame, min_stable_cells: float = 0.9) -> tuple[int, str]:
    """The finest resolution whose clusters are reproducible.

    Among resolutions giving at least 2 clusters, take those where at least
    ``min_stable_cells`` of the cells lie in stable clusters (bootstrap Jaccard >= 0.75)
    and return the one with the most clusters (ties: the more stable). If none
    qualifies, the most stable resolution.
    """
    ok = table[(table["n_clusters"] >= 2) & (table["stable_cells"] >= min_stable_cells)]
    if len(ok):
        best = ok.sort_values(["n_clusters", "stability"], ascending=False).index[0]
        rule = (
            f"Finest resolution with at least {min_stable_cells:.0%} of cells in stable clusters "
            f"(bootstrap Jaccard >= {STABLE_JACCARD})."
        )
        return int(best), rule
    multi = table[table["n_clusters"] >= 2]
    best = (multi if len(multi) else table)["stability"].idxmax()
    return int(best), "No resolution was reproducible enough; took the most stable one."


def _one_gaussian_fits_better(x: np.ndarray, seed: int, max_points: int = 2000) -> bool:
    """BIC of one against two 1-D Gaussians on ``x`` (subsampled to ``max_points``)."""
    if len(x) > max_points:
        x = np.random.default_rng(seed).choice(x, size=max_points, replace=False)
    x = x.reshape(-1, 1).astype(np.float64)
    one = GaussianMixture(1, random_state=seed).fit(x).bic(x)
    two = GaussianMixture(2, n_init=2, random_state=seed).fit(x).bic(x)
    return one <= two


def merge_unimodal_neighbours(
    z: np.ndarray, labels: np.ndarray, connectivities: sp.spmatrix, seed: int = 0, min_link: float = 0.01
) -> tuple[np.ndarray, int]:
    """Merge neighbouring clusters that form one continuous group.

    Pairs are visited from the most to the least connected in the kNN graph (normalised
    cut weight ``E_ab / sqrt(E_aa' E_bb')`` above ``min_link``); a pair is merged when its
    cells, projected on the line joining the two centres, fit one Gaussian better than two
    (BIC). Repeats until no pair merges.

    Returns
    -------
    (ndarray, int)
        Labels ``0..k-1`` after merging (largest first) and the number of merges.
    """
    labels = np.unique(labels, return_inverse=True)[1]
    merges = 0
    while labels.max() > 0:
        k = int(labels.max()) + 1
        member = sp.csr_matrix((np.ones(len(labels)), (labels, np.arange(len(labels)))), shape=(k, len(labels)))
        between = (member @ connectivities @ member.T).toarray()
        degree = between.sum(axis=1)
        link = between / np.sqrt(np.maximum(np.outer(degree, degree), 1e-12))
        link[np.tril_indices(k)] = 0
        merged = False
        for flat in np.argsort(-link, axis=None):
            a, b = np.unravel_index(flat, link.shape)
            if link[a, b] < min_link:
                break
            direction = z[labels == b].mean(axis=0) - z[labels == a].mean(axis=0)
            pair = (labels == a) | (labels == b)
            if _one_gaussian_fits_better(z[pair] @ direction, seed):
                labels = np.unique(np.where(labels == b, a, labels), return_inverse=True)[1]
                merges += 1
                merged = True
                break
        if not merged:
            break
    order = np.argsort(-np.bincount(labels), kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(order.size)
    return remap[labels], merges


def choose_k(
    z: np.ndarray, *, n_neighbors: int = 15, seed: int = 0, resolutions: tuple[float, ...] = DEFAULT_RESOLUTIONS
) -> KSelection:
    """Choose the number of clusters of embedding ``z`` by Leiden stability (module docstring).

    Parameters
    ----------
    z
        Cell embedding, ``(n_cells, dims)``.
    n_neighbors
        Neighbours of the kNN graph.
    seed
        Seeds the subsamples and Leiden.
    resolutions
        Leiden resolutions to scan.

    Returns
    -------
    KSelection
    """
    table, labels = scan_resolutions(z, resolutions=resolutions, n_neighbors=n_neighbors, seed=seed)
    chosen, rule = pick_resolution(table)
    connectivities = fuzzy_connectivities(*knn(z, n_neighbors))
    final, merges = merge_unimodal_neighbours(z, labels[:, chosen], connectivities, seed=seed)
    return KSelection(table=table, chosen=chosen, labels=labels, rule=rule, final_labels=final, n_merged=merges)
