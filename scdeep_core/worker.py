"""Run one training job in a child process and stream its events back.

Why a process and not a thread: the training loop holds the interpreter lock between torch
calls, so in the web server's process every page of every session waited for it (a fresh page
took over 60 s while five sessions watched one run; BENCHMARKS.md, load test). In a child
process the server keeps its interpreter to itself, the child runs at a lower CPU priority, and
a crash or an out-of-memory kill of the child ends only that run.

Children are forked from a *forkserver* that has already imported torch and the engine, so a run
starts in well under a second instead of paying the ~5 s import each time (``spawn`` is used
where the platform has no forkserver). Messages are pickled with the standard pickler here, in
both directions; only objects this package made travel (never an upload's bytes).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import sys
import threading
import traceback
import types
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import numpy as np

from .config import BaseConfig, ConfigError
from .errors import InputError
from .events import StopToken, TrainingEvent

#: How much lower the training process's CPU priority is than the server's (``nice`` steps):
#: both cores still train when nobody browses, and a page request gets a core at once.
WORKER_NICENESS = int(os.environ.get("SCDEEP_WORKER_NICE", "10"))

# What the forkserver imports once, before it forks any training process: the engine (~5 s) and
# umap-learn's compiled code (~25 s; see scdeep_core.umap_compile). Runs asked for meanwhile wait.
_PRELOAD = ["scdeep_core.api", "scdeep_core.embedding", "scdeep_core.umap_compile"]


@dataclass
class JobSpec:
    """What the child needs to run a job (pickled once, sent with the process)."""

    adata: Any  # anndata.AnnData
    method: str
    config: BaseConfig
    label_key: str | None
    key: str
    umap: bool
    pretrained: Any = None  # api.Pretrained: only the clustering stage runs
    constraints: Any = None  # selections for that clustering stage (scDCC)


@dataclass
class JobOutcome:
    """What the child hands back at the end."""

    result: Any  # results.ClusteringResult (``pretrained`` stripped for a re-cluster job)
    umap: np.ndarray | None
    note: str


def context() -> mp.context.BaseContext:
    """The multiprocessing context for training processes (one per server process)."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(_PRELOAD)
        return ctx
    return mp.get_context("spawn")


_MAIN_LOCK = threading.Lock()


@contextmanager
def _main_module_hidden():
    """Start a child without it re-importing the parent's ``__main__``.

    multiprocessing tells every spawned or forkserver child to import the parent's main
    script; for the app that is the ``streamlit`` launcher (a second of imports per run), and a
    user's script without an ``if __name__ == "__main__"`` guard would start itself again. The
    child needs only this module, so it is shown a bare main module while it starts.
    """
    with _MAIN_LOCK:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = types.ModuleType("__main__")
        try:
            yield
        finally:
            sys.modules["__main__"] = main


def warm_up() -> None:
    """Start the forkserver (its imports and umap-learn's compilation, ~30 s) now, in the background,
    rather than at the first run."""
    if context().get_start_method() == "forkserver":
        from multiprocessing import forkserver

        threading.Thread(target=forkserver.ensure_running, name="scdeep-forkserver", daemon=True).start()


def start_process(target: Any, args: tuple, name: str) -> mp.process.BaseProcess:
    """Start ``target(*args)`` in a training process (daemon: it ends with the server)."""
    process = context().Process(target=target, args=args, daemon=True, name=name)
    with _main_module_hidden():
        process.start()
    return process


class ProcessStopToken(StopToken):
    """A stop token the parent sets and the training process sees: one byte of shared memory
    (no lock is needed for a flag that only ever goes from 0 to 1)."""

    def __init__(self, flag: Any = None) -> None:
        super().__init__()
        self._flag = flag if flag is not None else context().RawValue("b", 0)

    def stop(self) -> None:
        self._flag.value = 1

    @property
    def stopped(self) -> bool:
        return bool(self._flag.value)

    @property
    def flag(self) -> Any:
        """The shared flag, to hand to the training process."""
        return self._flag


def run_job(spec: JobSpec, callbacks: list, stop_token: StopToken, on_phase: Any = None) -> JobOutcome:
    """Train (or re-cluster) as ``spec`` says, then compute the UMAP of the embedding.

    This is the whole job; :func:`child_main` calls it in the training process.
    """
    from .api import fit, recluster

    if spec.pretrained is not None:
        result = recluster(
            spec.adata,
            spec.pretrained,
            spec.config,
            constraints=spec.constraints,
            callbacks=callbacks,
            stop_token=stop_token,
            key_added=spec.key,
        )
    else:
        result = fit(
            spec.adata,
            spec.config if spec.config is not None else spec.method,
            label_key=spec.label_key,
            callbacks=callbacks,
            stop_token=stop_token,
            key_added=spec.key,
        )
    coords, note = None, ""
    if spec.umap and not stop_token.stopped:
        from .embedding import add_umap
        from .layout import LayoutStopped

        if on_phase is not None:
            on_phase("umap", "Computing the UMAP of the embedding...")
        try:
            coords = _stoppable(lambda: add_umap(spec.adata, spec.key, seed=spec.config.seed), stop_token)
        except LayoutStopped:
            note = " UMAP skipped (stopped)."
    return JobOutcome(result=result, umap=coords, note=note)


def _stoppable(work: Any, stop_token: StopToken) -> Any:
    """``work()`` in a thread, answering Stop within 0.2 s even where the work cannot be interrupted
    (umap-learn's compiled layout): the trained result is then sent without the UMAP, not lost
    when the training process is ended. Raises :class:`~scdeep_core.layout.LayoutStopped` on Stop."""
    from .layout import LayoutStopped

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=run, name="scdeep-umap", daemon=True)  # a daemon ends with the process
    thread.start()
    while thread.is_alive():
        thread.join(0.2)
        if stop_token.stopped and thread.is_alive():
            raise LayoutStopped
    if "error" in box:
        raise box["error"]
    return box["value"]


def child_main(payload: bytes, conn: Connection, stop_flag: Any) -> None:
    """Entry point of the training process: run the job in ``payload``, send every event,
    then one final ``("outcome", JobOutcome)`` or ``("failed", message)`` message."""
    try:
        os.nice(WORKER_NICENESS)
    except OSError:  # not permitted on this platform: train at normal priority
        pass

    def send(*message: Any) -> None:
        conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))

    def on_event(event: TrainingEvent) -> None:
        send("event", event)

    try:
        spec: JobSpec = pickle.loads(payload)
        outcome = run_job(spec, [on_event], ProcessStopToken(stop_flag), on_phase=lambda *p: send("phase", *p))
        if spec.pretrained is not None:
            outcome.result.pretrained = None  # the parent holds it already; don't ship it back
        send("outcome", outcome)
    except (InputError, ConfigError) as exc:  # the user's to fix: the message says how, no traceback
        send("failed", str(exc))
    except Exception as exc:  # a crash must reach the page, not vanish with the process
        send("failed", f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=4)}")
    finally:
        conn.close()
