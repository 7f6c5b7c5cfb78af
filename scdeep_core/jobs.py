"""Background training jobs and a registry a web page can reattach to.

A :class:`TrainingJob` runs :func:`scdeep_core.fit` in a child process
(:mod:`scdeep_core.worker`) watched by a thread that never touches the UI; the thread keeps
the events under a lock so a page can poll :meth:`TrainingJob.snapshot` once a second. The
:class:`JobRegistry` holds jobs by an unguessable id (a reloaded page finds its job again),
one owner per job, and queues runs beyond the number of concurrent slots.
"""

from __future__ import annotations

import pickle
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anndata as ad
import numpy as np
import pandas as pd

from . import progress, worker
from .config import BaseConfig
from .events import EmbeddingSnapshot, TrainingEvent
from .results import ClusteringResult, write_to_adata

if TYPE_CHECKING:  # the api (and torch) load in the training process, not when a page imports this module
    from .api import Pretrained


@dataclass
class JobView:
    """A consistent copy of a job's state for drawing."""

    job_id: str
    status: str  # "running", "done", "stopped", "failed"
    method: str
    key: str
    phase: str
    progress: float  # share of the run done, by time; never decreases
    eta: float | None  # expected seconds left (training and UMAP), None until the first epoch is timed
    elapsed: float
    history: pd.DataFrame
    last_event: TrainingEvent | None
    snapshots: list[EmbeddingSnapshot]
    message: str
    error: str | None
    result: ClusteringResult | None
    queue_position: int | None = None  # runs ahead of this one while it is queued
    expected_start_s: float | None = None
    eta_max: float | None = None  # seconds left if the clustering stage runs to its cap


class TrainingJob:
    """One training run in a child process, watched by a background thread.

    Parameters
    ----------
    adata
        The data; the job works on a copy, so the caller's object is never touched
        from another thread.
    method, config, label_key, key
        As for :func:`scdeep_core.fit`.
    umap
        Also compute the UMAP of the embedding once training ends.
    pretrained
        A pretrained model (``result.pretrained`` of an earlier run on the same cells):
        only the clustering stage runs, e.g. with another k.
    stop_grace_s
        After Stop, how long the run may take to reach its next check before its process is
        ended (its partial result is then lost).
    """

    def __init__(
        self,
        adata: ad.AnnData,
        method: str,
        config: BaseConfig,
        *,
        label_key: str | None = None,
        key: str | None = None,
        owner: str = "",
        umap: bool = True,
        max_snapshots: int = 60,
        pretrained: Pretrained | None = None,
        constraints: list | None = None,
        stop_grace_s: float = 20.0,
    ) -> None:
        self.job_id = secrets.token_urlsafe(16)  # unguessable: it is the key a reloaded page reattaches with
        self.owner = owner
        self.method = method
        self.config = config
        self.key = key or method
        self.label_key = label_key
        self.umap = umap
        self.adata = adata.copy()
        self.n_cells = adata.n_obs
        self.pretrained = pretrained
        self.constraints = constraints  # selections for a re-cluster (scdeep_core.constraints.Selection)
        self.stop_token = worker.ProcessStopToken()  # seen by the training process too
        self.stop_grace_s = stop_grace_s
        self._process = None  # the training process while it runs
        self.max_snapshots = max_snapshots
        self._lock = threading.Lock()
        self._rows: list[dict] = []
        self._snapshots: list[EmbeddingSnapshot] = []
        self._last: TrainingEvent | None = None
        self.status = "created"
        self.phase = "queued"
        self.message = ""
        self.error: str | None = None
        self.result: ClusteringResult | None = None
        self.started = time.perf_counter()
        self.ended: float | None = None  # when the run ended: its elapsed time stops growing there
        self._thread = threading.Thread(target=self._run, name=f"scdeep-{self.job_id}", daemon=True)
        self.queued_at = time.perf_counter()
        self._umap_started: float | None = None
        self._fraction = 0.0
        self.queue_position: int | None = None
        self.expected_start_s: float | None = None
        self.on_end: Callable[[TrainingJob], None] | None = None  # set by the registry: start the next queued run

    def start(self) -> TrainingJob:
        self.status = "running"
        self.phase = "starting"
        self.started = time.perf_counter()
        self._thread.start()
        return self

    def queue(self) -> TrainingJob:
        """Wait for a free slot (the registry starts it)."""
        self.status = self.phase = "queued"
        self.queued_at = time.perf_counter()
        return self

    def stop(self) -> None:
        """Ask the run to stop at the next minibatch (the partial result is kept), or cancel it
        if it is still queued."""
        with self._lock:
            first = not self.stop_token.stopped
            self.stop_token.stop()
            cancelled = self.status == "queued"
            if cancelled:
                self.status = self.phase = "cancelled"
                self.message = "Cancelled before it started."
                self.started = self.ended = time.perf_counter()  # it never ran: 0 s
            elif first and self.status == "running":
                timer = threading.Timer(self.stop_grace_s, self._end_unanswered_stop)
                timer.daemon = True
                timer.start()
        if cancelled and self.on_end is not None:
            self.on_end(self)

    def _end_unanswered_stop(self) -> None:
        """Stop was pressed ``stop_grace_s`` ago and the run still goes (a long step with no
        check in it): end its process."""
        process = self._process
        if process is not None and process.is_alive():
            process.kill()  # SIGKILL: it also ends a process that is frozen or ignores SIGTERM

    @property
    def active(self) -> bool:
        """Queued or running: it holds (or waits for) a training slot."""
        return self.status in ("queued", "running")

    def release_data(self) -> None:
        """Drop the job's copy of the data once its results were handed over (the result stays)."""
        with self._lock:
            if not self.active:
                self.adata = None

    def share_data(self, adata: ad.AnnData) -> None:
        """Once the results were handed over to ``adata`` (the session's copy of the same cells),
        hold that object instead of a second copy: a reloaded page still gets the data back."""
        with self._lock:
            if not self.active:
                self.adata = adata

    def join(self, timeout: float | None = None) -> None:
        if self._thread.is_alive() or self._thread.ident is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self.status == "running"

    def _on_event(self, event: TrainingEvent) -> None:
        with self._lock:
            self._last = event
            self.phase = event.phase
            if event.message:
                self.message = event.message
            if event.history_row is not None:  # the loop's own history row, as it recorded it
                self._rows.append(event.history_row)
            if event.snapshot is not None:
                snap = event.snapshot
                self._snapshots.append(snap)
                self._snapshots = self._snapshots[-self.max_snapshots :]

    def _run(self) -> None:
        """Start the training process, relay its messages, keep its outcome."""
        ended = False
        try:
            ctx = worker.context()
            spec = worker.JobSpec(
                adata=self.adata,
                method=self.method,
                config=self.config,
                label_key=self.label_key,
                key=self.key,
                umap=self.umap,
                pretrained=self.pretrained,
                constraints=self.constraints,
            )
            payload = pickle.dumps(spec, protocol=pickle.HIGHEST_PROTOCOL)
            receiver, sender = ctx.Pipe(duplex=False)
            process = worker.start_process(
                worker.child_main, (payload, sender, self.stop_token.flag), name=f"scdeep-train-{self.job_id[:8]}"
            )
            sender.close()  # the child holds the only writer: EOF when it ends
            self._process = process
            del payload, spec
            while not ended:
                try:
                    message = pickle.loads(receiver.recv_bytes())
                except EOFError:
                    break
                ended = self._on_message(message)
            receiver.close()
            process.join()
            if not ended:
                with self._lock:
                    if self.stop_token.stopped:
                        self.status = self.phase = "stopped"
                        self.message = (
                            f"Stopped. The run did not reach a stopping point within {self.stop_grace_s:g} s, "
                            "so it was ended without a partial result."
                        )
                    else:
                        self.status = "failed"
                        self.error = (
                            f"The training process ended unexpectedly (exit code {process.exitcode}); "
                            "if the machine ran out of memory, use fewer cells or genes."
                        )
        except Exception as exc:  # the page must hear of it, not a dead thread
            with self._lock:
                self.status, self.error = "failed", f"Could not run the training process: {type(exc).__name__}: {exc}"
        finally:
            self._process = None
            with self._lock:
                self.ended = self.ended or time.perf_counter()
            if self.on_end is not None:
                self.on_end(self)

    def _on_message(self, message: tuple) -> bool:
        """Handle one message of the training process; True for its last one."""
        kind = message[0]
        if kind == "event":
            self._on_event(message[1])
            return False
        if kind == "phase":
            with self._lock:
                self.phase, self.message = message[1], message[2]
                if self.phase == "umap":
                    self._umap_started = time.perf_counter()
            return False
        if kind == "outcome":
            outcome: worker.JobOutcome = message[1]
            result = outcome.result
            if self.pretrained is not None:
                result.pretrained = self.pretrained
            write_to_adata(self.adata, result)
            if outcome.umap is not None:
                self.adata.obsm[f"X_{self.key}_umap"] = outcome.umap
            with self._lock:
                self.ended = time.perf_counter()  # not after the process exits: the result is here now
                self.result = result
                self.status = "done" if result.stage == "done" else "stopped"
                self.phase = self.status
                self.message = result.summary() + outcome.note
            return True
        with self._lock:  # "failed"
            self.status, self.error = "failed", message[1]
        return True

    def _time_left(self, now: float) -> tuple[float | None, float | None]:
        """Expected and worst-case seconds left: the training's own estimate plus the UMAP."""
        if self.status != "running":
            return (0.0, 0.0) if self.status in ("done", "stopped") else (None, None)
        umap_s = progress.umap_seconds(self.n_cells) if self.umap else 0.0
        if self._umap_started is not None:
            left = progress.phase_remaining(umap_s, now - self._umap_started)
            return left, left
        last = self._last
        if last is None or last.eta is None:
            return None, None
        return last.eta + umap_s, (last.eta_max if last.eta_max is not None else last.eta) + umap_s

    def snapshot(self) -> JobView:
        """Thread-safe copy of everything a page draws."""
        with self._lock:
            last = self._last
            now = time.perf_counter()
            elapsed = (self.ended or now) - self.started
            eta, eta_max = self._time_left(now)
            self._fraction = progress.time_fraction(self._fraction, elapsed, eta, self.status in ("done", "stopped"))
            return JobView(
                job_id=self.job_id,
                status=self.status,
                method=self.method,
                key=self.key,
                phase=self.phase,
                progress=self._fraction,
                eta=eta,
                eta_max=eta_max,
                elapsed=elapsed,
                history=pd.DataFrame(self._rows),
                last_event=last,
                snapshots=list(self._snapshots),
                message=self.message,
                error=self.error,
                result=self.result,
                queue_position=self.queue_position,
                expected_start_s=self.expected_start_s,
            )


class BusyError(RuntimeError):
    """Another training run occupies the machine (or this session already runs one)."""


class JobRegistry:
    """Jobs by id, a limit on concurrent runs (training uses both cores) and a queue for the rest.

    Runs beyond ``max_running`` wait in order; each knows its position and an expected start
    (the running runs' time left plus a typical run time for each run ahead), and can be
    cancelled while it waits.
    """

    def __init__(self, max_running: int = 1, orphan_grace_s: float = 30.0, typical_run_s: float = 60.0) -> None:
        self.max_running = max_running
        self.orphan_grace_s = orphan_grace_s
        self._jobs: dict[str, TrainingJob] = {}
        self._orphaned: dict[str, float] = {}
        self._queue: list[TrainingJob] = []
        self._durations: list[float] = [typical_run_s]
        self._lock = threading.Lock()

    def submit(self, job: TrainingJob) -> TrainingJob:
        """Start ``job`` now, or queue it when every slot is taken.

        Raises
        ------
        BusyError
            When the same owner already has a run queued or running.
        """
        with self._lock:
            if any(j.owner == job.owner and j.active for j in self._jobs.values()):
                raise BusyError("A training run of yours is still queued or going: stop it or wait for it to finish.")
            self._jobs[job.job_id] = job
            job.on_end = self._job_ended
            if sum(j.running for j in self._jobs.values()) < self.max_running:
                job.start()
            else:
                self._queue.append(job.queue())
            self._update_queue_estimates()
        return job

    def _job_ended(self, job: TrainingJob) -> None:
        """A run finished (or a queued one was cancelled): start the next ones in line."""
        with self._lock:
            if job in self._queue:
                self._queue.remove(job)
            elif job.status != "cancelled":
                self._durations = (self._durations + [time.perf_counter() - job.started])[-10:]
            while self._queue and sum(j.running for j in self._jobs.values()) < self.max_running:
                self._queue.pop(0).start()
            self._update_queue_estimates()

    def _update_queue_estimates(self) -> None:
        typical = float(np.median(self._durations))
        free_at = sorted(
            max(typical - (time.perf_counter() - j.started), 1.0) for j in self._jobs.values() if j.running
        )
        free_at += [0.0] * max(self.max_running - len(free_at), 0)
        for position, job in enumerate(self._queue):
            slot = min(range(len(free_at)), key=free_at.__getitem__)
            job.queue_position, job.expected_start_s = position, free_at[slot]
            free_at[slot] += typical
        for job in self._jobs.values():
            if job not in self._queue:
                job.queue_position = job.expected_start_s = None

    def queued(self) -> list[TrainingJob]:
        """Runs waiting for a slot, first in line first."""
        with self._lock:
            self._update_queue_estimates()
            return list(self._queue)

    def get(self, job_id: str | None) -> TrainingJob | None:
        return self._jobs.get(job_id) if job_id else None

    def forget(self, job_id: str) -> None:
        """Drop a job that has ended (its session keeps what it needs)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is not None and not job.active:
                del self._jobs[job_id]
                self._orphaned.pop(job_id, None)

    def forget_ended(self, owner: str) -> None:
        """Drop every ended job of ``owner`` (it starts another run or loads other data, so
        nothing will reattach to them)."""
        with self._lock:
            for jid in [jid for jid, j in self._jobs.items() if j.owner == owner and not j.active]:
                del self._jobs[jid]
                self._orphaned.pop(jid, None)

    def stop_owner(self, owner: str) -> None:
        """Stop every running job of ``owner`` now."""
        for j in list(self._jobs.values()):
            if j.owner == owner and j.active:
                j.stop()

    def release_owner(self, owner: str) -> None:
        """A browser session closed. Its jobs wait ``orphan_grace_s`` seconds for a reloaded
        page to adopt them (a reload closes the old session first); then running ones are
        stopped and all are forgotten, with their copy of the data."""
        with self._lock:
            orphans = [j for j in self._jobs.values() if j.owner == owner]
            for j in orphans:
                self._orphaned[j.job_id] = time.monotonic()
        if orphans:  # a session without jobs leaves no timer behind
            timer = threading.Timer(self.orphan_grace_s, self._reap)
            timer.daemon = True
            timer.start()

    def adopt(self, job_id: str | None, owner: str) -> TrainingJob | None:
        """The job ``job_id`` for session ``owner``: its own, or one whose session closed in the
        last ``orphan_grace_s`` seconds (a reloaded page). A job of another live session is not
        handed out: a shared or guessed ``?job=`` link gets nothing."""
        job = self.get(job_id)
        if job is None:
            return None
        with self._lock:
            if job.owner == owner:
                return job
            if job.job_id in self._orphaned:
                job.owner = owner
                del self._orphaned[job.job_id]
                return job
        return None

    def _reap(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [self._jobs[jid] for jid, t in self._orphaned.items() if now - t >= self.orphan_grace_s - 0.01]
            for job in expired:
                del self._orphaned[job.job_id]
        for job in expired:
            job.stop()
            job.join(120)
            with self._lock:
                if job.job_id not in self._orphaned and not job.active:  # not adopted meanwhile
                    self._jobs.pop(job.job_id, None)
                    job.release_data()

    def running(self) -> list[TrainingJob]:
        return [j for j in self._jobs.values() if j.running]

    def refresh(self, job: TrainingJob) -> None:
        """Recompute the expected start of a queued run (time passes while it waits)."""
        with self._lock:
            if job in self._queue:
                self._update_queue_estimates()
