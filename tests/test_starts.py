"""The initial clusters with a given k: KMeans, Leiden or spectral clustering, whichever the data reproduces best."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans

from scdeep_core import metrics
from scdeep_core.config import ConfigError, config_for
from scdeep_core.graph import spectral_with_k
from scdeep_core.starts import choose_start, describe


def _one_wide_type_and_three_rare_ones(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A large, spread-out type beside three small tight ones: KMeans's even-spread bias cuts the
    large one and merges rare ones; the kNN graph keeps them apart."""
    rng = np.random.default_rng(seed)
    dims = 10
    wide = rng.normal(0.0, 3.0, (800, dims))
    rare = [rng.normal(np.eye(dims)[i] * 14, 0.5, (40, dims)) for i in range(3)]
    return np.vstack([wide, *rare]), np.repeat([0, 1, 2, 3], [800, 40, 40, 40])


def test_the_most_reproducible_start_wins_where_kmeans_cuts_a_large_type():
    x, truth = _one_wide_type_and_three_rare_ones()
    kmeans = choose_start(x, 4, method="kmeans", seed=0)
    chosen = choose_start(x, 4, method="auto", seed=0)
    assert metrics.ari(truth, kmeans.labels) < 0.5  # the failure this guards against is real here
    assert set(chosen.stability) == {"kmeans", "leiden", "spectral"}
    assert chosen.method in ("leiden", "spectral")  # a graph clustering keeps the wide type whole
    assert chosen.stability[chosen.method] == max(chosen.stability.values()) > chosen.stability["kmeans"]
    assert metrics.ari(truth, chosen.labels) > 0.95
    summary = chosen.summary()
    assert "with k = 4, the most reproducible" in summary and "KMeans" in summary and "spectral" in summary


def test_spectral_clustering_follows_the_graph_where_kmeans_cannot():
    """Two interleaved half-moons: no straight cut separates them, the kNN graph does."""
    rng = np.random.default_rng(0)
    t = rng.uniform(0, np.pi, 300)
    upper = np.column_stack([np.cos(t), np.sin(t)])
    lower = np.column_stack([1 - np.cos(t), 0.5 - np.sin(t)])
    x = np.vstack([upper, lower]) + rng.normal(0, 0.05, (600, 2))
    truth = np.repeat([0, 1], 300)
    assert metrics.ari(truth, KMeans(n_clusters=2, n_init=20, random_state=0).fit_predict(x)) < 0.6
    labels = spectral_with_k(x, 2, seed=0, n_neighbors=10)
    assert metrics.ari(truth, labels) > 0.95
    forced = choose_start(x, 2, method="spectral", seed=0, n_neighbors=10)
    assert forced.method == "spectral" and np.array_equal(forced.labels, labels) and forced.stability == {}


def test_equally_reproducible_starts_keep_kmeans_and_kmeans_is_decs_classic_start():
    rng = np.random.default_rng(1)
    x = np.vstack([rng.normal(np.eye(6)[i] * 10, 1.0, (100, 6)) for i in range(4)])
    chosen = choose_start(x, 4, seed=3)
    assert chosen.stability == {"kmeans": 1.0, "leiden": 1.0, "spectral": 1.0}
    assert chosen.method == "kmeans"  # ties keep the classic start
    forced = choose_start(x, 4, method="kmeans", seed=3)
    assert np.array_equal(forced.labels, KMeans(n_clusters=4, n_init=20, random_state=3).fit_predict(x))
    assert forced.stability == {}


def test_spectral_labels_are_scikit_learns_also_on_a_graph_in_several_parts():
    """graph.spectral_embedding replaces scikit-learn's shift-invert solver (16x faster on cbmc); the
    labels must be the same, including where eigenvalue 1 repeats once per connected part."""
    import warnings

    from sklearn.cluster import SpectralClustering

    from scdeep_core.graph import cluster_qr, fuzzy_connectivities, knn, spectral_embedding

    rng = np.random.default_rng(5)
    centres = rng.normal(0, 1.5, (9, 8))
    sizes = [300, 250, 200, 150, 120, 90, 60, 40, 25]
    x = np.vstack([rng.normal(c, 1.0, (n, 8)) for c, n in zip(centres, sizes, strict=True)])
    x[-25:] += 200  # a detached island: the graph has at least two parts
    graph = fuzzy_connectivities(*knn(x, 10))
    from scipy.sparse import csgraph

    assert csgraph.connected_components(graph)[0] >= 2
    for k in (4, 9):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn warns that the graph is not connected
            expected = SpectralClustering(k, affinity="precomputed", assign_labels="cluster_qr", random_state=0)
            expected = expected.fit_predict(graph)
        assert metrics.ari(expected, cluster_qr(spectral_embedding(graph, k, seed=0))) == pytest.approx(1.0)


def test_a_k_no_leiden_resolution_reaches_is_left_out_of_the_comparison_and_said():
    rng = np.random.default_rng(2)
    x = np.vstack([rng.normal(np.eye(3)[i] * 20, 0.3, (15, 3)) for i in range(2)])  # two tight groups
    chosen = choose_start(x, 28, seed=0)
    assert int(chosen.labels.max()) + 1 == 28 and "leiden" not in chosen.stability
    assert "No Leiden resolution gives exactly 28 clusters here" in chosen.reason
    assert "No Leiden resolution" in describe(chosen.to_dict())
    forced = choose_start(x, 28, method="leiden", seed=0)  # asked for Leiden: KMeans, and the reason
    assert forced.method == "kmeans" and forced.reason.endswith("so KMeans made them.")


def test_above_the_size_limit_auto_takes_kmeans_without_comparing_and_says_so(monkeypatch):
    from scdeep_core import starts

    x, _ = _one_wide_type_and_three_rare_ones()
    monkeypatch.setattr(starts, "MAX_CELLS_COMPARED", 500)  # the data has 920 cells
    chosen = choose_start(x, 4, seed=0)
    assert chosen.method == "kmeans" and chosen.stability == {} and "more than 500 cells" in chosen.reason
    assert choose_start(x, 4, method="leiden", seed=0).method == "leiden"  # asked for: still done
    assert choose_start(x, 4, method="spectral", seed=0).method == "spectral"


def test_an_unknown_init_method_is_a_config_error_that_lists_the_choices():
    with pytest.raises(ConfigError, match="init_method must be one of auto, kmeans, leiden, spectral"):
        config_for("desc", n_clusters=4, init_method="gmm")
