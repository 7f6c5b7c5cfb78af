"""The initial clusters with a given k: KMeans or Leiden, whichever the data reproduces better."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from scdeep_core import metrics
from scdeep_core.config import ConfigError, config_for
from scdeep_core.starts import choose_start, describe


def _one_wide_type_and_three_rare_ones(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A large, spread-out type beside three small tight ones: KMeans's even-spread bias cuts the
    large one and merges rare ones; the kNN graph keeps them apart."""
    rng = np.random.default_rng(seed)
    dims = 10
    wide = rng.normal(0.0, 3.0, (800, dims))
    rare = [rng.normal(np.eye(dims)[i] * 14, 0.5, (40, dims)) for i in range(3)]
    return np.vstack([wide, *rare]), np.repeat([0, 1, 2, 3], [800, 40, 40, 40])


def test_the_more_reproducible_start_wins_where_kmeans_cuts_a_large_type():
    x, truth = _one_wide_type_and_three_rare_ones()
    kmeans = choose_start(x, 4, method="kmeans", seed=0)
    chosen = choose_start(x, 4, method="auto", seed=0)
    assert metrics.ari(truth, kmeans.labels) < 0.5  # the failure this guards against is real here
    assert chosen.method == "leiden"
    assert chosen.stability["leiden"] > chosen.stability["kmeans"]
    assert metrics.ari(truth, chosen.labels) > 0.95
    assert "Leiden with k = 4" in chosen.summary() and "KMeans" in chosen.summary()


def test_equally_reproducible_starts_keep_kmeans_and_kmeans_is_decs_classic_start():
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(np.eye(6)[i] * 10, 1.0, (100, 6)) for i in range(4)])
    chosen = choose_start(x, 4, seed=3)
    assert chosen.stability == {"kmeans": 1.0, "leiden": 1.0}
    assert chosen.method == "kmeans"  # ties keep the classic start
    forced = choose_start(x, 4, method="kmeans", seed=3)
    assert np.array_equal(forced.labels, KMeans(n_clusters=4, n_init=20, random_state=3).fit_predict(x))
    assert forced.stability == {}


def test_a_k_no_leiden_resolution_reaches_falls_back_to_kmeans_and_says_so():
    rng = np.random.default_rng(2)
    x = np.vstack([rng.normal(np.eye(3)[i] * 20, 0.3, (15, 3)) for i in range(2)])  # two tight groups
    chosen = choose_start(x, 28, seed=0)
    assert chosen.method == "kmeans" and int(chosen.labels.max()) + 1 == 28
    assert "No Leiden resolution gives exactly 28 clusters" in chosen.reason
    assert "No Leiden resolution" in describe(chosen.to_dict())


def test_above_the_size_limit_auto_takes_kmeans_without_comparing_and_says_so(monkeypatch):
    from scdeep_core import starts

    x, _ = _one_wide_type_and_three_rare_ones()
    monkeypatch.setattr(starts, "MAX_CELLS_COMPARED", 500)  # the data has 920 cells
    chosen = choose_start(x, 4, seed=0)
    assert chosen.method == "kmeans" and chosen.stability == {} and "more than 500 cells" in chosen.reason
    assert choose_start(x, 4, method="leiden", seed=0).method == "leiden"  # asked for: still done


def test_an_unknown_init_method_is_a_config_error_that_lists_the_choices():
    with pytest.raises(ConfigError, match="init_method must be one of auto, kmeans, leiden"):
        config_for("desc", n_clusters=4, init_method="spectral")
