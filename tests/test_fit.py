"""End-to-end behaviour of fit() on small real and simulated data."""

import json
import threading

import numpy as np
import pandas as pd
import pytest

import scdeep_core as sd
from scdeep_core import constraints as cons
from scdeep_core.datasets import simulate_counts

FAST = dict(pretrain_epochs=30, max_cluster_epochs=20, hidden_dims=(64,), latent_dim=8, batch_size=64)


@pytest.mark.parametrize("method", ["desc", "scdcc"])
def test_fit_recovers_simulated_groups_and_writes_keys(small_sim, method):
    events = []
    cfg = sd.config_for(method, n_clusters=3, **FAST)
    res = sd.fit(small_sim, cfg, label_key="group", callbacks=[events.append])
    assert res.scores["ari"] > 0.9
    a = small_sim
    assert a.obs[f"{method}_cluster"].dtype.name == "category"
    assert a.obs[f"{method}_confidence"].between(1 / 3, 1).all()
    assert a.obsm[f"{method}_q"].shape == (a.n_obs, 3)
    np.testing.assert_allclose(a.obsm[f"{method}_q"].sum(1), 1, rtol=1e-5)
    assert a.obsm[f"X_{method}"].shape == (a.n_obs, 8)
    phases = [e.phase for e in events]
    assert phases[:2] == ["prepare", "pretrain"] and "init" in phases and phases[-1] == "done"
    cluster_events = [e for e in events if e.phase == "cluster"]
    assert all(e.ari is not None and e.elapsed > 0 for e in cluster_events)
    assert any(e.snapshot is not None and e.snapshot.coords.shape[1] == 2 for e in cluster_events)
    assert set(res.history["phase"]) >= {"pretrain"}
    assert np.array_equal(a.layers["counts"].toarray(), a.X.toarray())  # input data untouched


def test_same_seed_same_labels(small_sim):
    cfg = dict(n_clusters=3, **FAST)
    a = sd.fit(small_sim.copy(), sd.SCDCCConfig(**cfg)).labels
    b = sd.fit(small_sim.copy(), sd.SCDCCConfig(**cfg)).labels
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", ["desc", "scdcc"])
def test_recluster_repeats_fit_and_uses_its_own_stage_settings(small_sim, method):
    """A re-cluster with fit's config gives fit's result, whatever drew random numbers in between
    (DESC's dropout used to draw from wherever the process's stream was); a stage setting given to
    re-cluster is the one used (the pretraining's hooks used to keep the pretraining's)."""
    import dataclasses

    import torch

    cfg = sd.config_for(method, n_clusters=3, **FAST)
    fitted = sd.fit(small_sim, cfg, copy=True)
    torch.rand(1000)  # anything else in the process
    again = sd.recluster(small_sim, fitted.pretrained, cfg, copy=True)
    np.testing.assert_array_equal(again.q, fitted.q)
    faster = sd.recluster(
        small_sim, fitted.pretrained, dataclasses.replace(cfg, cluster_lr=cfg.cluster_lr * 100), copy=True
    )
    assert faster.config["cluster_lr"] == cfg.cluster_lr * 100
    assert not np.allclose(faster.q, fitted.q), "the stage ran at the learning rate it was given"
    # A setting that made the model cannot change in a re-cluster: said, not recorded as if it had.
    with pytest.raises(sd.ConfigError, match=r"latent_dim = 16 \(pretrained with 8\).*Pretrain again"):
        sd.recluster(small_sim, fitted.pretrained, dataclasses.replace(cfg, latent_dim=16), copy=True)
    defaults = sd.recluster(small_sim, fitted.pretrained, method, copy=True)  # the method's default clustering
    assert defaults.config["latent_dim"] == 8 and defaults.config["n_clusters"] == "auto"


def test_leiden_when_k_unknown(small_sim):
    res = sd.fit(small_sim, sd.DESCConfig(n_clusters=None, resolution=0.5, **FAST), label_key="group")
    assert 2 <= res.n_clusters <= 8


def test_stop_during_pretraining_returns_usable_result(small_sim):
    token = sd.StopToken()

    def stop_after_two(e):
        if e.phase == "pretrain" and e.epoch == 2:
            token.stop()

    res = sd.fit(small_sim, sd.SCDCCConfig(n_clusters=3, **FAST), stop_token=token, callbacks=[stop_after_two])
    assert res.stage == "pretrain" and len(res.labels) == small_sim.n_obs and res.q.shape == (small_sim.n_obs, 3)
    assert (res.history["phase"] == "pretrain").sum() == 2
    assert res.start == {"method": "kmeans", "k": 3, "stability": {}, "reason": ""}  # stopped: no comparison


def test_stop_during_clustering_from_another_thread(small_sim):
    token = sd.StopToken()
    seen_cluster = threading.Event()

    def cb(e):
        if e.phase == "cluster":
            seen_cluster.set()
            token.stop()

    cfg = sd.DESCConfig(n_clusters=3, tol=0.0, **FAST)
    res = sd.fit(small_sim, cfg, stop_token=token, callbacks=[cb])
    assert seen_cluster.is_set() and res.stage == "cluster" and not res.converged


def test_constraints_from_labels_are_scored_on_other_cells(small_sim):
    c = sd.ConstraintConfig(source="labels", label_key="group", fraction=0.1, n_pairs=300)
    res = sd.fit(small_sim, sd.SCDCCConfig(n_clusters=3, constraints=c, **FAST), label_key="group")
    assert res.eval_mask.sum() == small_sim.n_obs - 30
    assert f"scored on {small_sim.n_obs - 30:,} of {small_sim.n_obs:,} cells" in res.summary()  # said, not hidden
    assert any("must-link" in n for n in res.notes)
    assert "ml" in res.history.columns.str.replace("loss_", "").tolist()


def test_constraints_from_matrix_and_pair_file(small_sim, tmp_path):
    rng = np.random.default_rng(0)
    codes = small_sim.obs["group"].cat.codes.to_numpy()
    small_sim.obsm["protein"] = np.eye(3)[codes] * 5 + rng.normal(0, 0.3, size=(small_sim.n_obs, 3))
    pc = cons.from_matrix(small_sim.obsm["protein"], n_pairs=200, seed=0)
    same = codes[pc.must_link[:, 0]] == codes[pc.must_link[:, 1]]
    assert len(pc.must_link) > 0 and same.mean() > 0.95
    assert (codes[pc.cannot_link[:, 0]] != codes[pc.cannot_link[:, 1]]).mean() > 0.95
    names = small_sim.obs_names
    pd.DataFrame({"cell1": names[[0, 1]], "cell2": names[[2, 3]], "type": ["ml", "cl"]}).to_csv(
        tmp_path / "p.csv", index=False
    )
    pf = cons.read_pair_file(tmp_path / "p.csv", names)
    assert pf.must_link.tolist() == [[0, 2]] and pf.cannot_link.tolist() == [[1, 3]]
    c = sd.ConstraintConfig(source="obsm", obsm_key="protein", n_pairs=200)
    res = sd.fit(small_sim, sd.SCDCCConfig(n_clusters=3, constraints=c, **FAST), label_key="group")
    assert res.scores["ari"] > 0.8


def test_pair_file_with_unknown_cells(small_sim, tmp_path):
    pd.DataFrame({"cell1": ["cell0", "ghost"], "cell2": ["cell1", "cell2"], "type": ["ml", "cl"]}).to_csv(
        tmp_path / "p.csv", index=False
    )
    with pytest.raises(sd.InputError, match="not in the data.*ghost"):
        cons.read_pair_file(tmp_path / "p.csv", small_sim.obs_names)


def test_bad_settings_and_inputs(small_sim):
    with pytest.raises(sd.InputError, match="more than the 300 cells"):
        sd.fit(small_sim, sd.DESCConfig(n_clusters=301))
    with pytest.raises(sd.ConfigError, match="n_clusters = 1"):
        sd.DESCConfig(n_clusters=1)
    with pytest.raises(sd.InputError, match="'nope' is not in obs.*group"):
        sd.fit(small_sim, sd.DESCConfig(n_clusters=3), label_key="nope")
    normalised = small_sim.copy()
    normalised.layers["counts"] = normalised.layers["counts"] * 0.37
    with pytest.raises(sd.InputError, match="not integers.*DESC"):
        sd.fit(normalised, sd.SCDCCConfig(n_clusters=3))
    res = sd.fit(normalised, sd.DESCConfig(n_clusters=3, **FAST))  # DESC accepts normalised values
    assert res.n_clusters == 3


def test_all_zero_cells_are_dropped_with_note(small_sim):
    a = small_sim.copy()
    m = a.layers["counts"].tolil()
    m[:5] = 0
    a.layers["counts"] = m.tocsr()
    res = sd.fit(a, sd.DESCConfig(n_clusters=3, **FAST))
    assert any("5 all-zero cells" in n for n in res.notes)
    assert a.obs["desc_cluster"].isna().sum() == 5 and a.obs["desc_confidence"].isna().sum() == 5


def test_save_and_load_run(small_sim, tmp_path):
    res = sd.fit(small_sim, sd.DESCConfig(n_clusters=3, **FAST), label_key="group")
    paths = sd.save_run(small_sim, res, tmp_path / "run")
    adata2, res2 = sd.load_run(tmp_path / "run")
    np.testing.assert_array_equal(res2.labels, res.labels)
    assert res2.config == res.config and res2.versions["torch"] == res.versions["torch"]
    assert res2.scores["ari"] == pytest.approx(res.scores["ari"])
    hist = pd.read_csv(paths["history"])
    assert "loss_mse" in hist.columns and len(hist) == len(res.history)
    assert "desc_confidence" in pd.read_csv(paths["labels"], index_col=0).columns
    # How the initial clusters were chosen is part of the result, read back as it was written
    assert set(res.start["stability"]) == {"kmeans", "leiden", "spectral"}
    assert res.start["method"] in res.start["stability"]
    assert res2.start == res.start and json.loads(paths["config"].read_text())["start"] == res.start
    assert any(n.startswith("Initial clusters:") for n in res.notes)


def test_simulator_is_seeded():
    a, b = simulate_counts(n_cells=50, n_genes=40, seed=3), simulate_counts(n_cells=50, n_genes=40, seed=3)
    assert (a.X != b.X).nnz == 0 and list(a.obs["group"]) == list(b.obs["group"])
    c = simulate_counts(n_cells=50, n_genes=40, seed=4)
    assert (a.X != c.X).nnz > 0


def test_pbmc_demo_counts_are_exact_integers(pbmc_demo):
    x = pbmc_demo.layers["counts"]
    assert pbmc_demo.shape == (700, 765) and np.allclose(x.data, np.round(x.data))
    assert pbmc_demo.obs["bulk_labels"].nunique() == 10
    # library sizes agree with the stored n_counts up to the genes scanpy kept in raw
    assert x.sum() > 700 * 500


def test_several_resolutions_share_one_pretrained_autoencoder(small_sim):
    events = []
    res = sd.fit_resolutions(small_sim, [0.2, 1.5], sd.DESCConfig(**FAST), label_key="group", callbacks=[events.append])
    assert set(res) == {0.2, 1.5}
    assert sum(e.phase == "pretrain" for e in events) == FAST["pretrain_epochs"]  # pretrained once
    assert res[0.2].n_clusters <= res[1.5].n_clusters
    assert "desc_r0.2_cluster" in small_sim.obs and "desc_r1.5_q" in small_sim.obsm
    np.testing.assert_array_equal(
        res[0.2].history[res[0.2].history["phase"] == "pretrain"]["loss_mse"],
        res[1.5].history[res[1.5].history["phase"] == "pretrain"]["loss_mse"],
    )


def test_umap_layout_keeps_groups_apart_and_is_seeded():
    from scdeep_core.layout import umap_layout

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, size=(4, 8))
    z = np.vstack([rng.normal(c, 1.0, size=(150, 8)) for c in centres])
    groups = np.repeat(np.arange(4), 150)
    y = umap_layout(z, seed=3)
    assert y.shape == (600, 2) and np.isfinite(y).all()
    np.testing.assert_array_equal(y, umap_layout(z, seed=3))
    from sklearn.neighbors import KNeighborsClassifier

    # each cell's 10 nearest cells in 2-D come from its own group
    knn_acc = KNeighborsClassifier(10).fit(y, groups).score(y, groups)
    assert knn_acc > 0.98


def test_no_held_out_labelled_cells_gives_no_score(small_sim):
    c = sd.ConstraintConfig(source="labels", label_key="group", fraction=1.0, n_pairs=100)
    res = sd.fit(small_sim, sd.SCDCCConfig(n_clusters=3, constraints=c, **FAST), label_key="group")
    assert res.scores == {} and any("No held-out labelled cells" in n for n in res.notes)
    empty = small_sim.copy()
    empty.obs["none"] = pd.Series([None] * empty.n_obs, index=empty.obs_names, dtype=object)
    res = sd.fit(empty, sd.DESCConfig(n_clusters=3, **FAST), label_key="none")
    assert res.scores == {} and "ARI" not in res.summary()


def test_default_desc_on_the_builtin_pbmc_shows_the_clustering_stage():
    """The app's first demo (built-in PBMC, default settings) must show clustering at work: several
    clustering epochs with delta_label, not a stop after one (which left the teaching views empty)."""
    adata = sd.datasets.load_builtin("pbmc68k_reduced")
    result = sd.fit(adata, "desc", label_key="bulk_labels")
    cluster = result.history[result.history["phase"] == "cluster"]
    assert len(cluster) >= 3 and cluster["delta_label"].notna().sum() >= 3
    assert result.timings["cluster_epochs"] >= 3


def neighbours_kept(z: np.ndarray, y: np.ndarray, k: int = 15) -> float:
    """Mean share of each cell's k nearest cells in ``z`` that are also among its k nearest in ``y``."""
    from sklearn.neighbors import NearestNeighbors

    a = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z, return_distance=False)[:, 1:]
    b = NearestNeighbors(n_neighbors=k + 1).fit(y).kneighbors(y, return_distance=False)[:, 1:]
    return float(np.mean([len(set(r) & set(s)) / k for r, s in zip(a, b, strict=True)]))


def test_umap_learn_is_the_default_and_the_preview_keeps_most_of_its_neighbours(pbmc_demo):
    """The default picture is umap-learn's; the NumPy fast preview is measured against it on a
    real embedding (DESC on the built-in PBMC): it must keep at least 80 % as many of each cell's
    15 nearest neighbours as umap-learn does."""
    from scdeep_core.embedding import add_umap, umap_coords

    adata = pbmc_demo.copy()
    sd.fit(adata, sd.DESCConfig(n_clusters=10, pretrain_epochs=30, max_cluster_epochs=10))
    z = adata.obsm["X_desc"]
    default = add_umap(adata, "desc", seed=0)
    np.testing.assert_array_equal(default, umap_coords(z, seed=0))  # umap-learn, seeded
    preview = add_umap(adata.copy(), "desc", seed=0, engine="preview")
    kept_umap, kept_preview = neighbours_kept(z, default), neighbours_kept(z, preview)
    assert kept_umap > 0.3, kept_umap
    assert kept_preview >= 0.8 * kept_umap, (kept_preview, kept_umap)
    with pytest.raises(ValueError, match="engine must be one of"):
        add_umap(adata, "desc", engine="numpy")


def test_the_loop_reports_confidence_once_for_every_view(small_sim):
    """The training loop computes the confidence statistics (over every cell) that the Learn page
    draws; the CLI and API get them in the result's history, and the events carry the same numbers."""
    from scdeep_core import figures

    events = []
    res = sd.fit(small_sim, sd.DESCConfig(n_clusters=3, **FAST), callbacks=[events.append])
    rows = res.history[res.history["confidence_mean"].notna()]
    assert len(rows) >= 5 and (rows["phase"] == "cluster").all()
    assert (rows["confidence_q10"] <= rows["confidence_mean"]).all()
    assert (rows["confidence_mean"] <= rows["confidence_q90"]).all()
    assert [e.confidence["mean"] for e in events if e.confidence] == rows["confidence_mean"].tolist()
    first = rows["confidence_mean"].iloc[0]
    assert rows["confidence_mean"].iloc[-1] > first  # the sharpened target pulls cells towards one centroid
    assert len(figures.confidence_trace(res.history).data) == 3
