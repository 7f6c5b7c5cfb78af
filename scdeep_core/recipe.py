"""The training recipe on prepared arrays, without AnnData: pretrain, initialise, cluster.

:mod:`scdeep_core.api` reads an AnnData's keys, prepares the data, calls this recipe and writes
the result back; the CLI, the dashboard's training processes and ``bench`` all reach it through
the API, so what they time or show is what ``fit`` does.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from copy import deepcopy
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin

from .config import BaseConfig
from .constraints import PairConstraints
from .device import model_device, resolve_device, to_device, to_numpy
from .distributed import current as current_ranks
from .events import TrainingEvent
from .graph import leiden_on_embedding
from .kselect import KSelection, choose_k
from .log import note
from .methods import hooks_for
from .metrics import ari
from .pp import PreparedData
from .progress import RunPlan
from .starts import MAX_CELLS_COMPARED, StartChoice, choose_start
from .train import MethodHooks, Monitor, SnapshotMaker, cluster_stage, embed
from .train import pretrain as train_autoencoder

# torch's global generator seeds the weight initialisation; runs in other threads must not interleave.
_SEED_LOCK = threading.Lock()


@dataclass
class Pretrained:
    """A pretrained autoencoder with everything its clustering stage needs.

    Returned by :func:`scdeep_core.pretrain`; :func:`scdeep_core.recluster` runs the clustering
    stage from it with any k without pretraining again (the network weights here are never modified).
    """

    method: str
    cfg: BaseConfig
    data: PreparedData
    hooks: MethodHooks
    model: torch.nn.Module
    z: np.ndarray
    truth: np.ndarray | None
    eval_mask: np.ndarray | None
    notes: list[str]
    pretrain_s: float
    history: list[dict]
    stopped: bool = False
    k_selection: KSelection | None = None
    members: list[Pretrained] = field(default_factory=list)  # the other models of a consensus (n_models > 1)
    # torch's CPU random state when pretraining ended: every clustering stage from this model starts
    # there (DESC's dropout draws from it), so a re-cluster gives fit's labels whatever ran before it.
    rng_state: torch.Tensor | None = None

    @property
    def n_cells(self) -> int:
        return self.data.n_cells

    @property
    def models(self) -> list[Pretrained]:
        """Every model of the run: this one, then the other members of its consensus."""
        return [self, *self.members]

    def start_space(self) -> np.ndarray:
        """Where the initial clusters are found: the embedding, or with several models their
        embeddings side by side, each scaled to unit total variance so that each counts alike."""
        if not self.members:
            return self.z
        return np.hstack([unit_variance(m.z) for m in self.models])

    def select_k(self) -> KSelection:
        """The automatic choice of k on this embedding (computed once, then kept)."""
        if self.k_selection is None:
            self.k_selection = choose_k(self.z, n_neighbors=self.cfg.n_neighbors, seed=self.cfg.seed)
        return self.k_selection


@dataclass
class Outcome:
    """What one clustering stage produced (arrays over the prepared cells)."""

    labels: np.ndarray
    q: np.ndarray
    z: np.ndarray
    centroids: np.ndarray
    stage: str  # "pretrain" (stopped before clustering), "cluster" (stopped during it) or "done"
    converged: bool
    epochs: int
    delta_label: float | None
    selection: KSelection | None
    init_scores: dict[str, float]
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    device: str = "cpu"
    consensus: dict | None = None  # a consensus of several models: see _consensus_info
    start: dict | None = None  # how the initial clusters with a given k were chosen: StartChoice.to_dict


def unit_variance(z: np.ndarray) -> np.ndarray:
    """``z`` centred and scaled to unit total variance (the sum of its columns' variances)."""
    centred = z - z.mean(axis=0)
    total = float(np.sqrt((centred**2).sum(axis=1).mean()))
    return centred / total if total > 0 else centred


def run_plan(cfg: BaseConfig, n_cells: int, pretrain_epochs: int, stages: int = 1) -> RunPlan:
    """What a run of ``cfg`` will do, for its time left (see :mod:`scdeep_core.progress`); each
    model of a consensus pretrains ``pretrain_epochs`` and runs every clustering stage."""
    return RunPlan(
        method=cfg.method,
        n_cells=n_cells,
        pretrain_epochs=pretrain_epochs,
        cluster_cap=cfg.max_cluster_epochs,
        min_cluster_epochs=cfg.min_cluster_epochs,
        tol=cfg.tol,
        auto_k=cfg.n_clusters == "auto",
        start_choice=isinstance(cfg.n_clusters, int) and cfg.init_method == "auto" and n_cells <= MAX_CELLS_COMPARED,
        stages=stages * cfg.n_models,
        models=cfg.n_models,
    )


def epoch_seconds(history: list[dict], phase: str = "pretrain") -> list[float]:
    """Durations of a phase's epochs in a history (differences of their ``elapsed``)."""
    elapsed = [row["elapsed"] for row in history if row.get("phase") == phase]
    return [b - a for a, b in pairwise(elapsed) if b > a]


def pretrain(
    data: PreparedData,
    cfg: BaseConfig,
    monitor: Monitor,
    *,
    truth: np.ndarray | None = None,
    eval_mask: np.ndarray | None = None,
    pairs: PairConstraints | None = None,
    notes: list[str] | None = None,
    stages: int = 1,
    started: float | None = None,
) -> Pretrained:
    """Build the method's autoencoder (seeded) and train it on reconstruction; with
    ``cfg.n_models > 1``, one model per seed of ``cfg.model_seeds()``, one after the other.

    Parameters
    ----------
    data
        From :func:`scdeep_core.pp.prepare`.
    cfg
        A validated config; its method picks the hooks (:func:`scdeep_core.methods.hooks_for`).
    monitor
        Receives the events and keeps the history.
    truth, eval_mask
        Known labels of the prepared cells and which of them to score (both optional).
    pairs
        scDCC's constraints on the prepared cells.
    notes
        What preparing the data noted; carried into the result.
    stages
        How many clustering stages will follow (for the time left).
    started
        ``time.perf_counter()`` when the run began (defaults to now); ``pretrain_s`` counts from it.

    Returns
    -------
    Pretrained
        The first model; the others of a consensus are its ``members``.
    """
    started = time.perf_counter() if started is None else started
    device = resolve_device(cfg.device)
    n_pretrain = cfg.resolved_pretrain_epochs(data.n_cells)
    notes = list(notes or [])
    ranks = current_ranks()
    if ranks.active:
        note(
            notes,
            f"Trained data-parallel on {ranks.world} processes (torch.distributed, {ranks.backend}): each trains "
            "on its shard of the cells, so the labels differ slightly from a one-process run with the same seed.",
        )
    if cfg.n_models > 1:
        note(
            notes,
            f"Consensus of {cfg.n_models} models (pretrained with seeds {cfg.model_seeds()}): they start from one "
            "clustering of their embeddings side by side and the labels are the argmax of their mean soft assignment.",
        )
    monitor.truth, monitor.eval_mask = truth, eval_mask
    monitor.set_plan(run_plan(cfg, data.n_cells, n_pretrain, stages))
    models: list[Pretrained] = []
    for index, seed in enumerate(cfg.model_seeds()):
        if models and monitor.stop_requested:
            break  # stopped: the models trained so far are the consensus
        monitor.start_model(index if cfg.n_models > 1 else None)
        member_cfg = cfg if index == 0 else dataclasses.replace(cfg, seed=seed)
        models.append(_pretrain_one(data, member_cfg, monitor, device, n_pretrain, pairs))
    monitor.start_model(None)
    first = models[0]
    first.truth, first.eval_mask, first.notes = truth, eval_mask, notes
    first.members = models[1:]
    first.history = list(monitor.history)
    first.pretrain_s = time.perf_counter() - started
    first.stopped = monitor.stop_requested
    first.rng_state = torch.get_rng_state()
    return first


def _pretrain_one(
    data: PreparedData,
    cfg: BaseConfig,
    monitor: Monitor,
    device: torch.device,
    n_pretrain: int,
    pairs: PairConstraints | None,
) -> Pretrained:
    """One autoencoder seeded by ``cfg.seed``, trained on reconstruction."""
    t0 = time.perf_counter()
    with _SEED_LOCK:
        torch.manual_seed(cfg.seed)
        hooks = hooks_for(cfg, data, pairs, device)
        model = hooks.build_model(data.n_genes).to(device)  # initialised on the CPU: the same weights on any device
        ranks = current_ranks()
        ranks.sync_parameters(model)
        if ranks.rank > 0:  # other dropout noise on each rank's cells; rank 0 keeps the single-process stream
            torch.manual_seed(cfg.seed * 1000 + ranks.rank)
    train_autoencoder(model, data, hooks, cfg, monitor, np.random.default_rng(cfg.seed), n_pretrain)
    return Pretrained(
        cfg.method,
        cfg,
        data,
        hooks,
        model,
        embed(model, data),
        None,
        None,
        [],
        time.perf_counter() - t0,
        [],
        stopped=monitor.stop_requested,
    )


def seeded_kmeans(z: np.ndarray, k: int, groups: list[np.ndarray], seed: int, n_iter: int = 50) -> np.ndarray:
    """k-means anchored on the user's must-link groups: each group's mean is a centre that stays
    put (a group none of whose cells is nearest its own mean, as for one type marked twice, keeps
    its cells, so that no cluster is empty); the other ``k - len(groups)`` centres move as in
    Lloyd's k-means (started from the free KMeans centres farthest from the anchors).
    ``len(groups) <= k``, groups disjoint.

    Anchors stay put because a centre that moves drifts away from the type it was seeded with:
    on cbmc_citeseq_8617 (25 marked cells per type) KMeans started from the group means (seeded
    k-means, Basu et al. 2002) scored ARI 0.55, assigning each cell to the nearest mean 0.73.
    scikit-learn's KMeans cannot hold centres fixed, hence these few lines.
    """
    anchors = np.stack([z[g].mean(axis=0) for g in groups])
    free = np.zeros((0, z.shape[1]), dtype=z.dtype)
    if len(groups) < k:
        candidates = list(KMeans(n_clusters=k, n_init=20, random_state=seed).fit(z).cluster_centers_)
        chosen = list(anchors)
        while len(chosen) < k:
            far = int(np.argmax([min(np.linalg.norm(c - s) for s in chosen) for c in candidates]))
            chosen.append(candidates.pop(far))
        free = np.stack(chosen[len(groups) :])
    labels = None
    for _ in range(n_iter if len(free) else 1):
        centres = np.concatenate([anchors, free])
        new = pairwise_distances_argmin(z, centres)
        if labels is not None and np.array_equal(new, labels):
            break
        labels = new
        for j in range(len(free)):
            members = labels == len(anchors) + j
            if members.any():
                free[j] = z[members].mean(axis=0)
    for i, g in enumerate(groups):
        if not (labels == i).any():  # every cell of the group nearer another anchor (one type marked twice)
            labels[g] = i  # keep its cluster: an empty one would have no centroid
    return labels


def initial_clusters(
    z: np.ndarray,
    cfg: BaseConfig,
    k_selection: KSelection | None = None,
    groups: list[np.ndarray] | None = None,
) -> StartChoice:
    """Cluster the pretrained embedding to initialise the centroids.

    A given k: KMeans, Leiden with its resolution set to give k or spectral clustering, whichever
    the data reproduces best (``cfg.init_method``, :func:`~scdeep_core.starts.choose_start`). ``"auto"``: the Leiden
    clustering chosen by :func:`~scdeep_core.kselect.choose_k` (pass its result as ``k_selection``).
    ``None``: Leiden at ``cfg.resolution``. With ``groups`` (cells the user says are one type),
    k-means anchored on the groups' means (:func:`seeded_kmeans`): with the given k when there are
    no more groups than that, with the chosen k or the number of groups, the larger, for ``"auto"``.
    """
    if groups and cfg.n_clusters == "auto" and k_selection is not None:
        # The user's word beats the estimate: as many clusters as marked types at least.
        k = max(k_selection.n_clusters, len(groups))
        return StartChoice("anchored", seeded_kmeans(z, k, groups, cfg.seed))
    if isinstance(cfg.n_clusters, int):
        if groups and len(groups) <= cfg.n_clusters:
            return StartChoice("anchored", seeded_kmeans(z, cfg.n_clusters, groups, cfg.seed))
        return choose_start(z, cfg.n_clusters, method=cfg.init_method, seed=cfg.seed, n_neighbors=cfg.n_neighbors)
    if cfg.n_clusters == "auto":
        if k_selection is None:
            k_selection = choose_k(z, n_neighbors=cfg.n_neighbors, seed=cfg.seed)
        return StartChoice("leiden", k_selection.chosen_labels)
    labels = leiden_on_embedding(z, resolution=cfg.resolution, n_neighbors=cfg.n_neighbors, seed=cfg.seed)
    return StartChoice("leiden", labels)


def centroids_of(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean embedding of each cluster ``0..max(labels)``."""
    k = int(labels.max()) + 1
    return np.stack([z[labels == j].mean(axis=0) for j in range(k)])


def _initialise(
    pre: Pretrained, cfg: BaseConfig, monitor: Monitor, groups: list[np.ndarray] | None = None
) -> tuple[StartChoice, KSelection | None]:
    """Initial clusters of the pretrained embedding (choosing k first when asked to).

    With a consensus the clusters are found on the models' embeddings side by side
    (:meth:`Pretrained.start_space`), so every model's stage starts from the same cells' clusters;
    an automatic k is chosen on the first model alone, whose Leiden clusters start them
    (choosing it on the side-by-side embeddings gained on bladder alone and lost on pbmc and paul15,
    BENCHMARKS.md 17c and 17d). With a given k, KMeans and the graph clusterings are compared
    (:func:`~scdeep_core.starts.choose_start`) unless the run was stopped, which takes KMeans at once.
    """
    selection = None
    compare_starts = isinstance(cfg.n_clusters, int) and not groups and cfg.init_method == "auto"
    if cfg.n_clusters == "auto":
        monitor.emit(
            TrainingEvent("init", 0, cfg.max_cluster_epochs, message="Choosing k: Leiden stability over resolutions...")
        )
        selection = (
            pre.select_k()
            if cfg.n_neighbors == pre.cfg.n_neighbors and cfg.seed == pre.cfg.seed
            else choose_k(pre.z, n_neighbors=cfg.n_neighbors, seed=cfg.seed)
        )
    elif compare_starts and monitor.stop_requested:
        cfg = dataclasses.replace(cfg, init_method="kmeans")  # stopped: the labels now, without the comparison
    elif compare_starts and pre.n_cells <= MAX_CELLS_COMPARED:
        monitor.emit(
            TrainingEvent(
                "init",
                0,
                cfg.max_cluster_epochs,
                message="Initial clusters: KMeans, Leiden or spectral, whichever 80 % subsamples reproduce best...",
            )
        )
    return initial_clusters(pre.start_space(), cfg, selection, groups), selection


def _anchoring_note(n_groups: int, cfg: BaseConfig, selection: KSelection | None, n_init: int) -> str:
    """What the groups of cells marked as one type did to the initial clusters."""
    if cfg.n_clusters is None:
        return (
            f"The {n_groups} groups of cells marked as one type do not anchor clusters found by Leiden at a "
            "resolution (give k or 'auto' for that); the clustering stage still uses their pairs."
        )
    if isinstance(cfg.n_clusters, int) and n_groups > cfg.n_clusters:
        return (
            f"The {n_groups} groups of cells marked as one type outnumber the k = {cfg.n_clusters} clusters asked "
            "for: the initial clustering does not use them (the clustering stage still uses their pairs)."
        )
    raised = selection is not None and n_groups > selection.n_clusters
    return f"The initial clusters were anchored on the {n_groups} groups of cells marked as one type" + (
        f"; k = {n_init}, as many as the marked types (the automatic choice was {selection.n_clusters})."
        if raised
        else "."
    )


def not_converged_note(delta: float | None, tol: float, epochs: int) -> str:
    """The warning for a clustering stage that hit its epoch cap."""
    shown = "n/a" if delta is None else f"{delta:.4f}"
    return (
        f"Not converged: after {epochs} clustering epochs (the cap, max_cluster_epochs) {shown} of the cells still "
        f"changed cluster, above tol = {tol:g}. Labels may still move: raise max_cluster_epochs or tol."
    )


def cluster(
    pre: Pretrained,
    cfg: BaseConfig,
    monitor: Monitor,
    pairs: PairConstraints | None = None,
    groups: list[np.ndarray] | None = None,
) -> Outcome:
    """Initialise clusters on the pretrained embedding, then run the clustering stage on a copy
    of the network (``pre`` is not changed). With a consensus (``pre.members``) every model runs
    its own stage from the same initial clusters, and the labels are the argmax of their mean q.

    Parameters
    ----------
    pre
        From :func:`pretrain`.
    cfg
        The clustering settings (same method as ``pre``).
    monitor
        Receives the events; its history should already hold the pretraining rows.
    pairs
        Constraints for this stage instead of the pretraining's (scDCC; indices of the prepared cells).
    groups
        Cells the user says are one type, each group (indices of the prepared cells): with no more
        groups than clusters their means anchor the initial clusters (:func:`seeded_kmeans`).

    Returns
    -------
    Outcome
        ``z`` and ``centroids`` are the first model's.
    """
    t0 = time.perf_counter()
    groups = groups or []
    start, selection = _initialise(pre, cfg, monitor, groups)
    init_labels = current_ranks().broadcast_array(start.labels)  # several processes start from rank 0's clusters
    scores = monitor.score(init_labels)
    n_init = int(init_labels.max()) + 1
    compared = isinstance(cfg.n_clusters, int) and start.method != "anchored"
    msg = f"Initialised {n_init} clusters."
    if selection is not None:
        msg = selection.summary()
    elif compared:
        msg = start.summary()
    monitor.emit(
        TrainingEvent(
            "init",
            0,
            cfg.max_cluster_epochs,
            n_clusters=n_init,
            ari=scores.get("ari"),
            nmi=scores.get("nmi"),
            message=msg,
        )
    )
    t_init = time.perf_counter()
    notes = []
    if selection is not None:
        note(notes, f"Automatic choice: {selection.summary()}")
    if compared:
        note(notes, start.summary())
    if groups:
        note(notes, _anchoring_note(len(groups), cfg, selection, n_init))
    if n_init < 2:
        note(
            notes, "The initial clustering found a single cluster: raise the Leiden resolution or give k.", warning=True
        )
    models, seeds = pre.models, cfg.model_seeds()
    if pre.rng_state is not None:
        torch.set_rng_state(pre.rng_state)
    stages: list[_Stage] = []
    for index, member in enumerate(models):
        # Once stopped, the models left vote with their soft assignment at the start, as one model does.
        if index > 0 and not monitor.stop_requested:
            monitor.emit(
                TrainingEvent(
                    "init",
                    0,
                    cfg.max_cluster_epochs,
                    n_clusters=n_init,
                    message=f"Model {index + 1} of {len(models)}: clustering stage from the same initial clusters.",
                )
            )
        monitor.model = index if len(models) > 1 else None
        member_cfg = cfg if index == 0 else dataclasses.replace(cfg, seed=seeds[index])
        stages.append(_run_stage(member, member_cfg, monitor, init_labels, pairs, live=index == 0))
    monitor.model = None
    stage_name = "pretrain" if any(st.stage == "pretrain" for st in stages) else "done"
    if any(st.stage == "cluster" for st in stages):
        stage_name = "cluster"
    for index, st in enumerate(stages):
        if st.stage == "done" and not st.converged:
            prefix = f"Model {index + 1} of {len(stages)}: " if len(stages) > 1 else ""
            note(notes, prefix + not_converged_note(st.delta_label, cfg.tol, st.epochs), warning=True)
    first = stages[0]
    q = first.q if len(stages) == 1 else np.mean([st.q for st in stages], axis=0)
    consensus = None
    if len(models) > 1:
        consensus = _consensus_info(stages, seeds)
        note(notes, consensus_note(consensus))
    deltas = [st.delta_label for st in stages if st.delta_label is not None]
    t_end = time.perf_counter()
    return Outcome(
        labels=first.labels if len(stages) == 1 else q.argmax(axis=1),
        q=q,
        z=first.z,
        centroids=first.centroids,
        stage=stage_name,
        converged=all(st.converged for st in stages),
        epochs=max(st.epochs for st in stages),
        delta_label=max(deltas) if deltas else None,
        selection=selection,
        init_scores=scores,
        start=start.to_dict() if compared else None,
        notes=notes,
        timings={"init_s": t_init - t0, "cluster_s": t_end - t_init},
        device=first.device,
        consensus=consensus,
    )


@dataclass
class _Stage:
    """One model's clustering stage (see :func:`_run_stage`)."""

    labels: np.ndarray
    q: np.ndarray
    z: np.ndarray
    centroids: np.ndarray
    stage: str
    converged: bool
    epochs: int
    delta_label: float | None
    device: str


def _run_stage(
    pre: Pretrained,
    cfg: BaseConfig,
    monitor: Monitor,
    init_labels: np.ndarray,
    pairs: PairConstraints | None,
    live: bool,
) -> _Stage:
    """The clustering stage of one model from ``init_labels``, on a copy of its network (centroids:
    the clusters' means in its own embedding); ``live``: send embedding snapshots."""
    model = deepcopy(pre.model)
    z = pre.z
    model.set_centroids(torch.from_numpy(centroids_of(z, init_labels)))  # moved to the model's device
    stage = "pretrain" if monitor.stop_requested or pre.stopped else "cluster"
    delta = None
    if stage == "cluster" and init_labels.max() >= 1:
        # Hooks of this stage's own config (its learning rate, alpha, gamma), with the pretraining's pairs
        # unless new ones are given; the pretraining's hooks would silently keep the pretraining's values.
        pairs = pairs if pairs is not None else getattr(pre.hooks, "pairs", None)
        hooks = hooks_for(cfg, pre.data, pairs, model_device(model))
        hooks.reseed(cfg.seed)
        out = cluster_stage(
            model,
            pre.data,
            hooks,
            cfg,
            monitor,
            np.random.default_rng([cfg.seed, 1]),
            SnapshotMaker(z, cfg.snapshot_cells, cfg.seed) if live else None,
        )
        labels, q, z, converged, epochs, delta = out.labels, out.q, out.z, out.converged, out.epochs, out.delta_label
        stage = "cluster" if out.stopped else "done"
    else:
        with torch.no_grad():
            q = to_numpy(model.soft_assign(to_device(z, model_device(model)), cfg.alpha))
        labels, converged, epochs = q.argmax(axis=1), False, 0
    return _Stage(
        labels, q, z, to_numpy(model.centroids).copy(), stage, converged, epochs, delta, str(model_device(model))
    )


def _consensus_info(stages: list[_Stage], seeds: list[int]) -> dict:
    """How the models of a consensus ended, and how far they agree (mean pairwise ARI of their own labels)."""
    pairs = [ari(a.labels, b.labels) for i, a in enumerate(stages) for b in stages[i + 1 :]]
    return {
        "n_models": len(stages),
        "seeds": seeds[: len(stages)],
        "agreement": float(np.mean(pairs)) if pairs else float("nan"),
        "cluster_epochs": [st.epochs for st in stages],
        "converged": [bool(st.converged) for st in stages],
    }


def consensus_note(info: dict) -> str:
    """One line on a consensus for the user: how many models and how far they agree."""
    return (
        f"Consensus of {info['n_models']} models: on their own they agree at ARI {info['agreement']:.2f} (mean "
        "pairwise); the labels are the argmax of their mean soft assignment."
    )
