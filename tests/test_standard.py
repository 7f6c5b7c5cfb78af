"""The standard-pipeline yardstick: scanpy's usual path on real cells, and how two clusterings relate."""

import numpy as np
import pandas as pd

import scdeep_core as sd
from scdeep_core import metrics
from scdeep_core.standard import compare, standard_clustering


def test_standard_clustering_finds_the_pbmc_populations():
    adata = sd.datasets.pbmc_demo()
    labels = standard_clustering(adata)
    assert labels.shape == (adata.n_obs,) and 4 <= labels.max() + 1 <= 20
    assert metrics.ari(adata.obs["bulk_labels"], labels) > 0.3  # far from chance on the 10 known populations
    np.testing.assert_array_equal(labels, standard_clustering(adata))  # same seed, same labels


def test_compare_names_splits_and_merges_and_flags_the_cells():
    # b has three groups of 100; a splits b's group 0 in two halves and merges groups 1 and 2
    b = np.repeat(["x", "y", "z"], 100)
    a = np.array(["A"] * 50 + ["B"] * 50 + ["C"] * 200, dtype=object)
    a[0] = np.nan  # a cell the run could not use: left out of the scores
    result = compare(pd.Series(a), pd.Series(b))
    assert result.splits == {"x": ["A", "B"]}
    assert result.merges == {"C": ["y", "z"]}
    assert (
        result.agree[0] and result.agree[1:200].all()
    )  # C lies as much in y as in z: its z cells are "placed differently"
    assert (~result.agree).sum() == 100
    assert 0 < result.ari < 1
    assert any("divided" in s for s in result.sentences()) and any("spans" in s for s in result.sentences())
    assert compare(pd.Series(b), pd.Series(b)).ari == 1.0 and compare(pd.Series(b), pd.Series(b)).agree.all()
