"""Out-of-core training: statistics streamed from an h5ad on disk, minibatches read from it."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

import scdeep_core as sd
from scdeep_core import backed, pp
from scdeep_core.config import ConfigError, config_for
from scdeep_core.datasets import simulate_counts
from scdeep_core.errors import InputError


@pytest.fixture(scope="module")
def sim_file(tmp_path_factory):
    adata = simulate_counts(n_cells=1200, n_genes=1500, n_groups=5, separation=1.3, seed=7)
    adata.X[3] = 0  # an all-zero cell, dropped by both paths
    adata.layers["counts"] = adata.X.copy()
    path = tmp_path_factory.mktemp("backed") / "sim.h5ad"
    adata.write_h5ad(path)
    return path, adata


@pytest.mark.parametrize("method", ["desc", "scdcc"])
def test_streamed_statistics_match_the_in_memory_preparation(sim_file, method):
    path, adata = sim_file
    mem = pp.prepare(adata, method=method, n_top_genes=500)
    disk = backed.prepare_backed(path, method=method, n_top_genes=500, chunk_rows=128)  # many chunks
    assert list(disk.genes) == list(mem.genes)  # scanpy's Seurat-flavour HVGs, from streamed sums
    np.testing.assert_array_equal(disk.cell_mask, mem.cell_mask)
    np.testing.assert_allclose(disk.gene_mean, mem.gene_mean, atol=3e-5)  # measured: 3e-6
    np.testing.assert_allclose(disk.gene_std, mem.gene_std, rtol=3e-5)
    rows = np.array([10, 2, 500, 501, 502, 1100])
    np.testing.assert_allclose(disk.scaled_input(rows), mem.scaled_input(rows), atol=1e-4)  # measured: 8e-6
    if method == "scdcc":
        np.testing.assert_allclose(disk.size_factors, mem.size_factors, rtol=1e-6)
        assert (disk.counts_rows(rows) != mem.counts_rows(rows)).nnz == 0


def test_block_shuffle_visits_every_cell_once_and_mixes_the_file(sim_file):
    path, _ = sim_file
    data = backed.prepare_backed(path, method="desc", n_top_genes=500)
    order = data.epoch_order(np.random.default_rng(0))
    np.testing.assert_array_equal(np.sort(order), np.arange(data.n_cells))
    first = order[:256]  # one minibatch: cells from several blocks of the file, not one run
    assert len(np.unique(first // data.block_cells)) >= 4
    assert not np.array_equal(order, data.epoch_order(np.random.default_rng(1)))
    data.block_cells = 1  # config shuffle_block=1: cell by cell, exactly the in-memory order
    in_memory_order = np.random.default_rng(0).permutation(data.n_cells)
    np.testing.assert_array_equal(data.epoch_order(np.random.default_rng(0)), in_memory_order)


def test_a_backed_fit_clusters_as_well_as_in_memory(sim_file):
    path, adata = sim_file
    cfg = config_for("desc", n_clusters=5, seed=0)
    in_memory = sd.fit(adata.copy(), cfg, label_key="group")
    on_disk = ad.read_h5ad(path, backed="r")
    out_of_core = sd.fit(on_disk, cfg, label_key="group")
    assert in_memory.scores["ari"] > 0.8
    assert abs(out_of_core.scores["ari"] - in_memory.scores["ari"]) <= 0.02
    assert "desc_cluster" in on_disk.obs and on_disk.obsm["X_desc"].shape[0] == on_disk.n_obs


def test_a_matrix_stored_by_columns_or_a_batch_key_is_refused_clearly(tmp_path, sim_file):
    _, adata = sim_file
    csc = adata.copy()
    csc.X = sp.csc_matrix(csc.X)
    del csc.layers["counts"]
    csc.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(InputError, match="CSR"):
        backed.prepare_backed(tmp_path / "csc.h5ad", method="desc")
    with_batch = simulate_counts(n_cells=200, n_genes=200, n_batches=2, seed=1)
    with_batch.write_h5ad(tmp_path / "b.h5ad")
    with pytest.raises(ConfigError, match="out of core"):
        sd.fit(ad.read_h5ad(tmp_path / "b.h5ad", backed="r"), config_for("desc", n_clusters=3, batch_key="batch"))


def test_the_cli_trains_out_of_core_and_writes_results_without_the_counts(sim_file, tmp_path, capsys):
    from scdeep_core.cli import main

    path, adata = sim_file
    out = tmp_path / "run"
    args = ["fit", str(path), "--backed", "--method", "desc", "--n-clusters", "5", "--label-key", "group"]
    assert main([*args, "--no-umap", "--quiet", "--out", str(out)]) == 0
    assert "desc: k=5 ARI=" in capsys.readouterr().out
    written = ad.read_h5ad(out / "result.h5ad")
    assert written.X is None and written.n_obs == adata.n_obs  # the counts stay in the input file
    assert "desc_cluster" in written.obs and "X_desc" in written.obsm
    assert main(["fit", "builtin:simulated", "--backed", "--out", str(tmp_path / "x")]) == 2
    assert "--backed reads an .h5ad file" in capsys.readouterr().err
