"""The 'thorough' preset: a consensus of several models (issue 8)."""

import dataclasses

import numpy as np
import pytest

import scdeep_core as sd
from scdeep_core.cli import _config_from_args, build_parser
from scdeep_core.config import ConfigError
from scdeep_core.results import result_from_adata

FAST = dict(pretrain_epochs=30, max_cluster_epochs=20, hidden_dims=(64,), latent_dim=8, batch_size=64)


@pytest.fixture(scope="module")
def thorough_run():
    from scdeep_core.datasets import simulate_counts

    adata = simulate_counts(n_cells=300, n_genes=300, n_groups=3, separation=2.0, seed=1)
    events = []
    cfg = sd.config_for("desc", preset="thorough", n_clusters=3, **FAST)
    result = sd.fit(adata, cfg, label_key="group", callbacks=[events.append])
    return adata, cfg, result, events


def test_thorough_preset_trains_three_models_and_votes_with_their_mean_q(thorough_run):
    adata, cfg, res, _ = thorough_run
    pre = res.pretrained
    assert cfg.n_models == 3 and cfg.model_seeds() == [0, 3, 6]
    assert [m.cfg.seed for m in pre.models] == [0, 3, 6]
    # Three different networks (own seeds), not one model three times.
    assert not np.allclose(pre.models[0].z, pre.models[1].z)
    assert res.scores["ari"] > 0.9
    np.testing.assert_allclose(res.q.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(res.labels, res.q.argmax(axis=1))
    info = res.consensus
    assert info["n_models"] == 3 and info["seeds"] == [0, 3, 6] and -1 <= info["agreement"] <= 1
    assert len(info["cluster_epochs"]) == 3
    assert "consensus of 3 models" in res.summary()
    assert any(n.startswith("Consensus of 3 models: on their own they agree") for n in res.notes)
    # Every model pretrained and ran its own stage; the history says which rows are whose.
    assert set(res.history["model"]) == {0, 1, 2}
    assert set(res.history.loc[res.history["phase"] == "cluster", "model"]) == {0, 1, 2}
    # Saved with the result and read back.
    assert result_from_adata(adata, "desc").consensus == info


def test_the_progress_of_a_consensus_counts_every_model(thorough_run):
    _, _, _, events = thorough_run
    progress = [e.progress for e in events]
    assert progress == sorted(progress) and progress[-1] == 1.0
    # Every pretraining and stage event says whose it is; the stages are announced one by one.
    assert {e.model for e in events if e.phase in ("pretrain", "cluster")} == {0, 1, 2}
    announced = [e.message for e in events if e.phase == "init" and e.message.startswith("Model ")]
    assert announced == [f"Model {i} of 3: clustering stage from the same initial clusters." for i in (2, 3)]
    # The plan counts all three (the exact arithmetic is tested in test_progress).
    first = next(e for e in events if e.phase == "pretrain" and e.eta is not None)
    assert first.eta_max > 2 * sum(e.epoch_s for e in events if e.phase == "pretrain" and e.model == 0)


def test_same_seed_same_consensus(thorough_run):
    adata, cfg, res, _ = thorough_run
    again = sd.fit(adata.copy(), cfg)
    np.testing.assert_array_equal(again.labels, res.labels)


def test_recluster_reuses_the_three_models_and_refuses_another_count(thorough_run):
    adata, cfg, res, _ = thorough_run
    pre = res.pretrained
    other = sd.recluster(adata, pre, dataclasses.replace(cfg, n_clusters=4), copy=True)
    assert other.n_clusters == 4 and other.consensus["n_models"] == 3
    # No pretraining again: the pretraining rows are the ones the fit recorded.
    assert (other.history["phase"] == "pretrain").sum() == (res.history["phase"] == "pretrain").sum()
    with pytest.raises(ConfigError, match="n_models = 1 differs from the pretrained run's 3"):
        sd.recluster(adata, pre, dataclasses.replace(cfg, n_models=1), copy=True)


def test_cli_preset_and_explicit_options():
    parse = build_parser().parse_args
    assert _config_from_args(parse(["fit", "x.h5ad", "--method", "desc"])).n_models == 1
    assert _config_from_args(parse(["fit", "x.h5ad", "--method", "desc", "--preset", "thorough"])).n_models == 3
    args = parse(["fit", "x.h5ad", "--method", "scdcc", "--preset", "thorough", "--n-models", "2"])
    assert _config_from_args(args).n_models == 2
    with pytest.raises(ConfigError, match="Unknown preset"):
        sd.config_for("desc", preset="slow")
    with pytest.raises(ConfigError, match="n_models"):
        sd.config_for("desc", n_models=0)


def test_the_loss_chart_draws_each_model_apart(thorough_run):
    from scdeep_core.figures import loss_curves

    _, cfg, res, _ = thorough_run
    fig = loss_curves(res.history, cfg.tol)
    mse = [t for t in fig.data if t.name == "MSE reconstruction (pretrain)"]
    assert len(mse) == 3 and [t.showlegend for t in mse] == [True, False, False]  # one line per model, one legend
    assert len({t.line.color for t in mse}) == 1
    assert {a.text for a in fig.layout.annotations} >= {"model 2", "model 3", "clustering starts"}


def test_a_consensus_out_of_core_matches_the_one_in_memory(tmp_path):
    import anndata as ad

    from scdeep_core.datasets import simulate_counts

    adata = simulate_counts(n_cells=300, n_genes=200, n_groups=3, separation=2.0, seed=2)
    adata.X = adata.layers["counts"].copy()
    adata.write_h5ad(tmp_path / "sim.h5ad")
    cfg = sd.config_for("desc", preset="thorough", n_clusters=3, shuffle_block=1, **FAST)
    in_memory = sd.fit(adata, cfg)
    backed = sd.fit(ad.read_h5ad(tmp_path / "sim.h5ad", backed="r"), cfg)
    assert backed.consensus["n_models"] == 3
    assert sd.metrics.ari(in_memory.labels, backed.labels) > 0.95


def test_stopped_during_the_second_pretraining_keeps_what_was_trained(thorough_run):
    adata, cfg, _, _ = thorough_run
    token = sd.StopToken()

    def stop_in_second_model(event):
        if event.phase == "pretrain" and event.model == 1 and event.epoch == 2:
            token.stop()

    res = sd.fit(adata.copy(), cfg, stop_token=token, callbacks=[stop_in_second_model])
    assert res.stage == "pretrain" and res.q.shape == (adata.n_obs, 3)
    assert res.consensus["n_models"] == 2 and set(res.history["model"]) == {0, 1}
    # Stopped in the second model's clustering stage: all three vote, the third from the shared start.
    token = sd.StopToken()
    res = sd.fit(
        adata.copy(),
        cfg,
        stop_token=token,
        callbacks=[lambda e: token.stop() if e.phase == "cluster" and e.model == 1 else None],
    )
    assert res.stage == "cluster" and "stopped by the user" in res.summary()
    assert res.consensus["n_models"] == 3 and res.consensus["cluster_epochs"][2] == 0
