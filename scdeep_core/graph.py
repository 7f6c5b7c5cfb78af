"""kNN graph, Leiden communities and spectral clusters on an embedding, without numba.

scanpy's ``pp.neighbors`` pays ~33 s of numba compilation in every new process (see
platform notes). Embeddings here are small (<= 64 dimensions), so exact neighbours from
scikit-learn are fast, and UMAP's fuzzy connectivities are a few vectorised NumPy lines.
"""

from __future__ import annotations

import random

import igraph as ig
import numpy as np
import scipy.sparse as sp
from scipy.linalg import qr, svd
from scipy.sparse import csgraph
from scipy.sparse.linalg import LinearOperator, eigsh
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


def spectral_with_k(z: np.ndarray, k: int, seed: int = 0, n_neighbors: int = 15) -> np.ndarray:
    """Spectral clustering into ``k`` clusters of the same fuzzy kNN graph Leiden clusters.

    It follows the graph like Leiden but takes k directly, so it needs no resolution search. The
    result is scikit-learn's ``SpectralClustering(affinity="precomputed", assign_labels="cluster_qr")``
    on the connectivities (``tests/test_starts.py`` checks the labels are the same); see
    :func:`spectral_embedding` for why it is not called. Fewer than ``k`` labels come back when some
    cluster ends empty: check the count.
    """
    graph = fuzzy_connectivities(*knn(z, n_neighbors))
    labels = cluster_qr(spectral_embedding(graph, k, seed))
    _, labels = np.unique(labels, return_inverse=True)  # 0..found-1 even if a label came back empty
    return labels


def spectral_embedding(graph: sp.spmatrix, k: int, seed: int = 0) -> np.ndarray:
    """The ``k`` leading eigenvectors of the normalised adjacency ``D^-1/2 W D^-1/2``, times ``D^-1/2``.

    scikit-learn's ``spectral_embedding`` (normalised Laplacian, first vector kept) finds the same
    space with ARPACK in shift-invert mode, which factorises the Laplacian: 2.4 s on cbmc's
    8,617-cell graph against 0.15 s for plain Lanczos on the adjacency's largest eigenvalues here
    (BENCHMARKS.md 20). Plain Lanczos, started from one vector, finds one vector of a repeated
    eigenvalue only, and eigenvalue 1 repeats once per connected part of the graph. Those vectors are
    known, ``D^1/2`` times each part's indicator, so they are written down (the largest parts first
    when there are more than k) and projected out before Lanczos finds the rest.
    """
    n = graph.shape[0]
    laplacian, degree_root = csgraph.laplacian(graph, normed=True, return_diag=True)
    adjacency = sp.identity(n, format="csr") - laplacian
    _, part = csgraph.connected_components(graph, directed=False)
    parts = np.argsort(-np.bincount(part), kind="stable")[:k]
    known = np.zeros((n, len(parts)))
    for j, c in enumerate(parts):
        member = part == c
        known[member, j] = degree_root[member] / np.linalg.norm(degree_root[member])
    missing = k - len(parts)
    if missing == 0:
        vectors = known
    elif n <= 4 * k + 1:  # too small for Lanczos: solve densely
        vectors = np.linalg.eigh(adjacency.toarray())[1][:, -k:]
    else:

        def projected(v: np.ndarray) -> np.ndarray:
            v = v - known @ (known.T @ v)
            v = adjacency @ v
            return v - known @ (known.T @ v)

        operator = LinearOperator((n, n), matvec=projected, dtype=float)
        start = np.random.default_rng(seed).uniform(-1, 1, n)
        rest = eigsh(operator, k=missing, which="LA", v0=start - known @ (known.T @ start))[1]
        vectors = np.hstack([known, rest])
    return vectors / degree_root[:, None]


def cluster_qr(vectors: np.ndarray) -> np.ndarray:
    """Cluster labels from a spectral embedding by column-pivoted QR (Damle, Minden & Ying 2019).

    scikit-learn's ``assign_labels="cluster_qr"``, which is private there (``sklearn.cluster._spectral``):
    deterministic, no KMeans restarts.
    """
    k = vectors.shape[1]
    _, _, pivots = qr(vectors.T, pivoting=True)
    left, _, right = svd(vectors[pivots[:k], :].T)
    return np.abs(vectors @ (left @ right.conj())).argmax(axis=1)
