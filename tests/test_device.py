"""The ``device`` setting: "auto" is CUDA when present, else the CPU; every tensor follows it.

CPU results are checked to be the same whichever way the CPU is named; the CUDA test runs only
where a GPU exists (it skips with a reason elsewhere, e.g. in CI)."""

import numpy as np
import pytest
import torch

import scdeep_core as sd
from scdeep_core.device import resolve_device

FAST = dict(pretrain_epochs=15, max_cluster_epochs=8, hidden_dims=(32,), latent_dim=6, batch_size=64, seed=3)
HAS_CUDA = torch.cuda.is_available()


def test_auto_is_the_cpu_without_a_gpu_and_bad_names_are_refused():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if HAS_CUDA else "cpu")
    with pytest.raises(sd.ConfigError, match="device must be"):
        sd.DESCConfig(device="gpu")
    if not HAS_CUDA:
        with pytest.raises(sd.ConfigError, match="no usable CUDA GPU: use device='auto' or 'cpu'"):
            resolve_device("cuda")


@pytest.mark.skipif(HAS_CUDA, reason="checks the message a machine without a GPU gives")
def test_asking_for_cuda_without_a_gpu_fails_before_any_work(small_sim):
    with pytest.raises(sd.ConfigError, match="no usable CUDA GPU"):
        sd.fit(small_sim, sd.SCDCCConfig(n_clusters=3, device="cuda", **FAST))
    assert "scdcc_cluster" not in small_sim.obs


@pytest.mark.parametrize("config", [sd.DESCConfig, sd.SCDCCConfig])
def test_cpu_by_name_and_by_auto_give_identical_results_on_a_cpu_machine(small_sim, config):
    if HAS_CUDA:
        pytest.skip("on a GPU machine 'auto' is the GPU: see the CUDA test")
    a = sd.fit(small_sim.copy(), config(n_clusters=3, device="cpu", **FAST))
    b = sd.fit(small_sim.copy(), config(n_clusters=3, device="auto", **FAST))
    assert np.array_equal(a.labels, b.labels) and np.array_equal(a.q, b.q) and np.array_equal(a.embedding, b.embedding)
    assert a.versions["device"] == b.versions["device"] == "cpu"


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU on this machine (the CUDA path runs where one exists)")
@pytest.mark.parametrize("config", [sd.DESCConfig, sd.SCDCCConfig])
def test_cuda_runs_every_stage_on_the_gpu_and_agrees_with_the_cpu(small_sim, config):
    c = sd.ConstraintConfig(source="labels", label_key="group", fraction=0.2, n_pairs=300)
    extra = {"constraints": c} if config is sd.SCDCCConfig else {}
    gpu = sd.fit(small_sim.copy(), config(n_clusters=3, device="cuda", **FAST, **extra), label_key="group")
    cpu = sd.fit(small_sim.copy(), config(n_clusters=3, device="cpu", **FAST, **extra), label_key="group")
    assert gpu.versions["device"].startswith("cuda") and cpu.versions["device"] == "cpu"
    assert isinstance(gpu.q, np.ndarray) and np.isfinite(gpu.q).all() and gpu.stage == "done"
    assert abs(gpu.scores["ari"] - cpu.scores["ari"]) < 0.1
    again = sd.recluster(small_sim, gpu.pretrained, config(n_clusters=4, device="cuda", **FAST, **extra))
    assert again.n_clusters == 4
