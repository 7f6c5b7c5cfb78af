"""Choosing k automatically, re-clustering from a pretrained model, and telling the user about convergence."""

import dataclasses

import numpy as np
import pytest

import scdeep_core as sd
from scdeep_core import kselect
from scdeep_core.datasets import simulate_counts

FAST = dict(pretrain_epochs=30, max_cluster_epochs=20, hidden_dims=(64,), latent_dim=8, batch_size=64)


def blobs(n_groups: int, per_group: int = 120, dims: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 6, size=(n_groups, dims))
    sizes = rng.integers(per_group // 2, per_group * 2, size=n_groups)
    z = np.vstack([rng.normal(c, 1.0, size=(s, dims)) for c, s in zip(centres, sizes, strict=True)])
    return z, np.repeat(np.arange(n_groups), sizes)


@pytest.mark.parametrize("n_groups", [3, 7])
def test_choose_k_finds_separated_groups(n_groups):
    z, truth = blobs(n_groups)
    sel = kselect.choose_k(z, seed=0)
    assert sel.n_clusters == n_groups, sel.table
    assert sd.metrics.ari(truth, sel.chosen_labels) > 0.95
    row = sel.table.loc[sel.chosen]
    assert row["stable_cells"] >= 0.9 and row["stability"] > 0.9
    # finer resolutions split real groups: less reproducible than the chosen one
    finest = sel.table.iloc[-1]
    assert finest["n_clusters"] > n_groups and finest["stability"] < row["stability"]


def test_one_gaussian_group_cut_in_two_is_merged_back():
    rng = np.random.default_rng(0)
    one = rng.normal(0, 1, size=(600, 5))
    halves = (one[:, 0] > 0).astype(int)  # a clean, reproducible, but arbitrary cut
    two = np.vstack([rng.normal(0, 1, size=(300, 5)), rng.normal([4, 0, 0, 0, 0], 1, size=(300, 5))])
    from scdeep_core.graph import fuzzy_connectivities, knn

    merged, n = kselect.merge_unimodal_neighbours(one, halves, fuzzy_connectivities(*knn(one, 15)))
    assert n == 1 and merged.max() == 0
    kept, n = kselect.merge_unimodal_neighbours(two, np.repeat([0, 1], 300), fuzzy_connectivities(*knn(two, 15)))
    assert n == 0 and kept.max() == 1


def test_pick_resolution_takes_finest_reproducible_row():
    import pandas as pd

    table = pd.DataFrame(
        {
            "resolution": [0.1, 0.5, 1.0, 2.0],
            "n_clusters": [2, 4, 9, 20],
            "stability": [1.0, 0.95, 0.7, 0.5],
            "stable_cells": [1.0, 0.93, 0.6, 0.3],
        }
    )
    chosen, rule = kselect.pick_resolution(table)
    assert chosen == 1 and "stable clusters" in rule
    chosen, rule = kselect.pick_resolution(table.assign(stable_cells=0.1))
    assert chosen == 0 and "most stable" in rule


def test_auto_k_recovers_simulated_groups_and_is_kept_with_the_result(tmp_path):
    adata = simulate_counts(n_cells=600, n_genes=400, n_groups=5, separation=2.0, seed=2)
    res = sd.fit(adata, sd.DESCConfig(n_clusters="auto", **FAST), label_key="group")
    assert res.n_clusters == 5, res.k_selection.table
    assert res.scores["ari"] > 0.9
    assert any("Automatic choice: k = 5" in n for n in res.notes)
    assert "k_selection" in adata.uns["desc"] and res.summary().startswith("desc: k=5 (automatic)")
    sd.save_run(adata, res, tmp_path / "run")
    _, loaded = sd.load_run(tmp_path / "run")
    assert loaded.k_selection.n_clusters == 5 and list(loaded.k_selection.table["n_clusters"]) == list(
        res.k_selection.table["n_clusters"]
    )


def test_default_config_chooses_k():
    assert sd.DESCConfig().n_clusters == "auto" and sd.SCDCCConfig().n_clusters == "auto"
    with pytest.raises(sd.ConfigError, match="'auto' or None"):
        sd.DESCConfig(n_clusters="many")
    assert sd.DESCConfig(n_clusters=np.int64(4)).n_clusters == 4 and sd.DESCConfig(n_clusters=4.0).n_clusters == 4


def test_recluster_reuses_the_pretrained_model(small_sim):
    events = []
    res = sd.fit(small_sim, sd.SCDCCConfig(n_clusters=3, **FAST), label_key="group")
    pre = res.pretrained
    weights = {k: v.clone() for k, v in pre.model.state_dict().items()}
    again = sd.recluster(small_sim, pre, callbacks=[events.append], key_added="again")
    np.testing.assert_array_equal(again.labels, res.labels)  # same k, same seed: same labels as fit
    assert not any(e.phase == "pretrain" for e in events) and events[-1].phase == "done"
    four = sd.recluster(small_sim, pre, dataclasses.replace(pre.cfg, n_clusters=4), key_added="k4")
    assert four.n_clusters == 4 and "k4_cluster" in small_sim.obs
    for k, v in pre.model.state_dict().items():  # the pretrained weights are left as they were
        assert torch_equal(v, weights[k]), k
    with pytest.raises(sd.InputError, match="pretrained on 300"):
        sd.recluster(small_sim[:100].copy(), pre)


def torch_equal(a, b) -> bool:
    return bool((a == b).all())


def test_capped_run_is_flagged_not_converged(small_sim):
    cfg = sd.DESCConfig(n_clusters=3, tol=0.0, **dict(FAST, max_cluster_epochs=3))
    res = sd.fit(small_sim, cfg)
    assert res.stage == "done" and not res.converged and res.delta_label is not None
    assert "NOT converged" in res.summary() and "cap" in res.convergence()
    assert any(n.startswith("Not converged") for n in res.notes)
    conv = small_sim.uns["desc"]["convergence"]
    assert not conv["converged"] and conv["cluster_epochs"] == 3 and conv["tol"] == 0.0


def test_clustering_stage_runs_its_minimum_epochs(small_sim):
    cfg = sd.DESCConfig(n_clusters=3, **dict(FAST, min_cluster_epochs=6, tol=0.5))
    res = sd.fit(small_sim, cfg)
    assert res.converged and res.timings["cluster_epochs"] == 6
    assert (res.history["phase"] == "cluster").sum() == 6


def test_auto_k_is_reproducible_and_drawn(small_sim):
    cfg = sd.DESCConfig(n_clusters="auto", **FAST)
    a = sd.fit(small_sim.copy(), cfg)
    b = sd.fit(small_sim.copy(), cfg)
    np.testing.assert_array_equal(a.labels, b.labels)
    assert a.k_selection.table.equals(b.k_selection.table)
    from scdeep_core import figures
    from scdeep_core.cli import format_k_selection

    fig = figures.k_selection_chart(a.k_selection.table, a.n_clusters, a.k_selection.chosen)
    assert "Choosing k" in fig.layout.title.text and any(t.name == "chosen resolution" for t in fig.data)
    text = format_k_selection(a.k_selection)
    assert text.count("<- chosen") == 1 and f"chose k = {a.n_clusters}" in text
