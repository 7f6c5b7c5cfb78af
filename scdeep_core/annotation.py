"""Naming clusters as cell types: rename, merge and split, kept as a categorical obs column.

A run's clusters (``obs[f"{key}_cluster"]``) are never changed: the annotation is a copy,
``obs[f"{key}_annotation"]``, that starts as the cluster numbers and that each edit rewrites,
with its colours in ``uns[f"{key}_annotation_colors"]`` (a renamed or merged group keeps its
colour). It travels with the h5ad like any obs column.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from sklearn.cluster import KMeans

from .colours import colour_map, store_colours
from .errors import InputError


def annotation_column(key: str) -> str:
    """The obs column holding the annotation of run ``key``."""
    return f"{key}_annotation"


def start_annotation(adata: ad.AnnData, key: str) -> str:
    """Create ``obs[f"{key}_annotation"]`` from the run's clusters (if not there yet); returns its name."""
    column = annotation_column(key)
    if column not in adata.obs:
        clusters = adata.obs[f"{key}_cluster"]
        adata.obs[column] = pd.Categorical(
            clusters.astype(object).where(clusters.notna(), None), categories=[str(c) for c in clusters.cat.categories]
        )
        store_colours(adata, column, keep=colour_map(adata, f"{key}_cluster"))
    return column


def _check_groups(adata: ad.AnnData, column: str, groups: list[str]) -> None:
    missing = [g for g in groups if g not in adata.obs[column].cat.categories]
    if missing:
        raise InputError(f"No group named {', '.join(map(repr, missing))} in {column}.")


def rename(adata: ad.AnnData, column: str, old: str, new: str) -> None:
    """Rename group ``old`` to ``new`` (e.g. "3" -> "B cells"), keeping its colour.

    Raises
    ------
    InputError
        ``new`` is empty or already names another group (merge them instead).
    """
    _check_groups(adata, column, [old])
    new = new.strip()
    if not new:
        raise InputError("A group name cannot be empty.")
    if new == old:
        return
    if new in adata.obs[column].cat.categories:
        raise InputError(f"{new!r} already names another group: merge {old!r} into it instead.")
    colours = colour_map(adata, column)
    colours[new] = colours.pop(old)
    adata.obs[column] = adata.obs[column].cat.rename_categories({old: new})
    store_colours(adata, column, keep=colours)


def merge(adata: ad.AnnData, column: str, groups: list[str], into: str | None = None) -> str:
    """Put the cells of ``groups`` into one group named ``into`` (default: the first of ``groups``),
    in the first group's place and colour. Returns the merged group's name."""
    if len(groups) < 2:
        raise InputError("Choose at least two groups to merge.")
    _check_groups(adata, column, groups)
    into = (into or groups[0]).strip()
    if not into:
        raise InputError("A group name cannot be empty.")
    if into in adata.obs[column].cat.categories and into not in groups:
        raise InputError(f"{into!r} already names a group that is not being merged: add it to the groups to merge.")
    colours = colour_map(adata, column)
    colours[into] = colours[groups[0]]
    values = adata.obs[column].astype(object)
    values[values.isin(groups)] = into
    # the merged group takes the first group's place in the order
    order = [into if c == groups[0] else c for c in adata.obs[column].cat.categories if c not in groups[1:]]
    adata.obs[column] = pd.Categorical(values, categories=order)
    store_colours(adata, column, keep={c: colours[c] for c in order})
    return into


def split(adata: ad.AnnData, column: str, group: str, embedding_key: str, n_parts: int = 2, seed: int = 0) -> list[str]:
    """Split ``group`` into ``n_parts`` by KMeans on its cells' ``obsm[embedding_key]`` (the run's
    embedding). New groups are named ``group.1``, ``group.2``, ... by size; returns their names.

    KMeans rather than a sub-Leiden (scanpy's ``restrict_to``): the user asks for a number of
    parts, and a resolution does not give one.
    """
    _check_groups(adata, column, [group])
    cells = (adata.obs[column] == group).to_numpy()
    if n_parts < 2:
        raise InputError("Split into at least two parts.")
    if cells.sum() < 2 * n_parts:
        raise InputError(f"{group!r} has {int(cells.sum())} cells: too few to split into {n_parts}.")
    names = [f"{group}.{i + 1}" for i in range(n_parts)]
    taken = [n for n in names if n in adata.obs[column].cat.categories]
    if taken:  # checked before the k-means, not after it
        raise InputError(f"{', '.join(map(repr, taken))} already exist: rename them first.")
    embedding = np.asarray(adata.obsm[embedding_key])[cells]
    parts = KMeans(n_clusters=n_parts, n_init=10, random_state=seed).fit_predict(embedding)
    by_size = np.argsort(-np.bincount(parts, minlength=n_parts), kind="stable")
    rank = np.empty(n_parts, int)
    rank[by_size] = np.arange(n_parts)
    colours = colour_map(adata, column)
    values = adata.obs[column].astype(object)
    values[cells] = [names[r] for r in rank[parts]]
    order = []
    for c in adata.obs[column].cat.categories:
        order += names if c == group else [c]
    adata.obs[column] = pd.Categorical(values, categories=order)
    keep = {c: v for c, v in colours.items() if c != group}
    keep[names[0]] = colours[group]  # the largest part keeps the group's colour
    store_colours(adata, column, keep=keep)
    return names
