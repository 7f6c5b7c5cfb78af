"""kNN graph and Leiden communities on an embedding, without numba.

scanpy's ``pp.neighbors`` pays ~33 s of numba compilation in every new process (see
platform notes). Embeddings here are small (<= 64 dimensions), so exact neighbours from
scikit-learn are fast, and UMAP's fuzzy connectivities are a few vectorised NumPy lines.
"""

from __future__ import annotations

import random

import igraph as ig
import numpy as np
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors


def knn(z: np.ndarray, n_neighbors: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices and distances of each cell's ``n_neighbors`` nearest neighbours (itself excluded)."""
    k = min(n_neighbors, z.shape[0] - 1)
    nn = NearestNeighbors(n_neighbors=k + 1).fit(z)
    dist, idx = nn.kneighbors(z)
    return idx[:, 1:], dist[:, 1:]


def fuzzy_connectivities(indices: np.ndarray, distances: np.ndarray) -> sp.csr_matrix:
    """UMAP's fuzzy simplicial set of a kNN graph (the weights scanpy's Leiden uses).

    For each cell, ``w_ij = exp(-(d_ij - rho_i) / sigma_i)`` with ``rho_i`` the nearest
    distance and ``sigma_i`` chosen so that ``sum_j w_ij = log2(k)``; then the fuzzy
    union ``W + W^T - W * W^T``.
    """
    n, k = indices.shape
    rho = distances[:, :1]
    shifted = np.maximum(distances - rho, 0.0)
    target = np.log2(k)
    lo, hi = np.zeros((n, 1)), np.full((n, 1), np.inf)
    sigma = np.ones((n, 1))
    for _ in range(64):  # bisection on all cells at once
        total = np.exp(-shifted / sigma).sum(axis=1, keepdims=True)
        too_big = total > target
        hi = np.where(too_big, sigma, hi)
        lo = np.where(too_big, lo, sigma)
        sigma = np.where(np.isinf(hi), sigma * 2, (lo + hi) / 2)
    weights = np.exp(-shifted / np.maximum(sigma, 1e-12))
    rows = np.repeat(np.arange(n), k)
    w = sp.csr_matrix((weights.ravel(), (rows, indices.ravel())), shape=(n, n))
    wt = w.T.tocsr()
    return (w + wt - w.multiply(wt)).tocsr()


def to_igraph(connectivities: sp.spmatrix) -> ig.Graph:
    """Undirected weighted igraph of a symmetric connectivity matrix (built once, reused)."""
    upper = sp.triu(connectivities, k=1).tocoo()
    g = ig.Graph(n=connectivities.shape[0], edges=np.column_stack([upper.row, upper.col]), directed=False)
    g.es["weight"] = upper.data
    return g


def leiden(graph: sp.spmatrix | ig.Graph, resolution: float = 1.0, seed: int = 0, n_iterations: int = 2) -> np.ndarray:
    """Leiden communities (modularity, igraph) of a weighted graph; labels ordered by size.

    ``graph`` is a symmetric connectivity matrix or an igraph from :func:`to_igraph`
    (faster when one graph is clustered several times). ``n_iterations=2`` is scanpy's default.
    """
    g = graph if isinstance(graph, ig.Graph) else to_igraph(graph)
    # igraph draws from a process-wide generator: seed a private one for this call.
    ig.set_random_number_generator(random.Random(seed))
    try:
        part = g.community_leiden(
            objective_function="modularity", weights="weight", resolution=resolution, n_iterations=n_iterations
        )
    finally:
        ig.set_random_number_generator(random)
    labels = np.asarray(part.membership)
    # Relabel so that cluster 0 is the largest (stable, readable).
    order = np.argsort(-np.bincount(labels), kind="stable")
    remap = np.empty_like(order)
    remap[order] = np.arange(order.size)
    return remap[labels]


def leiden_on_embedding(z: np.ndarray, resolution: float = 1.0, n_neighbors: int = 15, seed: int = 0) -> np.ndarray:
    """Leiden clusters of an embedding's kNN graph."""
    idx, dist = knn(z, n_neighbors)
    return leiden(fuzzy_connectivities(idx, dist), resolution=resolution, seed=seed)


def leiden_with_k(z: np.ndarray, k: int, seed: int = 0, n_neighbors: int = 15, steps: int = 30) -> np.ndarray:
    """Leiden on the kNN graph of ``z``, the resolution bisected until it gives ``k`` clusters.

    What a scanpy user does when k is known. When no resolution gives exactly ``k`` within
    ``steps`` bisections, the clustering with the closest count is returned (check its size).
    """
    graph = to_igraph(fuzzy_connectivities(*knn(z, n_neighbors)))
    lo, hi, best = 0.0, 5.0, None
    for _ in range(steps):
        mid = (lo + hi) / 2
        labels = leiden(graph, resolution=mid, seed=seed)
        found = int(labels.max()) + 1
        if best is None or abs(found - k) < abs(int(best.max()) + 1 - k):
            best = labels
        if found == k:
            break
        lo, hi = (mid, hi) if found < k else (lo, mid)
    return best
