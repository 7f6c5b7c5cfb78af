"""UMAP of a method's embedding (the 2-D picture users explore).

The default engine is umap-learn, on exact scikit-learn neighbours (its fuzzy graph and layout
are umap-learn's own). Its numba functions compile on first use (about 25 s on 2 cores), once per
process: the app's training processes are forked from a server that compiled them at start-up
(:mod:`scdeep_core.umap_compile`), so a run pays only the layout itself (about 5 s for 4k cells).

``engine="preview"`` is a fast preview: :func:`scdeep_core.layout.umap_layout`, UMAP's
objective in vectorised NumPy with no compilation (about 3 s for 4k cells from a cold process;
it keeps most of umap-learn's neighbours, see ``tests/test_fit.py``), for a quick look from a
fresh process such as the CLI's ``--umap preview``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Literal

import anndata as ad
import numpy as np

from .graph import knn

ENGINES = ("umap-learn", "preview")


def umap_coords(z: np.ndarray, *, n_neighbors: int = 15, seed: int = 0, n_epochs: int | None = None) -> np.ndarray:
    """2-D umap-learn UMAP of ``z`` on exact scikit-learn neighbours (skips pynndescent's compile).

    Parameters
    ----------
    z
        Cells x latent dimensions.
    n_neighbors
        Neighbours of each cell, itself included (umap-learn's convention; scanpy's default 15).
    seed
        umap-learn's ``random_state``: the same seed gives the same layout (single-threaded).
    n_epochs
        Layout epochs; ``None`` is umap-learn's default (500 below 10,000 cells, else 200).

    Returns
    -------
    numpy.ndarray
        Cells x 2, float32.
    """
    import umap

    k = min(n_neighbors, z.shape[0]) - 1  # neighbours besides the cell itself
    idx, dist = knn(z, k)
    # umap wants each point as its own first neighbour.
    idx = np.hstack([np.arange(len(z))[:, None], idx])
    dist = np.hstack([np.zeros((len(z), 1)), dist])
    reducer = umap.UMAP(n_neighbors=k + 1, random_state=seed, n_epochs=n_epochs, precomputed_knn=(idx, dist, None))
    with warnings.catch_warnings():
        # Expected here: seeding forces one thread; no NNDescent index since we pass exact neighbours.
        warnings.filterwarnings("ignore", message=".*(n_jobs value|knn_search_index).*")
        return reducer.fit_transform(z).astype(np.float32)


def add_umap(
    adata: ad.AnnData,
    key: str,
    *,
    seed: int = 0,
    n_neighbors: int = 15,
    engine: Literal["umap-learn", "preview"] = "umap-learn",
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Compute the UMAP of ``obsm[f"X_{key}"]`` into ``obsm[f"X_{key}_umap"]`` (NaN rows stay NaN).

    Parameters
    ----------
    adata
        Holds the embedding ``obsm[f"X_{key}"]`` of a run.
    key
        The run's key.
    seed
        Random seed of the layout.
    n_neighbors
        Neighbours per cell, itself included.
    engine
        ``"umap-learn"`` (default) or ``"preview"`` (the NumPy fast preview, no compilation).
    should_stop
        Polled every epoch by the preview (a stop raises
        :class:`~scdeep_core.layout.LayoutStopped` and nothing is written); umap-learn runs to
        its end (seconds below 10k cells; the app ends a training process that does not stop).

    Returns
    -------
    numpy.ndarray
        The coordinates written (cells x 2).
    """
    from .layout import umap_layout

    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}.")
    z = np.asarray(adata.obsm[f"X_{key}"])
    ok = ~np.isnan(z).any(axis=1)
    coords = np.full((len(z), 2), np.nan, dtype=np.float32)
    if engine == "umap-learn":
        coords[ok] = umap_coords(z[ok], n_neighbors=n_neighbors, seed=seed)
    else:
        coords[ok] = umap_layout(z[ok], n_neighbors=n_neighbors, seed=seed, should_stop=should_stop)
    adata.obsm[f"X_{key}_umap"] = coords
    return coords
