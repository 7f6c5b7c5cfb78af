"""Honest progress: time left from measured epoch times, every phase, a bar that follows time."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from scdeep_core import DESCConfig, fit
from scdeep_core.progress import RunPlan, TimeLeft, describe, steps, umap_seconds


def _pretrain(tl: TimeLeft, n: int, seconds: float, t0: float = 0.0) -> float:
    now = t0
    tl.phase("pretrain", now)
    for _ in range(n):
        now += seconds
        tl.epoch("pretrain", seconds)
    return now


def test_pretraining_time_left_is_the_budget_left_times_the_measured_epoch():
    tl = TimeLeft(RunPlan("desc", n_cells=1000, pretrain_epochs=50, cluster_cap=100, min_cluster_epochs=5))
    assert tl.seconds_left(0.5) is None  # nothing timed yet: no number is better than a guess
    now = _pretrain(tl, 10, 0.2)
    left = tl.seconds_left(now)
    # 40 epochs at 0.2 s, then KMeans and a typical clustering stage of 12 epochs at ~0.22 s
    assert 40 * 0.2 < left < 40 * 0.2 + 12 * 0.3 + 1
    assert tl.at_most(now) >= left + 80 * 0.2  # the clustering cap of 100 epochs, not 12
    # Constant epoch times: the estimate falls with time, it never rises.
    later = _pretrain(tl, 10, 0.2, now)
    assert tl.seconds_left(later) < left - 10 * 0.2 + 0.01


def test_clustering_stage_estimate_holds_and_the_bound_counts_down():
    plan = RunPlan("desc", n_cells=1000, pretrain_epochs=20, cluster_cap=100, min_cluster_epochs=5, tol=0.005)
    tl = TimeLeft(plan)
    now = _pretrain(tl, 20, 0.1)
    tl.phase("init", now)
    tl.phase("cluster", now + 0.1)
    lefts, bounds = [], []
    for d in [0.05, 0.04, 0.03, 0.03, 0.02] + [0.02] * 30:  # a stage that does not settle
        now += 0.1
        tl.epoch("cluster", 0.1, d)
        lefts.append(tl.seconds_left(now))
        bounds.append(tl.at_most(now))
    assert lefts[0] == pytest.approx((12 - 1) * 0.1, abs=0.01)  # a typical stage is 12 epochs
    assert all(b <= a + 1e-9 for a, b in pairwise(lefts))  # never rises...
    assert lefts[-1] == pytest.approx(3 * 0.1, abs=0.01)  # ...and holds at a few epochs while it goes on
    assert all(b < a for a, b in pairwise(bounds)) and bounds[-1] == pytest.approx((100 - 35) * 0.1, abs=0.01)
    converged = TimeLeft(plan)
    _pretrain(converged, 20, 0.1)
    converged.phase("cluster", 2.0)
    for d in (0.02, 0.01, 0.004):
        converged.epoch("cluster", 0.1, d)
    assert converged.seconds_left(2.5) <= 0.3  # below tol after the minimum: it stops within ~2 epochs


def test_a_consensus_counts_every_models_pretraining_and_stage():
    plan = RunPlan("desc", n_cells=1000, pretrain_epochs=20, cluster_cap=20, min_cluster_epochs=5, models=3, stages=3)
    tl = TimeLeft(plan)
    now = _pretrain(tl, 10, 0.1)
    stage = 12 * 0.1 * 1.1  # a typical stage, a clustering epoch costing 1.1 pretraining epochs
    # 10 epochs of this model's budget and two more pretrainings of 20, then three stages.
    assert tl.seconds_left(now) == pytest.approx(50 * 0.1 + 1000 * 1.5e-4 + 3 * stage, rel=0.01)
    tl.start_model(1)  # the first model stopped early at 10: only the two budgets left count
    assert tl.seconds_left(now) == pytest.approx(40 * 0.1 + 1000 * 1.5e-4 + 3 * stage, rel=0.01)


def test_fraction_follows_time_and_never_moves_back():
    tl = TimeLeft(RunPlan("scdcc", n_cells=500, pretrain_epochs=10, cluster_cap=50))
    now = _pretrain(tl, 2, 1.0)
    first = tl.fraction(now)
    tl.epoch("pretrain", 5.0)  # a slow epoch (another user): the estimate rises, the bar holds
    assert tl.fraction(now + 5.0) >= first
    tl.phase("done", now + 6)
    assert tl.fraction(now + 6) == 1.0 and tl.seconds_left(now + 6) == 0.0


def test_words_for_the_bar():
    assert "about 30 s left" in describe("desc", "cluster", 12.0, 30.0, 31.0)
    assert "at most 90 s" in describe("desc", "cluster", 12.0, 30.0, 90.0)
    assert "after the first epoch" in describe("scdcc", "prepare", 2.0, None, None)
    ended = describe("desc", "stopped", 25.2, 0.0, 0.0, fit_s=3.9)  # the summary says time=3.9s
    assert ended.startswith("DESC - stopped - 25 s from Start to end (fitting 3.9 s;") and "left" not in ended
    assert describe("desc", "done", 4.6, 0.0, 0.0, fit_s=3.9) == "DESC - done - 5 s from Start to end"
    line = steps("cluster", umap=True)
    assert line.index("✓ pretraining") < line.index("▶ clustering") < line.index("computing the UMAP")
    assert umap_seconds(10_000) > umap_seconds(1_000) > 0


def test_a_real_fit_reports_every_phase_and_an_honest_estimate(small_sim):
    events = []
    cfg = DESCConfig(
        n_clusters=3,
        pretrain_epochs=15,
        pretrain_patience=0,
        max_cluster_epochs=30,
        hidden_dims=(32,),
        latent_dim=8,
        seed=0,
    )
    fit(small_sim, cfg, callbacks=[lambda e: events.append((e.phase, e.elapsed, e.eta, e.eta_max, e.progress))])
    phases = [p for p, *_ in events]
    assert phases[0] == "prepare" and events[0][2] is None  # the data is prepared before anything is timed
    order = [p for i, p in enumerate(phases) if i == 0 or phases[i - 1] != p]
    assert order[:3] == ["prepare", "pretrain", "init"] and order[-1] == "done" and "cluster" in order
    progress = [e[4] for e in events]
    assert all(b >= a for a, b in pairwise(progress)) and progress[-1] == 1.0
    timed = [(t, eta, worst) for p, t, eta, worst, _ in events if p == "pretrain"]
    assert all(worst >= eta for _, eta, worst in timed)
    # During pretraining (fixed budget, similar epochs) the estimate falls with time: no rise beyond noise.
    rises = [b[1] - a[1] for a, b in pairwise(timed[2:])]
    assert max(rises) < 0.5 * np.median([eta for _, eta, _ in timed]), rises
