"""UMAP of a method's embedding (the 2-D picture users explore).

Default engine: :func:`scdeep_core.layout.umap_layout` (NumPy, no compilation: a UMAP in
about 3 s for 4k cells from a cold process). ``engine="umap-learn"`` uses the reference
package (about 15-30 s of numba compilation in each new process).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import anndata as ad
import numpy as np

from .graph import knn


def umap_coords(z: np.ndarray, *, n_neighbors: int = 15, seed: int = 0, n_epochs: int | None = None) -> np.ndarray:
    """2-D UMAP of ``z``, using exact scikit-learn neighbours (skips pynndescent's compile)."""
    import umap

    k = min(n_neighbors, z.shape[0] - 1)
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
    engine: str = "numpy",
    should_stop: Callable[[], bool] | None = None,
) -> np.ndarray:
    """Compute the UMAP of ``obsm[f"X_{key}"]`` into ``obsm[f"X_{key}_umap"]`` (NaN rows stay NaN).

    ``engine`` is ``"numpy"`` (default, no compilation) or ``"umap-learn"``. ``should_stop``
    (numpy engine) is polled every epoch; a stop raises
    :class:`~scdeep_core.layout.LayoutStopped` and nothing is written.
    """
    from .layout import umap_layout

    z = np.asarray(adata.obsm[f"X_{key}"])
    ok = ~np.isnan(z).any(axis=1)
    coords = np.full((len(z), 2), np.nan, dtype=np.float32)
    if engine == "umap-learn":
        coords[ok] = umap_coords(z[ok], n_neighbors=n_neighbors, seed=seed)
    elif engine == "numpy":
        coords[ok] = umap_layout(z[ok], n_neighbors=n_neighbors, seed=seed, should_stop=should_stop)
    else:
        raise ValueError(f"engine must be 'numpy' or 'umap-learn', got {engine!r}.")
    adata.obsm[f"X_{key}_umap"] = coords
    return coords
