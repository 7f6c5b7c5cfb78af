"""The harness of the issue-8 lever scripts: the clustering stage from the same pretrained weights.

Each dev set (true k) and seed pretrains once; the clustering stage then runs from those weights
once per variant, with one function of the engine replaced by the variant's own. The differences
between variants are then the lever's alone, not the pretraining's seed noise.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anndata as ad
import pandas as pd


def given_start(make: Callable[..., Any]) -> Callable[..., Any]:
    """A replacement for ``recipe.initial_clusters`` from a function that gives bare labels."""
    import numpy as np

    from scdeep_core.starts import StartChoice

    def initial_clusters(*args: Any, **kwargs: Any) -> StartChoice:
        labels = make(*args, **kwargs)
        return labels if isinstance(labels, StartChoice) else StartChoice("lever", np.asarray(labels))

    return initial_clusters


def fixed_start(labels: Any) -> Callable[..., Any]:
    """A replacement for ``recipe.initial_clusters`` that always starts from ``labels``."""
    return given_start(lambda *args, **kwargs: labels)


def dev_sets() -> Iterator[tuple[str, ad.AnnData, str, int]]:
    """Each dev set in turn: its name, the data, the label column and the number of labelled types."""
    from .common import DATASETS, SHARED

    warnings.filterwarnings("ignore")
    for name, (file, key, k) in DATASETS.items():
        yield name, ad.read_h5ad(SHARED / file), key, k


def pretrained_per_seed(
    method: str, seeds: Iterable[int] = range(3)
) -> Iterator[tuple[str, ad.AnnData, int, int, Any, Any]]:
    """Each dev set and seed, pretrained once with the true k: ``(name, adata, k, seed, pre, truth)``,
    where ``truth`` holds the labels of the cells ``pre`` kept."""
    from scdeep_core import api
    from scdeep_core.config import config_for

    for name, adata, key, k in dev_sets():
        for seed in seeds:
            pre = api.pretrain(adata, config_for(method, n_clusters=k, seed=seed), label_key=key)
            yield name, adata, k, seed, pre, adata.obs[key].astype(str).to_numpy()[pre.data.cell_mask]


def start_makers(n_neighbors: int) -> dict[str, Callable[..., Any]]:
    """The engine's three starts (:func:`scdeep_core.starts.start_makers`) by the names the start
    levers' tables and CSVs use: ``KMeans``, ``Leiden``, ``Spectral``."""
    from scdeep_core import starts

    engine = starts.start_makers(n_neighbors)
    return {"KMeans": engine["kmeans"], "Leiden": engine["leiden"], "Spectral": engine["spectral"]}


def stage_from(adata: ad.AnnData, pre: Any, start: Any) -> Any:
    """The clustering stage of ``pre`` started from the given labels (the engine's start restored after)."""
    from scdeep_core import api, recipe

    engine_start = recipe.initial_clusters
    recipe.initial_clusters = fixed_start(start)
    try:
        return api.recluster(adata, pre, copy=True)
    finally:
        recipe.initial_clusters = engine_start


def print_k_per_seed(df: pd.DataFrame) -> None:
    """The number of clusters of each variant and dataset, seed by seed (``k`` column)."""
    print(df.groupby(["variant", "dataset"])["k"].agg(lambda v: "/".join(map(str, v))).unstack(0).to_string())


def stage_from_same_weights(
    method: str,
    module: ModuleType,
    attribute: str,
    variants: Callable[[ad.AnnData, Any, int], dict[Any, Callable | dict[tuple[ModuleType, str], Callable] | None]],
    seeds: Iterable[int] = range(3),
    pretraining: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """ARI at the start and the end of the clustering stage for each variant, dev set and seed.

    Parameters
    ----------
    method
        ``"desc"`` or ``"scdcc"``, default config with the true k.
    module, attribute
        The engine function a variant replaces while its stage runs (restored after).
    variants
        ``variants(adata, pretrained, seed)`` gives ``{label: replacement}``: ``None`` keeps the
        engine's own function (today's default); a callable replaces ``module.attribute``; a dict
        ``{(module, attribute): callable}`` replaces several functions at once (levers combined).
    seeds
        Seeds of the pretrainings.
    pretraining
        Settings that differ from the method's default in every pretraining (e.g. ``hidden_dims``).

    Returns
    -------
    pandas.DataFrame
        One row per (dataset, seed, variant): ``start`` and ``end`` ARI, the stage's epochs,
        convergence and times. Each row is also printed as it comes. ``attrs["labels"]`` holds the
        final labels by ``(dataset, variant, seed)``, for the seed-to-seed agreement.
    """
    from scdeep_core import api, metrics
    from scdeep_core.config import config_for

    from .common import DATASETS, SHARED

    warnings.filterwarnings("ignore")
    rows, labels = [], {}
    for name, (file, key, k) in DATASETS.items():
        adata = ad.read_h5ad(SHARED / file)
        for seed in seeds:
            t0 = time.perf_counter()
            cfg = config_for(method, n_clusters=k, seed=seed, **(pretraining or {}))
            pre = api.pretrain(adata, cfg, label_key=key)
            t_pre = time.perf_counter() - t0
            for label, replacement in variants(adata, pre, seed).items():
                patches = replacement if isinstance(replacement, dict) else {(module, attribute): replacement}
                originals = {where: getattr(*where) for where in patches}
                for (mod, name_), function in patches.items():
                    if function is not None and name_ == "initial_clusters":
                        function = given_start(function)  # the variants give bare labels
                    setattr(mod, name_, function or originals[mod, name_])
                try:
                    t0 = time.perf_counter()
                    res = api.recluster(adata, pre, copy=True)
                finally:
                    for (mod, name_), function in originals.items():
                        setattr(mod, name_, function)
                labels[name, label, seed] = res.labels
                truth = adata.obs[key].astype(str).to_numpy()[res.cell_mask]
                rows.append(
                    {
                        "dataset": name,
                        "seed": seed,
                        "variant": label,
                        "start": res.init_scores.get("ari"),
                        "end": metrics.ari(truth, res.labels),
                        "epochs": int(res.timings["cluster_epochs"]),
                        "converged": res.converged,
                        "pretrain_s": round(t_pre, 1),
                        "stage_s": round(time.perf_counter() - t0, 1),
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    df.attrs["labels"] = labels
    return df


def seed_agreement(labels: dict[tuple[str, Any, int], Any]) -> pd.DataFrame:
    """Mean pairwise ARI between the seeds' labels, per variant (rows) and dataset (columns)."""
    import itertools

    import numpy as np

    from scdeep_core import metrics

    seeds: dict[tuple[str, Any], list[int]] = {}
    for name, variant, seed in labels:
        seeds.setdefault((name, variant), []).append(seed)
    agreement = {
        (name, variant): np.mean(
            [metrics.ari(labels[name, variant, a], labels[name, variant, b]) for a, b in itertools.combinations(s, 2)]
        )
        for (name, variant), s in seeds.items()
    }
    return pd.Series(agreement).unstack(0)


def save_rows(df: pd.DataFrame, stem: str) -> None:
    """Write a lever's per-seed rows to ``bench/scratch/<stem>.csv`` (git-ignored), for the agreement
    and paired differences later."""
    out = Path("bench/scratch") / f"{stem}.csv"
    out.parent.mkdir(exist_ok=True)
    df.to_csv(out, index=False)


def print_summary(df: pd.DataFrame, by: str, labels: dict | None = None, extra: tuple[str, ...] = ()) -> None:
    """Print a lever's tables: mean start and end ARI per ``by`` and dataset, the SD of the end,
    the means over datasets (with the ``extra`` columns, e.g. times), and the seed agreement."""
    print(df.groupby([by, "dataset"])[["start", "end"]].mean().unstack(0).round(3).to_string())
    print(df.groupby([by, "dataset"])["end"].std().unstack(1).round(3).to_string())
    print(df.groupby(by)[["start", "end", *extra]].mean().round(3).to_string())
    if labels:
        print("seed-to-seed agreement at the end:")
        print(seed_agreement(labels).round(3).to_string())
