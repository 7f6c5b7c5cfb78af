"""``fit``: one entry point for DESC and scDCC on an AnnData."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import anndata as ad
import numpy as np
import pandas as pd

from . import constraints as cons
from . import metrics, recipe
from .backed import prepare_backed
from .config import PRETRAINING_SETTINGS, BaseConfig, ConfigError, SCDCCConfig, config_for
from .device import resolve_device
from .distributed import current as current_ranks
from .errors import InputError
from .events import Callback, StopToken, TrainingEvent
from .log import note, noted
from .pp import PreparedData, prepare
from .recipe import Pretrained
from .results import ClusteringResult, write_to_adata
from .train import Monitor

__all__ = ["Pretrained", "fit", "fit_resolutions", "pretrain", "recluster", "resolve_config"]


def check_label_key(adata: ad.AnnData, label_key: str | None) -> None:
    """Raise :class:`InputError` naming the available columns if ``label_key`` is not in ``obs``."""
    if label_key is not None and label_key not in adata.obs.columns:
        raise InputError(f"Label column {label_key!r} is not in obs. Available columns: {list(adata.obs.columns)}.")


def batch_of(adata: ad.AnnData, batch_key: str | None) -> tuple[np.ndarray | None, list[str]]:
    """Each cell's batch from ``obs[batch_key]`` (``None`` without one) and notes.

    Raises
    ------
    InputError
        The column is missing, has cells without a batch, or has so many values that it
        cannot be a batch (a per-cell column such as barcodes or counts).
    """
    if batch_key is None:
        return None, []
    if batch_key not in adata.obs.columns:
        raise InputError(
            f"Batch column {batch_key!r} is not in obs. Available columns: {list(adata.obs.columns)}. "
            "Choose the column naming each cell's sample, donor or run, or run without a batch column."
        )
    values = adata.obs[batch_key]
    missing = int(values.isna().sum())
    if missing:
        raise InputError(
            f"{missing} cells have no value in the batch column {batch_key!r}: fill them in (e.g. 'unknown') "
            "or drop those cells."
        )
    n_values = int(values.nunique())
    if n_values < 2:
        return None, noted(f"Batch column {batch_key!r} has a single value: no batch correction was needed.")
    if n_values > max(2, adata.n_obs // 2):
        raise InputError(
            f"Batch column {batch_key!r} has {n_values:,} different values for {adata.n_obs:,} cells: it looks like "
            "a per-cell column (barcodes, counts), not batches. Choose the column naming each cell's sample, donor "
            "or run."
        )
    return values.astype(str).to_numpy(dtype=object), []


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


def check_processes(cfg: BaseConfig) -> None:
    """Raise :class:`ConfigError` when ``cfg`` cannot run across the processes of this run (torchrun)."""
    if cfg.n_models > 1 and current_ranks().active:
        raise ConfigError(
            "A consensus of several models (n_models > 1, the 'thorough' preset) is not available with torchrun yet: "
            "run it in one process, or use n_models = 1 across processes."
        )


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
    resolve_device(cfg.device)  # before any work: a missing GPU is an error, not a silent CPU run
    check_processes(cfg)
    check_label_key(adata, label_key)
    _check_k(cfg, adata.n_obs, "")
    monitor = _monitor or Monitor(callbacks, stop_token)
    monitor.emit(TrainingEvent("prepare", 0, 0, message="Preparing the data: normalising, selecting genes, scaling..."))
    batch, batch_notes = batch_of(adata, cfg.batch_key)
    if adata.isbacked:  # read with backed="r": train out of core, minibatches read from the file
        if batch is not None:
            raise ConfigError(
                "batch_key is not available out of core yet: load the file into memory to correct for batches."
            )
        data = prepare_backed(
            adata.filename,
            method=cfg.method,
            n_top_genes=cfg.n_top_genes,
            max_value=cfg.scale_max_value,
            var_names=adata.var_names,
            block_cells=cfg.shuffle_block,
        )
    else:
        data = prepare(
            adata, method=cfg.method, n_top_genes=cfg.n_top_genes, max_value=cfg.scale_max_value, batch=batch
        )
    _check_k(cfg, data.n_cells, " left after dropping all-zero cells")
    truth = adata.obs[label_key].to_numpy(dtype=object)[data.cell_mask] if label_key is not None else None
    pairs = _constraints_for(adata, cfg, data) if isinstance(cfg, SCDCCConfig) else None
    eval_mask = None
    notes = batch_notes + list(data.notes) + (pairs.notes if pairs is not None else [])
    if truth is not None:
        eval_mask = pd.notna(pd.Series(truth)).to_numpy()
        if pairs is not None:
            eval_mask &= ~pairs.used_cells
        if not eval_mask.any():
            note(
                notes,
                f"No held-out labelled cells: every cell of {label_key!r} is missing or was used for constraints, "
                "so ARI/NMI/ACC are not reported.",
            )
    return recipe.pretrain(
        data, cfg, monitor, truth=truth, eval_mask=eval_mask, pairs=pairs, notes=notes, stages=_stages, started=t_start
    )


def recluster(
    adata: ad.AnnData,
    pretrained: Pretrained,
    config: BaseConfig | None = None,
    *,
    constraints: Sequence[cons.Selection] | cons.PairConstraints | None = None,
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
        ``dataclasses.replace(pretrained.cfg, n_clusters=12)``. A method name gives that method's
        default clustering settings on this model. Settings that made the model
        (:data:`~scdeep_core.config.PRETRAINING_SETTINGS`, ``batch_key``, ``n_models``) must be the
        pretraining's: to change them, pretrain again.
    constraints
        scDCC only: pairwise constraints for this clustering stage instead of the pretraining's,
        as selections of cells (:class:`~scdeep_core.constraints.Selection`: ``"same"`` type, or
        ``"different"`` from another selection) or as pairs over ``adata``'s cells. The selected
        cells are left out of the scores; the pairs are kept in ``uns[key_added]["constraints"]``.
        Selections also anchor the initial clusters: each "same" selection's mean is a centre
        that stays put (:func:`~scdeep_core.recipe.seeded_kmeans`).
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
    made_model = [name for name in PRETRAINING_SETTINGS if hasattr(cfg, name)]
    if isinstance(config, str):  # the method's default clustering on this model, which was made as it was
        cfg = dataclasses.replace(cfg, **{name: getattr(pretrained.cfg, name) for name in made_model})
    changed = [name for name in made_model if getattr(cfg, name) != getattr(pretrained.cfg, name)]
    if changed:
        raise ConfigError(
            "These settings made the pretrained model and cannot change in a re-cluster: "
            + ", ".join(
                f"{name} = {getattr(cfg, name)!r} (pretrained with {getattr(pretrained.cfg, name)!r})"
                for name in changed
            )
            + ". Pretrain again to change them, or start from dataclasses.replace(pretrained.cfg, ...)."
        )
    if cfg.batch_key != pretrained.cfg.batch_key:
        raise ConfigError(
            f"batch_key {cfg.batch_key!r} differs from the pretrained model's {pretrained.cfg.batch_key!r}: the batch "
            "correction is part of pretraining, so pretrain again to change it."
        )
    if cfg.n_models != pretrained.cfg.n_models:  # (a stopped pretraining may hold fewer: they are the consensus)
        raise ConfigError(
            f"n_models = {cfg.n_models} differs from the pretrained run's {pretrained.cfg.n_models}: each model of a "
            "consensus is pretrained, so pretrain again to change it."
        )
    _check_k(cfg, pretrained.n_cells, " used for training")
    if adata.n_obs != len(pretrained.data.cell_mask):
        raise InputError(
            f"This AnnData has {adata.n_obs} cells but the model was pretrained on {len(pretrained.data.cell_mask)}."
        )
    pairs, selections, groups, eval_mask = None, [], None, pretrained.eval_mask
    if constraints is not None:
        if cfg.method != "scdcc":
            raise ConfigError("Constraints need scDCC: DESC's clustering stage has no pairwise loss.")
        if isinstance(constraints, cons.PairConstraints):
            pairs = constraints
        else:
            selections = list(constraints)
            pairs = cons.from_selections(selections, adata.obs_names, seed=cfg.seed)
        all_pairs = pairs
        pairs = cons.restrict_to_cells(pairs, pretrained.data.cell_mask)
        if selections:  # each selection is a type by the user's word (a pair file's pairs need not be)
            groups = cons.must_link_groups(pairs, pretrained.n_cells)
        if eval_mask is not None:
            eval_mask = eval_mask & ~pairs.used_cells  # score only the cells the user did not mark
    if _monitor is None:
        monitor = Monitor(
            callbacks, stop_token, pretrained.truth, eval_mask, recipe.run_plan(cfg, pretrained.n_cells, 0)
        )
        monitor.time_left.pretrain_times = recipe.epoch_seconds(pretrained.history)  # to predict a clustering epoch
    else:
        monitor = _monitor
    monitor.eval_mask = eval_mask
    monitor.history = list(pretrained.history)  # each result's history: the pretraining and its own stage
    out = recipe.cluster(pretrained, cfg, monitor, pairs, groups)
    result = ClusteringResult(
        method=pretrained.method,
        key=key_added or pretrained.method,
        config=cfg.to_dict(),
        labels=out.labels,
        q=out.q,
        embedding=out.z,
        centroids=out.centroids,
        cell_mask=pretrained.data.cell_mask,
        history=pd.DataFrame(monitor.history),
        stage=out.stage,
        converged=out.converged,
        scores=monitor.score(out.labels) if pretrained.truth is not None else {},
        eval_mask=eval_mask,
        notes=list(pretrained.notes) + (pairs.notes if pairs is not None else []) + out.notes,
        genes=[str(g) for g in pretrained.data.genes],
        timings={
            "pretrain_s": pretrained.pretrain_s,
            "init_s": out.timings["init_s"],
            "cluster_s": out.timings["cluster_s"],
            "total_s": pretrained.pretrain_s + time.perf_counter() - t0,
            "pretrain_epochs": float(len(pretrained.history)),
            "cluster_epochs": float(out.epochs),
        },
        delta_label=out.delta_label,
        k_selection=out.selection,
        init_scores=out.init_scores,
        batch_scores=_batch_mixing(pretrained, out.z, out.labels),
        consensus=out.consensus,
        start=out.start,
    )
    result.versions["device"] = out.device  # where it trained: part of what reproduces it
    if pairs is not None:
        result.constraints = {
            "pairs": cons.pairs_table(all_pairs, adata.obs_names),
            "selections": [s.to_dict() for s in selections],
        }
    if copy:
        adata = adata.copy()
        result.adata = adata
    write_to_adata(adata, result)
    monitor.emit(
        TrainingEvent(
            "stopped" if result.stage != "done" else "done",
            out.epochs,
            cfg.max_cluster_epochs,
            n_clusters=result.n_clusters,
            ari=result.scores.get("ari"),
            nmi=result.scores.get("nmi"),
            message=result.summary(),
        )
    )
    return result


def _batch_mixing(pre: Pretrained, z: np.ndarray, labels: np.ndarray, max_cells: int = 10_000) -> dict[str, float]:
    """iLISI and batch ASW of the final embedding, when the run had batches (on at most ``max_cells``
    cells, seeded, so large data stays quick). Groups for the ASW: the known labels where given,
    else the clusters."""
    batch = pre.data.batch
    if batch is None:
        return {}
    rows = np.arange(len(batch))
    if len(rows) > max_cells:
        rows = np.sort(np.random.default_rng(pre.cfg.seed).choice(rows, max_cells, replace=False))
    groups = labels
    if pre.truth is not None and pd.notna(pd.Series(pre.truth)).all():
        groups = pre.truth
    return {
        "ilisi": metrics.ilisi(z[rows], batch[rows]),
        "batch_asw": metrics.batch_asw(z[rows], batch[rows], np.asarray(groups)[rows]),
    }


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
