"""Background jobs: registry limits, reattaching after a reload, stopping abandoned jobs."""

import threading
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


def test_one_run_per_session_and_a_queue_for_the_machine(small_sim):
    reg = JobRegistry(max_running=1)
    job = reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="a", umap=False))
    with pytest.raises(BusyError, match="of yours"):
        reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="a", umap=False))
    fast = DESCConfig(n_clusters=3, pretrain_epochs=3, max_cluster_epochs=2, hidden_dims=(16,), latent_dim=4)
    second = reg.submit(TrainingJob(small_sim, "desc", fast, owner="b", umap=False))
    third = reg.submit(TrainingJob(small_sim, "desc", fast, owner="c", umap=False))
    assert second.status == third.status == "queued" and [j.owner for j in reg.queued()] == ["b", "c"]
    assert (second.queue_position, third.queue_position) == (
        0,
        1,
    ) and third.expected_start_s > second.expected_start_s > 0
    third.stop()  # cancel while it waits
    assert third.status == "cancelled" and reg.queued() == [second]
    assert wait(lambda: len(job.snapshot().history) > 0)
    job.stop()
    job.join(30)
    view = job.snapshot()
    assert view.status == "stopped" and view.result is not None and view.result.stage == "pretrain"
    time.sleep(0.3)  # an ended run's time from Start to end stays put: the page shows it long after
    assert job.snapshot().elapsed == view.elapsed >= view.result.timings["total_s"]
    assert wait(lambda: second.status == "done", 60)  # started by itself once the slot was free
    assert second.result is not None and third.result is None and not reg.queued()


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


def test_closing_a_session_without_a_run_leaves_no_timer_and_finished_jobs_are_forgotten(small_sim):
    import threading

    reg = JobRegistry()
    before = threading.active_count()
    for i in range(20):
        reg.release_owner(f"idle{i}")
    assert threading.active_count() == before
    fast = DESCConfig(n_clusters=3, pretrain_epochs=3, max_cluster_epochs=2, hidden_dims=(16,), latent_dim=4)
    job = reg.submit(TrainingJob(small_sim, "desc", fast, owner="a", umap=False))
    job.join(60)
    reg.forget(job.job_id)
    job.release_data()
    assert reg.get(job.job_id) is None and job.adata is None and job.result is not None


def test_umap_layout_stops_when_asked():
    import numpy as np

    from scdeep_core.layout import LayoutStopped, umap_layout

    z = np.random.default_rng(0).normal(size=(200, 5))
    calls = []

    def stop_after_three() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(LayoutStopped, match="epoch 3 of"):
        umap_layout(z, should_stop=stop_after_three)


def test_a_foreign_session_cannot_take_a_live_run_and_finished_orphans_are_evicted(small_sim):
    reg = JobRegistry(max_running=1, orphan_grace_s=0.5)
    fast = DESCConfig(n_clusters=3, pretrain_epochs=3, max_cluster_epochs=2, hidden_dims=(16,), latent_dim=4)
    job = reg.submit(TrainingJob(small_sim, "desc", fast, owner="alice", umap=False))
    assert reg.adopt(job.job_id, "mallory") is None  # alice's session is alive: her link gives nothing to others
    assert reg.adopt(job.job_id, "alice") is job and job.owner == "alice"
    job.join(60)
    reg.release_owner("alice")  # alice closes her tab; nobody reloads it
    assert wait(lambda: reg.get(job.job_id) is None, 10)
    assert job.adata is None and job.result is not None


def test_a_new_run_drops_the_sessions_ended_runs_and_a_handed_over_run_shares_the_data(small_sim):
    reg = JobRegistry()
    fast = DESCConfig(n_clusters=3, pretrain_epochs=3, max_cluster_epochs=2, hidden_dims=(16,), latent_dim=4)
    first = reg.submit(TrainingJob(small_sim, "desc", fast, owner="a", umap=False))
    other = reg.submit(TrainingJob(small_sim, "desc", fast, owner="b", umap=False))
    first.join(60), other.join(60)
    assert first.adata is not small_sim  # the job trained on its own copy
    session_copy = small_sim.copy()
    first.share_data(session_copy)  # harvested: hold the session's object, not a second copy
    assert first.adata is session_copy
    reg.forget_ended("a")
    assert reg.get(first.job_id) is None
    assert reg.get(other.job_id) is other  # another session's run is untouched
    running = reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="a", umap=False))
    reg.forget_ended("a")
    assert reg.get(running.job_id) is running  # a run in progress is never dropped
    running.stop(), running.join(60)


def _niceness(pid: int) -> int:
    return int(open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[16])


@pytest.mark.skipif(
    not __import__("os").path.exists("/proc/self/stat"), reason="needs Linux /proc to read process priorities"
)
def test_training_runs_in_its_own_lower_priority_process_and_its_death_is_reported(small_sim):
    """The server's interpreter is not shared with training (pages stay responsive), and a
    training process killed from outside (e.g. out of memory) fails its run cleanly; the
    next queued run still starts."""
    import os
    import signal

    reg = JobRegistry(max_running=1)
    doomed = reg.submit(TrainingJob(small_sim, "desc", SLOW, owner="a", umap=False))
    fast = DESCConfig(n_clusters=3, pretrain_epochs=3, max_cluster_epochs=2, hidden_dims=(16,), latent_dim=4)
    after = reg.submit(TrainingJob(small_sim, "desc", fast, owner="b", umap=True))
    assert wait(lambda: len(doomed.snapshot().history) > 0)  # events cross the process boundary
    pid = doomed._process.pid
    assert pid != os.getpid() and _niceness(pid) > _niceness(os.getpid())
    os.kill(pid, signal.SIGKILL)
    doomed.join(30)
    view = doomed.snapshot()
    assert view.status == "failed" and "ended unexpectedly" in view.error and "-9" in view.error
    assert wait(lambda: after.status == "done", 60)
    # the parent's copy of the data got the result keys and the UMAP computed in the child
    assert {"X_desc", "desc_q", "X_desc_umap"} <= set(after.adata.obsm) and "desc_cluster" in after.adata.obs


def test_stop_ends_a_run_that_does_not_reach_a_check(small_sim, monkeypatch):
    """Stop is honoured even in a step without stop checks: after the grace period the
    process is ended and the run says so."""
    import os
    import signal

    job = JobRegistry().submit(TrainingJob(small_sim, "desc", SLOW, owner="a", umap=False, stop_grace_s=1.0))
    assert wait(lambda: len(job.snapshot().history) > 0)
    os.kill(job._process.pid, signal.SIGSTOP)  # frozen: it can no longer look at the stop flag
    job.stop()
    job.join(30)
    view = job.snapshot()
    assert view.status == "stopped" and "without a partial result" in view.message


def test_stop_during_an_uninterruptible_umap_keeps_the_trained_result():
    """umap-learn's compiled layout cannot look at the stop flag: it runs in a thread and Stop is
    answered within a fraction of a second, so the process sends its result instead of being ended."""
    import time

    from scdeep_core.events import StopToken
    from scdeep_core.layout import LayoutStopped
    from scdeep_core.worker import _stoppable

    token = StopToken()
    assert _stoppable(lambda: 42, token) == 42
    with pytest.raises(ZeroDivisionError):
        _stoppable(lambda: 1 / 0, token)
    threading.Timer(0.3, token.stop).start()
    t0 = time.perf_counter()
    with pytest.raises(LayoutStopped):
        _stoppable(lambda: time.sleep(30), token)
    assert time.perf_counter() - t0 < 2
