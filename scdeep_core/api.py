"""``fit``: one entry point for DESC and scDCC on an AnnData."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Sequence
from copy import deepcopy
from dataclasses import dataclass
from itertools import pairwise

import anndata as ad
import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans

from . import constraints as cons
from .config import BaseConfig, ConfigError, DESCConfig, SCDCCConfig, config_for
from .device import model_device, resolve_device, to_device, to_numpy
from .errors import InputError
from .events import Callback, StopToken, TrainingEvent
from .graph import leiden_on_embedding
from .kselect import KSelection, choose_k
from .methods import DESCHooks, SCDCCHooks
from .pp import PreparedData, prepare
from .progress import RunPlan
from .results import ClusteringResult, write_to_adata
from .train import MethodHooks, Monitor, SnapshotMaker, cluster_stage, embed
from .train import pretrain as train_autoencoder

# torch's global generator seeds the weight initialisation; runs in other threads must not interleave.
_SEED_LOCK = threading.Lock()


def initial_clusters(z: np.ndarray, cfg: BaseConfig, k_selection: KSelection | None = None) -> np.ndarray:
    """Cluster the pretrained embedding to initialise the centroids.

    A given k: KMeans (20 starts). ``"auto"``: the Leiden clustering chosen by
    :func:`~scdeep_core.kselect.choose_k` (pass its result as ``k_selection``). ``None``:
    Leiden at ``cfg.resolution``.
    """
    if isinstance(cfg.n_clusters, int):
        return KMeans(n_clusters=cfg.n_clusters, n_init=20, random_state=cfg.seed).fit_predict(z)
    if cfg.n_clusters == "auto":
        if k_selection is None:
            k_selection = choose_k(z, n_neighbors=cfg.n_neighbors, seed=cfg.seed)
        return k_selection.chosen_labels
    return leiden_on_embedding(z, resolution=cfg.resolution, n_neighbors=cfg.n_neighbors, seed=cfg.seed)


def centroids_of(z: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Mean embedding of each cluster ``0..max(labels)``."""
    k = int(labels.max()) + 1
    return np.stack([z[labels == j].mean(axis=0) for j in range(k)])


def check_label_key(adata: ad.AnnData, label_key: str | None) -> None:
    """Raise :class:`InputError` naming the available columns if ``label_key`` is not in ``obs``."""
    if label_key is not None and label_key not in adata.obs.columns:
        raise InputError(f"Label column {label_key!r} is not in obs. Available columns: {list(adata.obs.columns)}.")


def _constraints_for(adata: ad.AnnData, cfg: SCDCCConfig, data: PreparedData) -> cons.PairConstraints | None:
    c = cfg.constraints
    if c.source == "none":
        return None
    if c.source == "labels":
        check_label_key(adata, c.label_key)
        pc = cons.from_labels(
            adata.obs[c.label_key].to_numpy(dtype=object),
            fraction=c.fraction,
            n_pairs=c.n_pairs,
            error_rate=c.error_rate,
            seed=cfg.seed,
        )
    elif c.source == "pairs":
        pc = cons.read_pair_file(c.pairs_path, adata.obs_names)
    else:
        if c.obsm_key not in adata.obsm:
            raise InputError(f"obsm key {c.obsm_key!r} not found; available: {list(adata.obsm.keys())}.")
        m = adata.obsm[c.obsm_key]
        m = m.to_numpy() if isinstance(m, pd.DataFrame) else np.asarray(m.todense() if hasattr(m, "todense") else m)
        pc = cons.from_matrix(
            m, n_pairs=c.n_pairs, ml_percentile=c.ml_percentile, cl_percentile=c.cl_percentile, seed=cfg.seed
        )
    return cons.restrict_to_cells(pc, data.cell_mask)


@dataclass
class Pretrained:
    """A pretrained autoencoder with everything its clustering stage needs.

    Returned by :func:`pretrain`; :func:`recluster` runs the clustering stage from it with
    any k without pretraining again (the network weights here are never modified).
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

    @property
    def n_cells(self) -> int:
        return self.data.n_cells

    def select_k(self) -> KSelection:
        """The automatic choice of k on this embedding (computed once, then kept)."""
        if self.k_selection is None:
            self.k_selection = choose_k(self.z, n_neighbors=self.cfg.n_neighbors, seed=self.cfg.seed)
        return self.k_selection


def resolve_config(config: BaseConfig | str | None) -> BaseConfig:
    """The validated config a run uses: ``config`` itself, a method's defaults for ``"desc"`` /
    ``"scdcc"``, or scDCC's defaults for ``None``."""
    if config is None:
        config = "scdcc"
    if isinstance(config, str):
        return config_for(config)
    if not isinstance(config, BaseConfig):
        raise ConfigError(
            f"config must be a DESCConfig, an SCDCCConfig, 'desc' or 'scdcc', got {type(config).__name__}."
        )
    config.validate()
    return config


def _check_k(cfg: BaseConfig, n_cells: int, what: str) -> None:
    if isinstance(cfg.n_clusters, int) and cfg.n_clusters > n_cells:
        raise InputError(
            f"k = {cfg.n_clusters} clusters is more than the {n_cells} cells{what}: choose k below the number of cells."
        )


def pretrain(
    adata: ad.AnnData,
    config: BaseConfig | str | None = None,
    *,
    label_key: str | None = None,
    callbacks: Sequence[Callback] = (),
    stop_token: StopToken | None = None,
    _monitor: Monitor | None = None,
    _stages: int = 1,
) -> Pretrained:
    """Prepare the data and pretrain the method's autoencoder (no clustering yet).

    Use :func:`recluster` on the result to run the clustering stage, as often as wanted,
    with any k.

    Parameters
    ----------
    adata
        Cells x genes, raw counts in ``layers["counts"]`` (or ``X``); not modified.
    config
        As for :func:`fit`.
    label_key
        ``obs`` column of known labels, kept to score the clustering stage.
    callbacks
        Functions receiving a :class:`~scdeep_core.events.TrainingEvent` per epoch.
    stop_token
        Set it to stop pretraining early; the model trained so far is returned.

    Returns
    -------
    Pretrained
    """
    t_start = time.perf_counter()
    cfg = resolve_config(config)
    device = resolve_device(cfg.device)  # before any work: a missing GPU is an error, not a silent CPU run
    check_label_key(adata, label_key)
    _check_k(cfg, adata.n_obs, "")
    monitor = _monitor or Monitor(callbacks, stop_token)
    monitor.emit(TrainingEvent("prepare", 0, 0, message="Preparing the data: normalising, selecting genes, scaling..."))
    data = prepare(adata, method=cfg.method, n_top_genes=cfg.n_top_genes, max_value=cfg.scale_max_value)
    _check_k(cfg, data.n_cells, " left after dropping all-zero cells")
    truth = adata.obs[label_key].to_numpy(dtype=object)[data.cell_mask] if label_key is not None else None
    pairs = _constraints_for(adata, cfg, data) if isinstance(cfg, SCDCCConfig) else None
    eval_mask = None
    notes = list(data.notes) + (pairs.notes if pairs is not None else [])
    if truth is not None:
        eval_mask = pd.notna(pd.Series(truth)).to_numpy()
        if pairs is not None:
            eval_mask &= ~pairs.used_cells
        if not eval_mask.any():
            notes.append(
                f"No held-out labelled cells: every cell of {label_key!r} is missing or was used for constraints, "
                "so ARI/NMI/ACC are not reported."
            )
    n_pretrain = cfg.resolved_pretrain_epochs(data.n_cells)
    with _SEED_LOCK:
        torch.manual_seed(cfg.seed)
        hooks = DESCHooks(cfg) if isinstance(cfg, DESCConfig) else SCDCCHooks(cfg, data, pairs, cfg.seed, device)
        model = hooks.build_model(data.n_genes).to(device)  # initialised on the CPU: the same weights on any device
    monitor.truth, monitor.eval_mask = truth, eval_mask
    monitor.set_plan(_run_plan(cfg, data.n_cells, n_pretrain, _stages))
    train_autoencoder(model, data, hooks, cfg, monitor, np.random.default_rng(cfg.seed), n_pretrain)
    return Pretrained(
        cfg.method,
        cfg,
        data,
        hooks,
        model,
        embed(model, data),
        truth,
        eval_mask,
        notes,
        time.perf_counter() - t_start,
        list(monitor.history),
        stopped=monitor.stop_requested,
    )


def _initialise(pre: Pretrained, cfg: BaseConfig, monitor: Monitor) -> tuple[np.ndarray, KSelection | None]:
    """Initial clusters of the pretrained embedding (choosing k first when asked to)."""
    selection = None
    if cfg.n_clusters == "auto":
        monitor.emit(
            TrainingEvent("init", 0, cfg.max_cluster_epochs, message="Choosing k: Leiden stability over resolutions...")
        )
        selection = (
            pre.select_k()
            if cfg.n_neighbors == pre.cfg.n_neighbors and cfg.seed == pre.cfg.seed
            else choose_k(pre.z, n_neighbors=cfg.n_neighbors, seed=cfg.seed)
        )
    return initial_clusters(pre.z, cfg, selection), selection


def recluster(
    adata: ad.AnnData,
    pretrained: Pretrained,
    config: BaseConfig | None = None,
    *,
    key_added: str | None = None,
    copy: bool = False,
    callbacks: Sequence[Callback] = (),
    stop_token: StopToken | None = None,
    _monitor: Monitor | None = None,
) -> ClusteringResult:
    """Run the clustering stage from a pretrained autoencoder and write the result keys.

    Parameters
    ----------
    adata
        The AnnData the model was pretrained on (same cells); result keys are added to it.
    pretrained
        From :func:`pretrain` (or ``TrainingJob.pretrained``); its weights are not changed.
    config
        Clustering settings; defaults to the pretraining config. For another k, e.g.
        ``dataclasses.replace(pretrained.cfg, n_clusters=12)``.
    key_added
        Prefix of the result keys; defaults to the method name.
    copy
        Leave ``adata`` untouched and write the keys to a copy, returned as ``result.adata``.
    callbacks
        Functions receiving a :class:`~scdeep_core.events.TrainingEvent` per epoch.
    stop_token
        Set it to stop between minibatches.

    Returns
    -------
    ClusteringResult
    """
    t0 = time.perf_counter()
    cfg = pretrained.cfg if config is None else resolve_config(config)
    if cfg.method != pretrained.method:
        raise ConfigError(
            f"A {type(cfg).__name__} cannot re-cluster a {pretrained.method} model: give a {pretrained.method} config."
        )
    _check_k(cfg, pretrained.n_cells, " used for training")
    if adata.n_obs != len(pretrained.data.cell_mask):
        raise InputError(
            f"This AnnData has {adata.n_obs} cells but the model was pretrained on {len(pretrained.data.cell_mask)}."
        )
    if _monitor is None:
        monitor = Monitor(
            callbacks, stop_token, pretrained.truth, pretrained.eval_mask, _run_plan(cfg, pretrained.n_cells, 0)
        )
        monitor.time_left.pretrain_times = _epoch_seconds(pretrained.history)  # to predict a clustering epoch
    else:
        monitor = _monitor
    monitor.history = list(pretrained.history)  # each result's history: the pretraining and its own stage
    model = deepcopy(pretrained.model)
    z = pretrained.z
    init_labels, selection = _initialise(pretrained, cfg, monitor)
    model.set_centroids(torch.from_numpy(centroids_of(z, init_labels)))  # moved to the model's device
    scores = monitor.score(init_labels)
    n_init = int(init_labels.max()) + 1
    msg = selection.summary() if selection is not None else f"Initialised {n_init} clusters."
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
    notes = list(pretrained.notes)
    if selection is not None:
        notes.append(f"Automatic choice: {selection.summary()}")
    stage = "pretrain" if monitor.stop_requested or pretrained.stopped else "cluster"
    delta = None
    if n_init < 2:
        notes.append("The initial clustering found a single cluster: raise the Leiden resolution or give k.")
    if stage == "cluster" and n_init >= 2:
        pretrained.hooks.reseed(cfg.seed)
        out = cluster_stage(
            model,
            pretrained.data,
            pretrained.hooks,
            cfg,
            monitor,
            np.random.default_rng([cfg.seed, 1]),
            SnapshotMaker(z, cfg.snapshot_cells, cfg.seed),
        )
        labels, q, z, converged, cluster_epochs, delta = (
            out.labels,
            out.q,
            out.z,
            out.converged,
            out.epochs,
            out.delta_label,
        )
        stage = "cluster" if out.stopped else "done"
        if stage == "done" and not converged:
            notes.append(not_converged_note(delta, cfg.tol, cluster_epochs))
    else:
        with torch.no_grad():
            q = to_numpy(model.soft_assign(to_device(z, model_device(model)), cfg.alpha))
        labels, converged, cluster_epochs = q.argmax(axis=1), False, 0
    t_end = time.perf_counter()
    final_scores = monitor.score(labels) if pretrained.truth is not None else {}
    result = ClusteringResult(
        method=pretrained.method,
        key=key_added or pretrained.method,
        config=cfg.to_dict(),
        labels=labels,
        q=q,
        embedding=z,
        centroids=to_numpy(model.centroids).copy(),
        cell_mask=pretrained.data.cell_mask,
        history=pd.DataFrame(monitor.history),
        stage=stage,
        converged=converged,
        scores=final_scores,
        eval_mask=pretrained.eval_mask,
        notes=notes,
        genes=[str(g) for g in pretrained.data.genes],
        timings={
            "pretrain_s": pretrained.pretrain_s,
            "init_s": t_init - t0,
            "cluster_s": t_end - t_init,
            "total_s": pretrained.pretrain_s + t_end - t0,
            "pretrain_epochs": float(len(pretrained.history)),
            "cluster_epochs": float(cluster_epochs),
        },
        delta_label=delta,
        k_selection=selection,
        init_scores=scores,
    )
    result.versions["device"] = str(model_device(model))  # where it trained: part of what reproduces it
    if copy:
        adata = adata.copy()
        result.adata = adata
    write_to_adata(adata, result)
    monitor.emit(
        TrainingEvent(
            "stopped" if stage != "done" else "done",
            cluster_epochs,
            cfg.max_cluster_epochs,
            n_clusters=result.n_clusters,
            ari=final_scores.get("ari"),
            nmi=final_scores.get("nmi"),
            message=result.summary(),
        )
    )
    return result


def not_converged_note(delta: float | None, tol: float, epochs: int) -> str:
    """The warning for a clustering stage that hit its epoch cap."""
    shown = "n/a" if delta is None else f"{delta:.4f}"
    return (
        f"Not converged: after {epochs} clustering epochs (the cap, max_cluster_epochs) {shown} of the cells still "
        f"changed cluster, above tol = {tol:g}. Labels may still move: raise max_cluster_epochs or tol."
    )


def fit(
    adata: ad.AnnData,
    config: BaseConfig | str | None = None,
    *,
    label_key: str | None = None,
    key_added: str | None = None,
    copy: bool = False,
    callbacks: Sequence[Callback] = (),
    stop_token: StopToken | None = None,
) -> ClusteringResult:
    """Cluster the cells of ``adata`` with DESC or scDCC.

    Parameters
    ----------
    adata
        Cells x genes, raw counts in ``layers["counts"]`` (or ``X``). Its data is not
        modified; the result keys (see :mod:`scdeep_core.results`) are added to it.
    config
        A :class:`DESCConfig` / :class:`SCDCCConfig` (the method is the config's), or
        ``"desc"`` / ``"scdcc"`` for that method's defaults; ``None`` is scDCC's defaults.
        Its ``n_clusters`` is a number, ``"auto"`` (the default: chosen by Leiden stability
        on the pretrained embedding, see :mod:`scdeep_core.kselect`) or ``None`` (Leiden at
        ``resolution``).
    label_key
        ``obs`` column of known labels, used only to report ARI/NMI/ACC.
    key_added
        Prefix of the result keys; defaults to the method name.
    copy
        Leave ``adata`` untouched and write the keys to a copy, returned as ``result.adata``.
    callbacks
        Functions receiving a :class:`~scdeep_core.events.TrainingEvent` per epoch.
    stop_token
        Set it (``stop_token.stop()``) to stop between minibatches; the result is still
        usable (labels from the initial clustering if stopped before the clustering stage).

    Returns
    -------
    ClusteringResult
        ``result.pretrained`` keeps the pretrained model for :func:`recluster`.

    Examples
    --------
    >>> result = sd.fit(adata, "desc", label_key="cell_type")            # DESC, k chosen for you
    >>> result = sd.fit(adata, sd.SCDCCConfig(n_clusters=8), copy=True)  # adata untouched
    """
    cfg = resolve_config(config)
    monitor = Monitor(callbacks, stop_token)  # one monitor for both stages: one clock, one history, one estimate
    pre = pretrain(adata, cfg, label_key=label_key, _monitor=monitor)
    result = recluster(adata, pre, cfg, key_added=key_added, copy=copy, _monitor=monitor)
    result.pretrained = pre
    return result


def _run_plan(cfg: BaseConfig, n_cells: int, pretrain_epochs: int, stages: int = 1) -> RunPlan:
    """What a run of ``cfg`` will do, for its time left (see :mod:`scdeep_core.progress`)."""
    return RunPlan(
        method=cfg.method,
        n_cells=n_cells,
        pretrain_epochs=pretrain_epochs,
        cluster_cap=cfg.max_cluster_epochs,
        min_cluster_epochs=cfg.min_cluster_epochs,
        tol=cfg.tol,
        auto_k=cfg.n_clusters == "auto",
        stages=stages,
    )


def _epoch_seconds(history: list[dict]) -> list[float]:
    """Durations of the pretraining epochs in a history (differences of their ``elapsed``)."""
    elapsed = [row["elapsed"] for row in history if row.get("phase") == "pretrain"]
    return [b - a for a, b in pairwise(elapsed) if b > a]


def fit_resolutions(
    adata: ad.AnnData,
    resolutions: Sequence[float],
    config: BaseConfig | str | None = "desc",
    *,
    label_key: str | None = None,
    key_added: str | None = None,
    copy: bool = False,
    callbacks: Sequence[Callback] = (),
    stop_token: StopToken | None = None,
) -> dict[float, ClusteringResult]:
    """One pretrained autoencoder, clustered at several Leiden resolutions (DESC's workflow).

    Parameters
    ----------
    adata
        As for :func:`fit`.
    resolutions
        Leiden resolutions of the initial clusterings; each starts from the same pretrained network.
    config
        As for :func:`fit`, DESC's defaults here; its ``n_clusters`` is ignored.
    label_key
        As for :func:`fit`.
    key_added
        Prefix of the result keys: each resolution writes under ``f"{key_added}_r{resolution}"``
        (the prefix defaults to the method name).
    copy
        Leave ``adata`` untouched; all the keys go to one copy, returned as each ``result.adata``.
    callbacks
        As for :func:`fit`.
    stop_token
        As for :func:`fit`.

    Returns
    -------
    dict
        Resolution -> :class:`ClusteringResult`.
    """
    if not resolutions:
        raise ConfigError("Give at least one resolution.")
    cfg = dataclasses.replace(resolve_config(config), n_clusters=None)
    if copy:
        adata = adata.copy()
    monitor = Monitor(callbacks, stop_token)
    pre = pretrain(adata, cfg, label_key=label_key, _monitor=monitor, _stages=len(resolutions))
    results = {}
    for res in resolutions:
        cfg_r = dataclasses.replace(cfg, resolution=float(res))
        results[float(res)] = recluster(
            adata, pre, cfg_r, key_added=f"{key_added or pre.method}_r{res:g}", _monitor=monitor
        )
        if copy:
            results[float(res)].adata = adata
    return results
