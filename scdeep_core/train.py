"""The training loop shared by both methods: minibatches, target updates, events, stop checks.

A method (see ``methods/``) supplies the losses; this module runs

    pretrain (reconstruction)  ->  initialise centroids  ->  cluster stage (KL [+ ...])

and reports every epoch to the :class:`Monitor`, which turns progress into
:class:`~scdeep_core.events.TrainingEvent` records for the callbacks.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import scipy.sparse as sp
import torch

from . import metrics
from .device import model_device, to_device, to_numpy
from .distributed import Ranks
from .distributed import current as current_ranks
from .events import Callback, EmbeddingSnapshot, StopToken, TrainingEvent
from .losses import soft_assignment, target_distribution
from .pp import PreparedData
from .progress import RunPlan, TimeLeft


@dataclass
class Batch:
    """One minibatch: the scaled input and, for ZINB, the counts as non-zeros."""

    rows: np.ndarray
    x: torch.Tensor
    size_factors: torch.Tensor | None = None
    nz_flat_index: torch.Tensor | None = None
    nz_counts: torch.Tensor | None = None
    nz_lgamma: torch.Tensor | None = None
    b: torch.Tensor | None = None  # one-hot batch, when the data has batches


def make_batch(data: PreparedData, rows: np.ndarray, with_counts: bool, device: torch.device) -> Batch:
    """Materialise the cells ``rows`` of ``data`` as dense float32 tensors on ``device``."""
    batch = Batch(rows=rows, x=to_device(data.scaled_input(rows), device))
    onehot = data.batch_onehot(rows)
    if onehot is not None:
        batch.b = to_device(onehot, device)
    if with_counts and data.counts is not None:
        sub: sp.csr_matrix = data.counts_rows(rows)
        row_ids = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(sub.indptr))
        batch.nz_flat_index = to_device(row_ids * data.n_genes + sub.indices.astype(np.int64), device)
        batch.nz_counts = to_device(sub.data.astype(np.float32), device)
        batch.nz_lgamma = torch.lgamma(batch.nz_counts + 1.0)
        batch.size_factors = to_device(data.size_factors[rows], device)
    return batch


def iterate_batches(n: int, batch_size: int, rng: np.random.Generator | None) -> list[np.ndarray]:
    """Cell indices split into minibatches, shuffled when ``rng`` is given (one process's batches)."""
    return Ranks().epoch_batches(n, batch_size, rng)


@torch.no_grad()
def embed(model: torch.nn.Module, data: PreparedData, batch_size: int = 4096) -> np.ndarray:
    """Noise-free embedding of every cell (evaluation mode)."""
    was_training, device, ranks = model.training, model_device(model), current_ranks()
    model.eval()
    parts = []
    own = ranks.shard(data.n_cells)  # with several processes each embeds its shard, then all gather
    for i in range(0, len(own), batch_size):
        rows = own[i : i + batch_size]
        onehot = data.batch_onehot(rows)
        b = to_device(onehot, device) if onehot is not None else None
        parts.append(model.encode(to_device(data.scaled_input(rows), device), b))
    model.train(was_training)
    return ranks.gather_cells(to_numpy(torch.cat(parts)), data.n_cells)


def assign(model: torch.nn.Module, data: PreparedData, alpha: float) -> tuple[np.ndarray, torch.Tensor]:
    """Embedding of every cell (NumPy) and its soft assignment to the model's centroids (on the model's device)."""
    z = embed(model, data)
    with torch.no_grad():
        q = soft_assignment(to_device(z, model_device(model)), model.centroids, alpha)
    return z, q


def confidence_summary(q: torch.Tensor) -> dict[str, float]:
    """Mean and 10th / 90th percentiles of every cell's confidence (max q): how sure the clustering is."""
    confidence = to_numpy(q.max(dim=1).values)
    q10, q90 = np.quantile(confidence, [0.1, 0.9])
    return {"mean": float(confidence.mean()), "q10": float(q10), "q90": float(q90)}


class Monitor:
    """Collects progress, emits events to callbacks and answers 'should we stop?'.

    Parameters
    ----------
    callbacks
        Called with each :class:`TrainingEvent`; exceptions in a callback are not caught
        (a broken listener should be visible).
    stop_token
        Checked between minibatches.
    truth
        Known labels of the prepared cells (for ARI/NMI during training), or ``None``.
    eval_mask
        Cells to score (e.g. the cells not used for constraints).
    plan
        What the run will do, for the time left and the progress fraction
        (:class:`~scdeep_core.progress.TimeLeft`); without it events carry no estimate.
    """

    def __init__(
        self,
        callbacks: Sequence[Callback] = (),
        stop_token: StopToken | None = None,
        truth: np.ndarray | None = None,
        eval_mask: np.ndarray | None = None,
        plan: RunPlan | None = None,
    ) -> None:
        self.callbacks = list(callbacks)
        self.stop_token = stop_token
        self.truth = truth
        self.eval_mask = eval_mask
        self.time_left = TimeLeft(plan) if plan is not None else None
        self.start = time.perf_counter()
        self.history: list[dict] = []
        self.last_scores: dict[str, float] = {}
        self.model: int | None = None  # the consensus member being trained, stamped on its events

    def start_model(self, index: int | None) -> None:
        """Model ``index`` of a consensus starts pretraining (``None``: a run of one model)."""
        self.model = index
        if index and self.time_left is not None:
            self.time_left.start_model(index)

    def set_plan(self, plan: RunPlan) -> None:
        """Set what the run will do (once the data is prepared and the epoch budget known)."""
        self.time_left = TimeLeft(plan)

    @property
    def stop_requested(self) -> bool:
        return self.stop_token is not None and self.stop_token.stopped

    def score(self, labels: np.ndarray) -> dict[str, float]:
        """ARI/NMI/ACC of ``labels`` on the evaluation cells (empty without truth)."""
        if self.truth is None:
            return {}
        mask = self.eval_mask if self.eval_mask is not None else np.ones(len(labels), bool)
        if not mask.any():  # no labelled cell left to score: a score on nothing would read as perfect
            return {}
        self.last_scores = metrics.scores(self.truth[mask], labels[mask])
        return self.last_scores

    def emit(self, event: TrainingEvent, epoch_seconds: float | None = None) -> None:
        """Fill in timing fields, record the event in the history and send it out."""
        now = time.perf_counter() - self.start
        event.elapsed, event.epoch_s = now, epoch_seconds
        if event.model is None:
            event.model = self.model
        if self.time_left is not None:
            tl = self.time_left
            tl.phase(event.phase, now)
            if epoch_seconds is not None:
                tl.epoch(event.phase, epoch_seconds, event.delta_label)
            event.eta, event.eta_max, event.progress = tl.seconds_left(now), tl.at_most(now), tl.fraction(now)
        elif event.phase in ("done", "stopped"):
            event.eta, event.eta_max, event.progress = 0.0, 0.0, 1.0
        if event.phase in ("pretrain", "cluster"):
            event.history_row = event.as_row()
            self.history.append(event.history_row)
        for cb in self.callbacks:
            cb(event)


class MethodHooks:
    """What a method supplies to the loop (see ``methods/desc.py`` and ``methods/scdcc.py``)."""

    name = "base"
    uses_counts = False

    def build_model(self, n_genes: int) -> torch.nn.Module:
        """The method's autoencoder for ``n_genes`` inputs (seeded by the caller)."""
        raise NotImplementedError

    def pretrain_losses(self, model: torch.nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Loss terms of one pretraining minibatch; ``"total"`` is minimised."""
        raise NotImplementedError

    def cluster_losses(self, model: torch.nn.Module, batch: Batch, p: torch.Tensor) -> dict[str, torch.Tensor]:
        """Loss terms of one clustering minibatch given the fixed target ``p`` of its cells."""
        raise NotImplementedError

    def cluster_optimizer(self, model: torch.nn.Module) -> torch.optim.Optimizer:
        raise NotImplementedError

    def reseed(self, seed: int) -> None:
        """Restart the method's own random streams (called before each clustering stage)."""

    def extra_cluster_steps(
        self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, rng: np.random.Generator
    ) -> dict[str, float]:
        """Optional updates after each clustering epoch (scDCC's pairwise constraints)."""
        return {}


def _run_epoch(
    data,
    hooks: MethodHooks,
    cfg,
    monitor: Monitor,
    rng: np.random.Generator,
    optimizer: torch.optim.Optimizer,
    batch_losses,
    device: torch.device,
) -> dict[str, float] | None:
    """One pass over shuffled minibatches; mean of each loss term, or ``None`` if stopped."""
    sums: dict[str, float] = {}
    n_seen = 0
    ranks = current_ranks()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for rows in ranks.epoch_batches(data.n_cells, cfg.batch_size, rng, getattr(data, "epoch_order", None)):
        if monitor.stop_requested:
            return None
        losses = batch_losses(make_batch(data, rows, hooks.uses_counts, device))
        optimizer.zero_grad(set_to_none=True)
        losses["total"].backward()
        ranks.average_gradients(params)
        optimizer.step()
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + float(v.detach()) * len(rows)
        n_seen += len(rows)
    return ranks.mean_losses({k: v / n_seen for k, v in sums.items()}, n_seen)


def pretrain(model, data, hooks: MethodHooks, cfg, monitor: Monitor, rng: np.random.Generator, n_epochs: int) -> None:
    """Train the autoencoder on reconstruction, with early stopping on a loss plateau."""
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    best, waited = np.inf, 0
    model.train()
    for epoch in range(n_epochs):
        t0 = time.perf_counter()
        losses = partial(hooks.pretrain_losses, model)
        means = _run_epoch(data, hooks, cfg, monitor, rng, optimizer, losses, model_device(model))
        if means is None:
            return
        monitor.emit(TrainingEvent("pretrain", epoch + 1, n_epochs, losses=means), time.perf_counter() - t0)
        if not np.isfinite(best) or means["total"] < best - abs(best) * cfg.pretrain_min_delta:
            best, waited = means["total"], 0
        else:
            waited += 1
        if cfg.pretrain_patience and waited >= cfg.pretrain_patience:
            return


class SnapshotMaker:
    """Projects a fixed subsample of cells onto the two leading PCs of the initial embedding."""

    def __init__(self, z0: np.ndarray, n_cells: int, seed: int) -> None:
        rng = np.random.default_rng(seed)
        self.rows = np.sort(rng.choice(z0.shape[0], size=min(n_cells, z0.shape[0]), replace=False))
        self.center = z0.mean(axis=0)
        _, _, vt = np.linalg.svd(z0[self.rows] - self.center, full_matrices=False)
        self.basis = vt[:2].T if vt.shape[0] >= 2 else np.eye(z0.shape[1], 2)

    def __call__(self, z: np.ndarray, q: np.ndarray, centroids: np.ndarray, update: int) -> EmbeddingSnapshot:
        sub_q = q[self.rows]
        return EmbeddingSnapshot(
            coords=((z[self.rows] - self.center) @ self.basis).astype(np.float32),
            labels=sub_q.argmax(axis=1),
            confidence=sub_q.max(axis=1).astype(np.float32),
            centroids=((centroids - self.center) @ self.basis).astype(np.float32),
            update=update,
        )


@dataclass
class ClusterStageOutcome:
    labels: np.ndarray
    q: np.ndarray
    z: np.ndarray
    epochs: int
    converged: bool
    stopped: bool
    delta_label: float | None


def stage_target(q: torch.Tensor, ranks) -> torch.Tensor:
    """The target ``p`` of every cell one process trains on.

    One process: :func:`~scdeep_core.losses.target_distribution` of all cells. Several: each
    rank's minibatches come from its own shard, so only the shard's rows are filled, from the
    cluster frequencies summed across ranks (:meth:`~scdeep_core.distributed.Ranks.target_distribution`).
    """
    if not ranks.active:
        return target_distribution(q)
    own = torch.from_numpy(ranks.shard(q.shape[0])).to(q.device)
    p = torch.zeros_like(q)
    p[own] = ranks.target_distribution(q[own])
    return p


def cluster_stage(
    model,
    data,
    hooks: MethodHooks,
    cfg,
    monitor: Monitor,
    rng: np.random.Generator,
    snapshots: SnapshotMaker | None,
) -> ClusterStageOutcome:
    """Refine embedding and centroids on the clustering loss until ``delta_label < tol``
    (live embedding snapshots from ``snapshots``, none when it is ``None``)."""
    optimizer = hooks.cluster_optimizer(model)
    model.train()
    device = model_device(model)
    z, q = assign(model, data, cfg.alpha)
    labels = to_numpy(q.argmax(1))
    ranks = current_ranks()
    p = stage_target(q, ranks)
    delta: float | None = None
    updates = 0
    for epoch in range(cfg.max_cluster_epochs):
        t0 = time.perf_counter()
        if epoch % cfg.update_interval == 0 and epoch > 0:
            z, q = assign(model, data, cfg.alpha)
            new_labels = to_numpy(q.argmax(1))
            delta = float(np.mean(new_labels != labels))
            labels, p = new_labels, stage_target(q, ranks)
            updates += 1
            # The initial clusters are a fixed point of the assignment (KMeans / Leiden means), so
            # delta_label starts near 0: the first checks would end the stage before KL has acted.
            if delta < cfg.tol and epoch >= cfg.min_cluster_epochs:
                return ClusterStageOutcome(labels, to_numpy(q), z, epoch, True, False, delta)
        means = _run_epoch(
            data,
            hooks,
            cfg,
            monitor,
            rng,
            optimizer,
            lambda batch, p=p: hooks.cluster_losses(model, batch, p[to_device(batch.rows, device)]),
            device,
        )
        if means is None:
            return ClusterStageOutcome(labels, to_numpy(q), z, epoch, False, True, delta)
        means.update(hooks.extra_cluster_steps(model, optimizer, rng))
        ranks.sync_parameters(model)  # the pairwise steps ran on each rank alone
        scores = monitor.score(labels)
        fresh = epoch % cfg.update_interval == 0  # q was recomputed for this epoch
        snap = None
        if fresh and snapshots is not None:
            snap = snapshots(z, to_numpy(q), to_numpy(model.centroids), updates)
        monitor.emit(
            TrainingEvent(
                "cluster",
                epoch + 1,
                cfg.max_cluster_epochs,
                losses=means,
                delta_label=delta,
                ari=scores.get("ari"),
                nmi=scores.get("nmi"),
                n_clusters=int(q.shape[1]),
                snapshot=snap,
                confidence=confidence_summary(q) if fresh else None,
            ),
            time.perf_counter() - t0,
        )
    # Final assignment after the last epoch.
    z, q = assign(model, data, cfg.alpha)
    new_labels = to_numpy(q.argmax(1))
    delta = float(np.mean(new_labels != labels))
    return ClusterStageOutcome(new_labels, to_numpy(q), z, cfg.max_cluster_epochs, delta < cfg.tol, False, delta)
