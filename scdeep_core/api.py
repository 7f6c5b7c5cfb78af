"""``fit``: one entry point for DESC and scDCC on an AnnData."""
from __future__ import annotations

import copy
import dataclasses
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import torch
from sklearn.cluster import KMeans

from . import constraints as cons
from .config import BaseConfig, ConfigError, DESCConfig, SCDCCConfig, config_for
from .errors import InputError
from .events import Callback, StopToken, TrainingEvent
from .graph import leiden_on_embedding
from .methods import DESCHooks, SCDCCHooks
from .pp import PreparedData, prepare
from .results import ClusteringResult, write_to_adata
from .train import Monitor, SnapshotMaker, cluster_stage, embed, pretrain

# torch's global generator seeds the weight initialisation; runs in other threads must not interleave.
_SEED_LOCK = threading.Lock()


def initial_clusters(z: np.ndarray, cfg: BaseConfig) -> np.ndarray:
    """Cluster the pretrained embedding: KMeans for a given k, else Leiden at ``cfg.resolution``."""
    if cfg.n_clusters is not None:
        return KMeans(n_clusters=cfg.n_clusters, n_init=20, random_state=cfg.seed).fit_predict(z)
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
        pc = cons.from_labels(adata.obs[c.label_key].to_numpy(dtype=object), fraction=c.fraction, n_pairs=c.n_pairs, error_rate=c.error_rate, seed=cfg.seed)
    elif c.source == "pairs":
        pc = cons.read_pair_file(c.pairs_path, adata.obs_names)
    else:
        if c.obsm_key not in adata.obsm:
            raise InputError(f"obsm key {c.obsm_key!r} not found; available: {list(adata.obsm.keys())}.")
        m = adata.obsm[c.obsm_key]
        m = m.to_numpy() if isinstance(m, pd.DataFrame) else np.asarray(m.todense() if hasattr(m, "todense") else m)
        pc = cons.from_matrix(m, n_pairs=c.n_pairs, ml_percentile=c.ml_percentile, cl_percentile=c.cl_percentile, seed=cfg.seed)
    return cons.restrict_to_cells(pc, data.cell_mask)


@dataclass
class _PretrainedRun:
    """Everything shared by the clustering stages that follow one pretraining."""

    method: str
    cfg: BaseConfig
    data: PreparedData
    hooks: object
    model: torch.nn.Module
    monitor: Monitor
    rng: np.random.Generator
    z: np.ndarray
    truth: np.ndarray | None
    eval_mask: np.ndarray | None
    notes: list[str]
    pretrain_s: float
    pretrain_history: list[dict]


def _pretrain_run(adata, method, config, label_key, callbacks, stop_token, max_cluster_epochs_total) -> _PretrainedRun:
    t_start = time.perf_counter()
    method = method.lower()
    cfg = config if config is not None else config_for(method)
    if cfg.method != method:
        raise ConfigError(f"A {type(cfg).__name__} was given for method {method!r}.")
    cfg.validate()
    check_label_key(adata, label_key)
    if cfg.n_clusters is not None and cfg.n_clusters > adata.n_obs:
        raise InputError(f"k = {cfg.n_clusters} clusters is more than the {adata.n_obs} cells: choose k below the number of cells.")
    data = prepare(adata, method=method, n_top_genes=cfg.n_top_genes, max_value=cfg.scale_max_value)
    if cfg.n_clusters is not None and cfg.n_clusters > data.n_cells:
        raise InputError(f"k = {cfg.n_clusters} is more than the {data.n_cells} cells left after dropping all-zero cells.")
    truth = adata.obs[label_key].to_numpy(dtype=object)[data.cell_mask] if label_key is not None else None
    pairs = _constraints_for(adata, cfg, data) if isinstance(cfg, SCDCCConfig) else None
    eval_mask = None
    if truth is not None:
        eval_mask = pd.notna(pd.Series(truth)).to_numpy()
        if pairs is not None:
            eval_mask &= ~pairs.used_cells
    rng = np.random.default_rng(cfg.seed)
    n_pretrain = cfg.resolved_pretrain_epochs(data.n_cells)
    with _SEED_LOCK:
        torch.manual_seed(cfg.seed)
        hooks = DESCHooks(cfg) if isinstance(cfg, DESCConfig) else SCDCCHooks(cfg, data, pairs, seed=cfg.seed)
        model = hooks.build_model(data.n_genes)
    monitor = Monitor(callbacks, stop_token, truth, eval_mask, total_epochs=n_pretrain + max_cluster_epochs_total)
    pretrain(model, data, hooks, cfg, monitor, rng, n_pretrain)
    notes = list(data.notes) + (pairs.notes if pairs is not None else [])
    return _PretrainedRun(method, cfg, data, hooks, model, monitor, rng, embed(model, data), truth, eval_mask, notes,
                          time.perf_counter() - t_start, list(monitor.history))


def _cluster_and_finish(run: _PretrainedRun, cfg: BaseConfig, model: torch.nn.Module, key: str, adata: ad.AnnData) -> ClusteringResult:
    """Initialise centroids on the pretrained embedding, run the clustering stage, write the result."""
    t0 = time.perf_counter()
    monitor, z = run.monitor, run.z
    monitor.history = list(run.pretrain_history)
    init_labels = initial_clusters(z, cfg)
    model.set_centroids(torch.from_numpy(centroids_of(z, init_labels)))
    scores = monitor.score(init_labels)
    n_init = int(init_labels.max()) + 1
    monitor.emit(TrainingEvent("init", 0, cfg.max_cluster_epochs, n_clusters=n_init, ari=scores.get("ari"), nmi=scores.get("nmi"),
                               message=f"Initialised {n_init} clusters."))
    t_init = time.perf_counter()
    notes = list(run.notes)
    stage = "pretrain" if monitor.stop_requested else "cluster"
    if n_init < 2:
        notes.append("The initial clustering found a single cluster: raise the Leiden resolution or give k.")
    if stage == "cluster" and n_init >= 2:
        out = cluster_stage(model, run.data, run.hooks, cfg, monitor, run.rng, SnapshotMaker(z, cfg.snapshot_cells, cfg.seed))
        labels, q, z, converged, cluster_epochs = out.labels, out.q, out.z, out.converged, out.epochs
        stage = "cluster" if out.stopped else "done"
    else:
        with torch.no_grad():
            q = model.soft_assign(torch.from_numpy(z), cfg.alpha).numpy()
        labels, converged, cluster_epochs = q.argmax(axis=1), False, 0
    t_end = time.perf_counter()
    final_scores = monitor.score(labels) if run.truth is not None else {}
    result = ClusteringResult(
        method=run.method, key=key, config=cfg.to_dict(), labels=labels, q=q, embedding=z,
        centroids=model.centroids.detach().numpy().copy(), cell_mask=run.data.cell_mask,
        history=pd.DataFrame(monitor.history), stage=stage, converged=converged, scores=final_scores,
        eval_mask=run.eval_mask, notes=notes, genes=[str(g) for g in run.data.genes],
        timings={
            "pretrain_s": run.pretrain_s, "init_s": t_init - t0, "cluster_s": t_end - t_init,
            "total_s": run.pretrain_s + t_end - t0, "pretrain_epochs": float(len(run.pretrain_history)),
            "cluster_epochs": float(cluster_epochs),
        },
    )
    write_to_adata(adata, result)
    monitor.emit(TrainingEvent("stopped" if stage != "done" else "done", cluster_epochs, cfg.max_cluster_epochs,
                               n_clusters=result.n_clusters, ari=final_scores.get("ari"), nmi=final_scores.get("nmi"),
                               message=result.summary()))
    return result


def fit(
    adata: ad.AnnData,
    method: str = "scdcc",
    config: BaseConfig | None = None,
    *,
    label_key: str | None = None,
    callbacks: Sequence[Callback] = (),
    stop_token: StopToken | None = None,
    key_added: str | None = None,
) -> ClusteringResult:
    """Cluster the cells of ``adata`` with DESC or scDCC.

    Parameters
    ----------
    adata
        Cells x genes, raw counts in ``layers["counts"]`` (or ``X``). Its data is not
        modified; the result keys (see :mod:`scdeep_core.results`) are added to it.
    method
        ``"desc"`` or ``"scdcc"``.
    config
        A :class:`DESCConfig` / :class:`SCDCCConfig`; defaults when ``None``.
    label_key
        ``obs`` column of known labels, used only to report ARI/NMI/ACC.
    callbacks
        Functions receiving a :class:`~scdeep_core.events.TrainingEvent` per epoch.
    stop_token
        Set it (``stop_token.stop()``) to stop between minibatches; the result is still
        usable (labels from the initial clustering if stopped before the clustering stage).
    key_added
        Prefix of the result keys; defaults to the method name.

    Returns
    -------
    ClusteringResult
    """
    cfg = config if config is not None else config_for(method)
    run = _pretrain_run(adata, method, cfg, label_key, callbacks, stop_token, cfg.max_cluster_epochs)
    return _cluster_and_finish(run, run.cfg, run.model, key_added or run.method, adata)


def fit_resolutions(
    adata: ad.AnnData,
    resolutions: Sequence[float],
    method: str = "desc",
    config: BaseConfig | None = None,
    *,
    label_key: str | None = None,
    callbacks: Sequence[Callback] = (),
    stop_token: StopToken | None = None,
    key_prefix: str | None = None,
) -> dict[float, ClusteringResult]:
    """One pretrained autoencoder, clustered at several Leiden resolutions (DESC's workflow).

    Each resolution starts from a copy of the same pretrained network and writes its
    keys under ``f"{key_prefix}_r{resolution}"`` (prefix defaults to the method name).

    Returns
    -------
    dict
        Resolution -> :class:`ClusteringResult`.
    """
    if not resolutions:
        raise ConfigError("Give at least one resolution.")
    cfg = config if config is not None else config_for(method)
    cfg = dataclasses.replace(cfg, n_clusters=None)
    run = _pretrain_run(adata, method, cfg, label_key, callbacks, stop_token, cfg.max_cluster_epochs * len(resolutions))
    results = {}
    for res in resolutions:
        cfg_r = dataclasses.replace(cfg, resolution=float(res))
        results[float(res)] = _cluster_and_finish(run, cfg_r, copy.deepcopy(run.model), f"{key_prefix or run.method}_r{res:g}", adata)
    return results
