"""Compile umap-learn's numba functions by importing this module (about 25 s on 2 cores).

The training forkserver imports it at start-up (``worker._PRELOAD``, started in the background
when the app starts): every training process is forked from that server and inherits the
compiled code, so the compilation is paid once per server process instead of once per run. The
layout below is tiny but takes the same code path, with the same types, as a real one
(:func:`scdeep_core.embedding.umap_coords`).

Nothing here may start a GNU OpenMP thread pool: a process forked from one that has used it is
killed by the OpenMP runtime ("fork() called from a process already using GNU OpenMP, this is
unsafe"; measured: every training run died). numba picks its ``omp`` threading layer when torch's
libgomp is loaded, so this process is switched to numba's own ``workqueue`` layer before anything
compiles, and the neighbours are found with plain NumPy rather than scikit-learn (also OpenMP).
"""

from __future__ import annotations

import warnings

import numpy as np


def compile_umap() -> None:
    """Run umap-learn once on 300 random points so that its numba functions are compiled."""
    import numba

    numba.config.THREADING_LAYER = "workqueue"  # fork-safe; must be set before the first parallel launch
    import umap

    points = np.random.default_rng(0).normal(size=(300, 8)).astype(np.float32)
    k = 15
    dist = np.sqrt(((points[:, None, :] - points[None, :, :]) ** 2).sum(-1))
    idx = np.argsort(dist, axis=1)[:, :k]  # each point first, as umap-learn wants
    reducer = umap.UMAP(n_neighbors=k, random_state=0, precomputed_knn=(idx, np.take_along_axis(dist, idx, 1), None))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(n_jobs value|knn_search_index).*")
        reducer.fit_transform(points)


compile_umap()
