"""The initial clusters with a given k: KMeans, Leiden or spectral clustering, whichever the data reproduces best.

DEC's clustering stage keeps much of the start it is given (BENCHMARKS.md 7, 15), and the usual
starts fail on different data. KMeans favours clusters of even spread, so it cuts a large
homogeneous type into pieces (cbmc's two largest types); the graph clusterings (Leiden with its
resolution set to give k, spectral clustering of the same kNN graph) follow the graph, and can cut a
large type along a weak seam while merging two small ones (pbmc's largest). None of silhouette,
modularity, Calinski-Harabasz, Davies-Bouldin, the final KL or the mean confidence told them apart
on every dev set (§7).

Reproducibility does (§19, §20): a partition that cuts a homogeneous group cuts it in a different
place on each subsample, and one that follows real groups does not. Each candidate is re-run with
the same k on ``n_subsamples`` random 80 % subsets of the cells (the same idea as the automatic k's
scan, :mod:`scdeep_core.kselect`), and the one whose subsample partitions agree most with it (mean
ARI) starts the stage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score

from .config import INIT_METHODS
from .graph import leiden_with_k, spectral_with_k

#: Above this many cells ``"auto"`` does not compare: Leiden's bisection and the re-runs grow faster
#: than KMeans (a 100,000-cell run spent minutes here), and the gain was measured on 909-8,617 cells.
MAX_CELLS_COMPARED = 20_000
NAMES = {
    "kmeans": "KMeans",
    "leiden": "Leiden",
    "spectral": "spectral clustering",
    "anchored": "KMeans anchored on the groups marked as one type",
}


@dataclass
class StartChoice:
    """The initial clusters and how they were chosen.

    Attributes
    ----------
    method
        ``"kmeans"``, ``"leiden"``, ``"spectral"`` or ``"anchored"``: what made ``labels``.
    labels
        Initial cluster of each cell, ``0..k-1``.
    stability
        Each compared candidate's reproducibility (mean ARI with its re-runs on subsamples). Empty
        when one method was asked for.
    reason
        One sentence for the user when the comparison could not be made (e.g. no Leiden resolution
        gives exactly k).
    """

    method: str
    labels: np.ndarray
    stability: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def summary(self) -> str:
        """One line: what started the clustering stage, and why."""
        return describe(self.to_dict())

    def to_dict(self) -> dict:
        """JSON/h5ad-friendly form (without the labels): ``method``, ``k``, ``stability``, ``reason``."""
        k = int(self.labels.max()) + 1
        return {"method": self.method, "k": k, "stability": dict(self.stability), "reason": self.reason}


def describe(info: dict) -> str:
    """The sentence for a stored :meth:`StartChoice.to_dict` (a result's ``start``)."""
    text = f"Initial clusters: {NAMES.get(info['method'], info['method'])} with k = {info['k']}"
    if len(info["stability"]) > 1:
        scores = ", ".join(f"{NAMES[m]} {s:.2f}" for m, s in info["stability"].items())
        which = "more" if len(info["stability"]) == 2 else "most"
        text += f", the {which} reproducible on 80 % subsamples (mean ARI with its re-runs: {scores})"
    return text + (f". {info['reason']}" if info["reason"] else ".")


def kmeans_clusters(x: np.ndarray, k: int, seed: int) -> np.ndarray:
    """KMeans with 20 starts, DEC's classic initialisation."""
    return KMeans(n_clusters=k, n_init=20, random_state=seed).fit_predict(x)


def start_makers(n_neighbors: int = 15) -> dict[str, Callable[[np.ndarray, int, int], np.ndarray]]:
    """``make(x, k, seed)`` for each start :func:`choose_start` compares, by its ``init_method`` name:
    KMeans, Leiden at k and spectral clustering, the graph ones on a kNN graph of ``n_neighbors``."""
    return {
        "kmeans": kmeans_clusters,
        "leiden": lambda data, k, seed: leiden_with_k(data, k, seed=seed, n_neighbors=n_neighbors),
        "spectral": lambda data, k, seed: spectral_with_k(data, k, seed=seed, n_neighbors=n_neighbors),
    }


def reproducibility(
    make: Callable[[np.ndarray, int, int], np.ndarray],
    x: np.ndarray,
    labels: np.ndarray,
    seed: int,
    n_subsamples: int = 4,
    fraction: float = 0.8,
) -> float:
    """Mean ARI between ``labels`` and ``make`` re-run with the same k on random subsets of the cells.

    Parameters
    ----------
    make
        ``make(x, k, seed)`` gives a partition of the rows of ``x`` into k clusters.
    x
        Where the cells are clustered, ``(n_cells, dims)``.
    labels
        ``make``'s partition of all cells.
    seed
        Seeds the subsets and each re-run (``seed + 1``, ``seed + 2``, ...).
    n_subsamples, fraction
        How many subsets, each holding this fraction of the cells.
    """
    rng = np.random.default_rng(seed)
    k = int(labels.max()) + 1
    scores = []
    for b in range(n_subsamples):
        rows = np.sort(rng.choice(len(x), size=max(int(fraction * len(x)), k + 1), replace=False))
        scores.append(adjusted_rand_score(labels[rows], make(x[rows], k, seed + b + 1)))
    return float(np.mean(scores))


def choose_start(x: np.ndarray, k: int, *, method: str = "auto", seed: int = 0, n_neighbors: int = 15) -> StartChoice:
    """The initial clusters of ``x`` with ``k`` clusters (module docstring).

    Parameters
    ----------
    x
        The pretrained embedding, or several side by side (a consensus).
    k
        Number of clusters.
    method
        ``"auto"``: KMeans, Leiden and spectral clustering, the most reproducible; ``"kmeans"``,
        ``"leiden"`` or ``"spectral"``: that one.
    seed
        Seeds each method and the subsets.
    n_neighbors
        Neighbours of the kNN graph Leiden and spectral clustering cut.

    Returns
    -------
    StartChoice
    """
    if method not in INIT_METHODS:
        raise ValueError(f"method must be one of {INIT_METHODS}, got {method!r}.")
    makers = start_makers(n_neighbors)
    if method == "kmeans":
        return StartChoice("kmeans", kmeans_clusters(x, k, seed))
    if method == "auto" and len(x) > MAX_CELLS_COMPARED:
        return StartChoice(
            "kmeans",
            kmeans_clusters(x, k, seed),
            reason=f"With more than {MAX_CELLS_COMPARED:,} cells the graph clusterings are not tried (their cost "
            "grows faster than KMeans's); init_method='leiden' or 'spectral' asks for one.",
        )
    graph_methods = ("leiden", "spectral") if method == "auto" else (method,)
    candidates, missed = {}, []
    for name in graph_methods:
        labels = makers[name](x, k, seed)
        if int(labels.max()) + 1 == k:
            candidates[name] = labels
        else:
            missed.append(_NO_K[name].format(k=k))
    reason = ". ".join(missed)
    if not candidates:
        return StartChoice("kmeans", kmeans_clusters(x, k, seed), reason=f"{reason}, so KMeans made them.")
    if method != "auto":
        return StartChoice(method, candidates[method])
    candidates = {"kmeans": kmeans_clusters(x, k, seed), **candidates}
    stability = {m: reproducibility(makers[m], x, labels, seed) for m, labels in candidates.items()}
    best = max(stability, key=lambda m: stability[m])  # ties keep the earlier: KMeans, then Leiden
    return StartChoice(best, candidates[best], stability, f"{reason}, so it was not compared." if reason else "")


_NO_K = {
    "leiden": "No Leiden resolution gives exactly {k} clusters here",
    "spectral": "Spectral clustering finds fewer than {k} clusters here",
}
