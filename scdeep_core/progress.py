"""Time left and progress of a run, from measured epoch times and what remains of each phase.

A run has five phases: preparing the data, pretraining, initialising the clusters, the
clustering stage and (in the dashboard) the UMAP. The estimate is the sum of what is left of
each, every part from a measurement where one exists:

- pretraining: epochs left in its budget x the median of the last ten epoch times (early
  stopping can only make it shorter, so this part never rises by more than the timing noise);
- initialisation and UMAP: a per-cell cost (calibrated on this project's datasets, see
  ``BENCHMARKS.md``) until the phase starts, then that cost minus the time spent in it;
- the clustering stage: it ends when fewer than ``tol`` of the cells change cluster between
  two updates, after at least ``min_cluster_epochs``. It is expected to take a typical
  stage's length, then, while it goes on, a few more epochs: the estimate holds still rather
  than leaping up, and the bound beside it counts down to the cap. Never more than the cap.

The progress fraction is elapsed / (elapsed + time left), so the bar follows time, not epoch
counts, and it never moves backwards. :meth:`TimeLeft.at_most` is the bound with every phase
at its cap: shown beside the estimate, it tells the user the worst case honestly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .config import method_name

# Per-cell costs in seconds, measured on 2 cores over the five dev datasets (909-8,617 cells);
# see BENCHMARKS.md, section 8. They are only used until a phase has started.
KMEANS_INIT_S_PER_CELL = 1.5e-4
AUTO_K_S_PER_CELL = 6e-4
# KMeans, Leiden and spectral clustering with a given k, each re-run on 4 subsamples (starts.py; BENCHMARKS 20)
START_CHOICE_S_PER_CELL = 6e-4
UMAP_S_PER_CELL = 8.5e-4
UMAP_FIXED_S = 0.5
# A clustering epoch costs about this many pretraining epochs (the assignment of all cells and,
# for scDCC, the constraint steps come on top); used until the first clustering epoch is timed.
CLUSTER_EPOCH_RATIO = {"desc": 1.1, "scdcc": 1.3}
# Clustering epochs a stage typically needs on the dev data (median 10 over nine recorded default
# fits; two DESC stages ran to the cap of 100).
TYPICAL_CLUSTER_EPOCHS = 12
# Epochs still expected once a stage has run longer than a typical one.
HOVER_EPOCHS = 3

PHASES = ("prepare", "pretrain", "init", "cluster")
PHASE_NAMES = {
    "starting": "starting the training process",
    "prepare": "preparing the data",
    "pretrain": "pretraining the autoencoder",
    "init": "initialising the clusters",
    "cluster": "clustering stage",
    "umap": "computing the UMAP",
}


@dataclass
class RunPlan:
    """What a run will do, known before it starts.

    Parameters
    ----------
    method
        ``"desc"`` or ``"scdcc"``.
    n_cells
        Cells that are trained on.
    pretrain_epochs
        The pretraining budget (early stopping may end it sooner); 0 when re-clustering.
    cluster_cap
        ``max_cluster_epochs``, the cap of each clustering stage.
    min_cluster_epochs, tol
        The clustering stage's stopping rule.
    auto_k
        Whether k is chosen automatically during initialisation.
    start_choice
        Whether KMeans and the graph clusterings are compared to start the clustering stage (a given k with
        ``init_method="auto"``).
    stages
        Clustering stages run one after the other from the same pretraining (one per
        resolution in :func:`~scdeep_core.api.fit_resolutions`, times the models of a consensus).
    models
        Models pretrained one after the other (``n_models``), each with ``pretrain_epochs``.

    The UMAP that the dashboard computes after training is not part of the plan: the job that
    runs it adds :func:`umap_seconds` to the estimate (the core does not know about it).
    """

    method: str
    n_cells: int
    pretrain_epochs: int
    cluster_cap: int
    min_cluster_epochs: int = 5
    tol: float = 1e-3
    auto_k: bool = False
    start_choice: bool = False
    stages: int = 1
    models: int = 1


def umap_seconds(n_cells: int) -> float:
    """Expected seconds for the UMAP of ``n_cells`` cells (neighbours + layout)."""
    return UMAP_FIXED_S + UMAP_S_PER_CELL * n_cells


def init_seconds(n_cells: int, auto_k: bool, start_choice: bool = False) -> float:
    """Expected seconds to initialise the clusters: KMeans, the automatic choice of k, or the
    choice between KMeans and the graph clusterings with a given k."""
    if auto_k:
        return AUTO_K_S_PER_CELL * n_cells
    return (START_CHOICE_S_PER_CELL if start_choice else KMEANS_INIT_S_PER_CELL) * n_cells


def phase_remaining(expected_s: float, spent_s: float) -> float:
    """What is left of a phase expected to take ``expected_s`` after ``spent_s`` in it.

    When it overruns, a tenth of the expectation is left (it is still running; 0 would read
    as 'done')."""
    return max(expected_s - spent_s, 0.1 * expected_s)


def _typical_stage(plan: RunPlan) -> int:
    """Epochs a clustering stage is expected to run before anything is known about it."""
    return max(TYPICAL_CLUSTER_EPOCHS, plan.min_cluster_epochs)


def time_fraction(shown: float, elapsed: float, left: float | None, ended: bool) -> float:
    """The share of a run done by time, elapsed / (elapsed + left), never below ``shown``
    (what the bar showed last) and 1 only once the run has ``ended``."""
    if ended:
        return 1.0
    if left is None or elapsed <= 0:
        return shown
    return max(shown, min(elapsed / (elapsed + left), 0.99))


def _recent(times: list[float]) -> float:
    """Typical time of the last ten epochs (the median: one slow epoch, e.g. while another
    user's run starts, should not swing the estimate)."""
    return float(np.median(times[-10:]))


class TimeLeft:
    """Running estimate of the time left in a run (see the module docstring).

    Feed it with :meth:`phase` at each phase change and :meth:`epoch` after each epoch, then
    read :meth:`seconds_left`, :meth:`at_most` and :meth:`fraction` at any time ``now``
    (seconds since the run started).
    """

    def __init__(self, plan: RunPlan) -> None:
        self.plan = plan
        self.current = "prepare"
        self.phase_started = 0.0
        self.pretrain_times: list[float] = []
        self.cluster_times: list[float] = []
        self.last_delta: float | None = None  # this stage's latest delta_label
        self.pretrain_left = plan.pretrain_epochs * plan.models
        self.cluster_done = 0
        self.stages_done = 0
        self._shown_fraction = 0.0

    def phase(self, name: str, now: float) -> None:
        """The run entered phase ``name`` at time ``now``."""
        if name == self.current:
            return
        if self.current == "pretrain":
            self.pretrain_left = 0  # ended (budget used up, early stopping, or re-clustering)
        if self.current == "cluster" and name == "init":  # the next of several stages
            self.stages_done += 1
            self.cluster_done, self.last_delta = 0, None
        self.current, self.phase_started = name, now

    def start_model(self, index: int) -> None:
        """Model ``index`` (0-based) of a consensus starts pretraining: the earlier ones are over,
        however early they stopped."""
        self.pretrain_left = self.plan.pretrain_epochs * max(self.plan.models - index, 0)

    def epoch(self, phase: str, seconds: float, delta_label: float | None = None) -> None:
        """One epoch of ``phase`` took ``seconds``; ``delta_label`` as the stage reports it."""
        if phase == "pretrain":
            self.pretrain_times.append(seconds)
            self.pretrain_left = max(self.pretrain_left - 1, 0)
        elif phase == "cluster":
            self.cluster_times.append(seconds)
            self.cluster_done += 1
            if delta_label is not None and math.isfinite(delta_label):
                self.last_delta = delta_label

    # -- the parts ------------------------------------------------------------------------------
    def _pretrain_epoch_s(self) -> float | None:
        return _recent(self.pretrain_times) if self.pretrain_times else None

    def _cluster_epoch_s(self) -> float | None:
        if self.cluster_times:
            return _recent(self.cluster_times)
        pre = self._pretrain_epoch_s()
        return None if pre is None else pre * CLUSTER_EPOCH_RATIO.get(self.plan.method, 1.3)

    def _cluster_epochs_left(self) -> int:
        """Predicted clustering epochs still to run in this stage (within the cap).

        A typical stage's length at first; then, while ``delta_label`` is still above ``tol``,
        a few more epochs. Extrapolating ``delta_label`` was tried and dropped: it is too noisy
        from one update to the next (the estimate leapt by 30 s on a scDCC run that ended 13 s
        later, and flip-flopped on paul15). So the estimate holds still while the stage goes
        on, and the bound (:meth:`at_most`) counts down to the cap beside it.
        """
        plan, done = self.plan, self.cluster_done
        cap_left = max(plan.cluster_cap - done, 0)
        expected = max(_typical_stage(plan), done + HOVER_EPOCHS)
        if self.last_delta is not None and self.last_delta < plan.tol:
            expected = max(plan.min_cluster_epochs, done + 1)  # below tol: it stops at the next allowed check
        return int(min(max(expected - done, 1), cap_left))  # a stage that runs has at least one epoch left

    def _phase_cost(self, name: str, worst: bool) -> float | None:
        plan = self.plan
        if name == "prepare":
            return 0.0  # already over by the time any estimate exists
        if name == "pretrain":
            per = self._pretrain_epoch_s()
            return 0.0 if self.pretrain_left == 0 else (None if per is None else per * self.pretrain_left)
        if name == "init":
            return init_seconds(plan.n_cells, plan.auto_k, plan.start_choice)
        if name == "cluster":
            per = self._cluster_epoch_s()
            if per is None:
                return None
            later = max(plan.stages - self.stages_done - 1, 0)  # stages after this one
            if worst:
                epochs = max(plan.cluster_cap - self.cluster_done, 0) + later * plan.cluster_cap
            else:
                epochs = self._cluster_epochs_left() + later * min(_typical_stage(plan), plan.cluster_cap)
            return per * epochs
        return 0.0  # "umap" and anything after the core's run: added by whoever runs it

    def _left(self, now: float, worst: bool) -> float | None:
        if self.current in ("done", "stopped"):
            return 0.0
        order = list(PHASES)
        start = order.index(self.current) if self.current in order else 0
        total = 0.0
        for i, name in enumerate(order[start:]):
            cost = self._phase_cost(name, worst)
            if cost is None:
                return None
            if i == 0 and name == "init":  # a phase without epochs: its cost minus the time spent in it
                cost = phase_remaining(cost, now - self.phase_started)
            total += cost
        return total

    # -- what a view shows ----------------------------------------------------------------------
    def seconds_left(self, now: float) -> float | None:
        """Expected seconds left, or ``None`` before the first epoch has been timed."""
        return self._left(now, worst=False)

    def at_most(self, now: float) -> float | None:
        """Seconds left if every phase runs to its cap (the clustering stage to max epochs)."""
        return self._left(now, worst=True)

    def fraction(self, now: float) -> float:
        """Share of the run done, by time; never decreases, 1 only when the run has ended."""
        ended = self.current in ("done", "stopped")
        self._shown_fraction = time_fraction(self._shown_fraction, now, self.seconds_left(now), ended)
        return self._shown_fraction


def describe(
    method: str, phase: str, elapsed: float, eta: float | None, eta_max: float | None, fit_s: float | None = None
) -> str:
    """One plain line for a progress bar: method, phase, elapsed and the time left.

    Once the run has ended, ``elapsed`` is its time from Start to end, and ``fit_s`` (the result's
    ``timings["total_s"]``, the time its summary gives) is said beside it when they differ, so that
    the two numbers on the page do not contradict each other.
    """
    if phase in ("done", "stopped", "failed", "cancelled"):
        text = f"{method_name(method)} - {phase} - {elapsed:.0f} s from Start to end"
        if fit_s is not None and elapsed - fit_s >= 2:
            text += f" (fitting {fit_s:.1f} s; the rest: starting the training process, the UMAP)"
        return text
    parts = [method_name(method), PHASE_NAMES.get(phase, phase), f"{elapsed:.0f} s elapsed"]
    if eta is None:
        parts.append("time left known after the first epoch")
    else:
        left = f"about {eta:.0f} s left"
        if eta_max is not None and eta_max > 1.2 * eta + 2:  # the clustering stage may run longer than predicted
            left += f" (at most {eta_max:.0f} s if clustering runs to its epoch cap)"
        parts.append(left)
    return " - ".join(parts)


def steps(phase: str, umap: bool) -> str:
    """The phases of a run in order, the done ones ticked and the current one marked."""
    order = list(PHASES) + (["umap"] if umap else [])
    if phase not in order and phase != "starting":
        return ""
    here = order.index(phase) if phase in order else 0
    marks = [("✓ " if i < here else "▶ " if i == here else "") + PHASE_NAMES[name] for i, name in enumerate(order)]
    return "  ·  ".join(marks)
