"""Background jobs: registry limits, reattaching after a reload, stopping abandoned jobs."""
import time

import pytest

from scdeep_core import DESCConfig
from scdeep_core.jobs import BusyError, JobRegistry, TrainingJob

SLOW = DESCConfig(n_clusters=3, pretrain_epochs=10_000, pretrain_patience=0, hidden_dims=(32,), latent_dim=4)


def wait(pred, timeout=60):
    t = time.time()
    while time.time() - t < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_one_run_per_session_and_machine(small_sim):
    reg = JobRegistry(max_running=1)
    job = reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="a", umap=False))
    with pytest.raises(BusyError, match="of yours"):
        reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="a", umap=False))
    with pytest.raises(BusyError, match="machine is busy"):
        reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="b", umap=False))
    assert wait(lambda: len(job.snapshot().history) > 0)
    job.stop()
    job.join(30)
    view = job.snapshot()
    assert view.status == "stopped" and view.result is not None and view.result.stage == "pretrain"


def test_reload_reattaches_but_closed_session_stops(small_sim):
    reg = JobRegistry(max_running=2, orphan_grace_s=0.5)
    kept = reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="tab1", umap=False))
    reg.release_owner("tab1")  # reload closes the old session...
    assert reg.adopt(kept.job_id, "tab2") is kept  # ...and the new one adopts the job
    time.sleep(1.0)
    assert kept.running
    abandoned = reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="tab3", umap=False))
    reg.release_owner("tab3")
    assert wait(lambda: not abandoned.running, 30)
    kept.stop()
    kept.join(30)


def test_failed_run_reports_error(small_sim):
    bad = small_sim.copy()
    bad.layers["counts"] = bad.layers["counts"] * 0.5
    from scdeep_core import SCDCCConfig

    job = JobRegistry().submit(TrainingJob(bad, "scdcc", SCDCCConfig(n_clusters=3), umap=False))
    job.join(60)
    view = job.snapshot()
    assert view.status == "failed" and "not integers" in view.error
