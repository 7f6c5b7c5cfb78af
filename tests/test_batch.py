"""batch_key: batch mixing metrics, the simulator's batch mode, per-batch preparation, the
batch-conditional network, clear errors, real fits that mix batches, and the dashboard path."""

import dataclasses

import numpy as np
import pytest
import torch
from test_app import load_builtin, new_app, start_training, wait_for_run

import scdeep_core as sd
from scdeep_core import cli
from scdeep_core.metrics import batch_asw, ilisi
from scdeep_core.nets import ClusteringAutoencoder
from scdeep_core.pp import prepare


def shifted_points(shift: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    groups = np.tile([0, 1], 300)
    batch = np.repeat([0, 1, 2], 200)
    x = rng.normal(size=(600, 5)) + 6.0 * groups[:, None] + shift * batch[:, None]
    return x, batch, groups


def test_mixing_metrics_tell_mixed_from_separated_batches():
    mixed, batch, groups = shifted_points(0.0)
    apart, _, _ = shifted_points(8.0)
    assert ilisi(mixed, batch) > 0.85 and ilisi(apart, batch) < 0.05
    assert batch_asw(mixed, batch, groups) > 0.9 and batch_asw(apart, batch, groups) < 0.5
    assert np.isnan(ilisi(mixed, np.zeros(600))), "one batch: nothing to mix"


def test_simulator_batch_mode_keeps_the_groups_and_shifts_genes_per_batch():
    plain = sd.datasets.simulate_counts(n_cells=600, n_genes=300, seed=4)
    batched = sd.datasets.simulate_counts(n_cells=600, n_genes=300, seed=4, n_batches=3, batch_effect=1.0)
    assert "batch" not in plain.obs and batched.obs["batch"].nunique() == 3
    assert plain.obs["group"].value_counts().sort_index().equals(batched.obs["group"].value_counts().sort_index())
    assert (plain.var["de_group"] == batched.var["de_group"]).all()
    # every group in every batch: the same biology under a technical shift
    assert (batched.obs.groupby(["group", "batch"], observed=False).size() > 0).all()


def test_prepare_scales_genes_within_each_batch_and_gives_the_one_hot():
    adata = sd.datasets.simulate_counts(n_cells=600, n_genes=300, seed=1, n_batches=3, batch_effect=1.0)
    batch = adata.obs["batch"].to_numpy()
    for method in ("desc", "scdcc"):
        data = prepare(adata, method=method, n_top_genes=200, max_value=1e6, batch=batch)
        assert data.n_batches == 3 and data.gene_mean.shape == (3, 200)
        x = data.scaled_input(slice(None))
        for b in range(3):
            assert np.abs(x[data.batch == b].mean(axis=0)).max() < 1e-3, "centred within each batch"
        onehot = data.batch_onehot(np.arange(5))
        assert onehot.shape == (5, 3) and (onehot.sum(axis=1) == 1).all()
    plain = prepare(adata, method="desc", n_top_genes=200)
    assert plain.batch is None and plain.gene_mean.ndim == 1 and plain.batch_onehot(np.arange(3)) is None


def test_batch_conditional_network_needs_the_batch():
    net = ClusteringAutoencoder(20, (16,), 4, output="zinb", n_batches=3)
    x, b = torch.randn(5, 20), torch.eye(3)[[0, 1, 2, 0, 1]]
    assert net.encode(x, b).shape == (5, 4) and net.decode(net.encode(x, b), b).shape == (5, 60)
    with pytest.raises(ValueError, match="batch-conditional"):
        net.encode(x)
    plain = ClusteringAutoencoder(20, (16,), 4)
    assert torch.equal(plain.encode(x), plain.encode(x, b)), "a plain network ignores a batch"


def test_bad_batch_columns_are_refused_with_a_way_out():
    adata = sd.datasets.simulate_counts(n_cells=200, n_genes=100, seed=0, n_batches=2)
    cfg = sd.config_for("desc", n_clusters=3, pretrain_epochs=1, max_cluster_epochs=1)
    with pytest.raises(sd.InputError, match="not in obs.*Available columns"):
        sd.fit(adata, dataclasses.replace(cfg, batch_key="sample"), copy=True)
    per_cell = adata.copy()
    per_cell.obs["barcode"] = per_cell.obs_names
    with pytest.raises(sd.InputError, match="per-cell column"):
        sd.fit(per_cell, dataclasses.replace(cfg, batch_key="barcode"), copy=True)
    holes = adata.copy()
    holes.obs["batch"] = holes.obs["batch"].astype(object)
    holes.obs.iloc[:3, holes.obs.columns.get_loc("batch")] = None
    with pytest.raises(sd.InputError, match="3 cells have no value"):
        sd.fit(holes, dataclasses.replace(cfg, batch_key="batch"), copy=True)
    lonely = adata.copy()
    lonely.obs["batch"] = lonely.obs["batch"].cat.add_categories("solo")
    lonely.obs.iloc[0, lonely.obs.columns.get_loc("batch")] = "solo"
    with pytest.raises(sd.InputError, match="'solo' has fewer than 2 cells"):
        sd.fit(lonely, dataclasses.replace(cfg, batch_key="batch"), copy=True)
    single = adata.copy()
    single.obs["one"] = "a"
    result = sd.fit(single, dataclasses.replace(cfg, batch_key="one"), copy=True)
    assert any("single value" in n for n in result.notes) and result.batch_scores == {}
    with pytest.raises(sd.ConfigError, match="pretrain again"):
        sd.recluster(single, result.pretrained, dataclasses.replace(cfg, batch_key=None))


@pytest.fixture(scope="module")
def batched():
    """Five groups in three batches with a strong per-gene batch shift."""
    return sd.datasets.simulate_counts(n_cells=900, n_genes=500, n_groups=5, n_batches=3, batch_effect=0.8, seed=2)


@pytest.mark.parametrize("method", ["desc", "scdcc"])
def test_batch_key_mixes_the_batches_and_keeps_the_groups(batched, method):
    cfg = sd.config_for(method, n_clusters=5, pretrain_epochs=40 if method == "desc" else 60)
    without = sd.fit(batched, cfg, label_key="group", copy=True)
    corrected = sd.fit(batched, dataclasses.replace(cfg, batch_key="batch"), label_key="group", copy=True)
    batch = batched.obs["batch"].to_numpy()[without.cell_mask]
    before = ilisi(without.embedding, batch)
    after = corrected.batch_scores["ilisi"]
    assert after > 0.6 and after > before + 0.3, (before, after)
    assert corrected.scores["ari"] > 0.9, corrected.scores
    assert corrected.adata.uns[method]["batch_scores"]["ilisi"] == pytest.approx(after)
    assert "iLISI=" in corrected.summary()


def test_cli_batch_key_option(tmp_path, batched, capsys):
    path = tmp_path / "batched.h5ad"
    batched.write_h5ad(path)
    out = tmp_path / "run"
    code = cli.main(
        [
            "fit",
            str(path),
            "--method",
            "desc",
            "--n-clusters",
            "5",
            "--pretrain-epochs",
            "20",
            "--batch-key",
            "batch",
            "--label-key",
            "group",
            "--no-umap",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "iLISI=" in printed.out
    adata, result = sd.load_run(out)
    assert result.config["batch_key"] == "batch" and "ilisi" in result.batch_scores
    code = cli.main(["fit", str(path), "--method", "desc", "--batch-key", "donor", "--out", str(tmp_path / "x")])
    printed = capsys.readouterr()
    assert code != 0 and "'donor' is not in obs" in printed.err and "Traceback" not in printed.err


def test_dashboard_batch_column_and_colour_by_batch():
    at = new_app()
    at.selectbox(key="builtin_name").set_value("simulated").run()
    at.slider(key="sim_batches").set_value(3).run()
    at.button(key="load_builtin").click().run()
    assert not at.exception and at.session_state["adata"].obs["batch"].nunique() == 3
    at.switch_page("pages/train.py").run()
    assert {"batch", "group"} <= set(at.selectbox(key="batch_select").options)
    at.selectbox(key="batch_select").set_value("batch").run()
    assert any("3 batches" in c.value for c in at.caption)
    start_training(at, "desc", 20)
    wait_for_run(at)
    result = at.session_state["runs"]["desc"]
    assert result.config["batch_key"] == "batch" and result.batch_scores["ilisi"] > 0
    at.switch_page("pages/explore.py").run()
    assert not at.exception
    at.radio(key="colour_by").set_value("batch: batch").run()
    assert not at.exception
    assert any("iLISI=" in c.value for c in at.caption), "the run's summary reports batch mixing"
    at.switch_page("pages/data.py").run()
    load_builtin(at)  # another dataset: its columns, not the old batch column
    at.switch_page("pages/train.py").run()
    assert not at.exception and at.selectbox(key="batch_select").value.startswith("none")
