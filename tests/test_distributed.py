"""Data-parallel training with torch.distributed: two processes launched by torchrun (gloo, CPU)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scdeep_core import distributed, metrics
from scdeep_core.datasets import simulate_counts

HERE = Path(__file__).resolve().parent
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _env() -> dict[str, str]:
    # Two processes on two cores: one thread each, or they oversubscribe the machine.
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")


def _run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=_env(), capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_a_single_process_is_one_rank_and_batches_are_unchanged():
    ranks = distributed.current()
    assert (ranks.rank, ranks.world, ranks.active) == (0, 1, False)
    batches = ranks.epoch_batches(10, 4, np.random.default_rng(0))
    order = np.random.default_rng(0).permutation(10)
    assert [b.tolist() for b in batches] == [order[:4].tolist(), order[4:8].tolist(), order[8:].tolist()]


def test_collectives_across_two_ranks_equal_the_single_process_computation(tmp_path):
    """The target distribution from per-rank q shards and all-reduced cluster frequencies is the
    single-process target; the gather restores cell order; every epoch's shards cover each cell once."""
    out = tmp_path / "check.json"
    _run([*TORCHRUN, str(HERE / "distributed_check.py"), str(out)], cwd=tmp_path, timeout=180)
    result = json.loads(out.read_text())
    assert result["target_max_diff"] < 1e-12
    assert result["gather_ok"] and result["batches_cover_once"] and result["equal_steps"]


@pytest.mark.parametrize(("method", "seeds"), [("desc", (0,)), ("scdcc", (0,))])
def test_two_processes_with_torchrun_cluster_as_well_as_one(tmp_path, method, seeds):
    """Same file, seeds and k through the CLI: one process, then two under torchrun (gloo).

    The two runs take different random paths (each rank shuffles and drops out on its own
    shard), so their labels are compared by ARI, not equality. With the defaults single seeds
    differed by up to ~0.02 ARI; with the 40 pretraining epochs below, by <= 0.007 on seeds 0-2,
    so one seed per method is enough (a second DESC seed cost ~24 s).
    """
    adata = simulate_counts(n_cells=1500, n_genes=800, n_groups=6, separation=1.5, dropout=0.3, seed=4)
    adata.write_h5ad(tmp_path / "sim.h5ad")
    truth = adata.obs["group"].astype(str)
    ari: dict[str, list[float]] = {"one": [], "two": []}
    for seed in seeds:
        args = ["fit", "sim.h5ad", "--method", method, "--n-clusters", "6", "--label-key", "group"]
        # 40 pretraining epochs (the default is 170 for 1,500 cells): both runs still reach ARI >= 0.99
        # and differ by <= 0.007 on seeds 0-2, and the test takes ~30 s less.
        args += ["--no-umap", "--quiet", "--seed", str(seed), "--pretrain-epochs", "40"]
        _run([sys.executable, "-m", "scdeep_core", *args, "--out", f"one{seed}"], cwd=tmp_path)
        double = _run([*TORCHRUN, "-m", "scdeep_core", *args, "--out", f"two{seed}"], cwd=tmp_path)
        assert double.stdout.count(f"{method}: k=6") == 1  # rank 0 alone reports and writes
        for run in ("one", "two"):
            labels = pd.read_csv(tmp_path / f"{run}{seed}" / "labels.csv", index_col=0).iloc[:, 0]
            ari[run].append(metrics.ari(truth.loc[labels.index].to_numpy(), labels.astype(str).to_numpy()))
    assert np.mean(ari["one"]) > 0.9, ari  # a real clustering to compare against
    assert abs(np.mean(ari["two"]) - np.mean(ari["one"])) <= 0.02, ari
    config = json.loads((tmp_path / f"two{seeds[0]}" / "config.json").read_text())
    assert "2 processes" in json.dumps(config)  # the run says how it was trained


def test_an_error_on_rank_zero_ends_the_whole_run(tmp_path):
    """A bad --out found by rank 0 must not leave rank 1 waiting forever at a collective."""
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x.txt").write_text("keep me")
    cmd = [*TORCHRUN, "-m", "scdeep_core", "fit", "builtin:simulated", "--method", "desc", "--out", "taken", "--quiet"]
    proc = subprocess.run(cmd, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "already holds files" in proc.stderr or "--force" in proc.stderr
    assert (tmp_path / "taken" / "x.txt").read_text() == "keep me"


def test_the_thorough_preset_is_refused_under_torchrun_with_a_message(tmp_path):
    """A consensus of several models is not built for several processes: say so, train nothing."""
    cmd = [*TORCHRUN, "-m", "scdeep_core", "fit", "builtin:simulated", "--method", "desc", "--preset", "thorough"]
    proc = subprocess.run([*cmd, "--quiet", "--out", "run"], cwd=tmp_path, env=_env(), capture_output=True, text=True)
    assert proc.returncode != 0 and "not available with torchrun" in proc.stderr
    assert not (tmp_path / "run").exists()
