"""scDCC's pairwise constraints: from revealed labels, from a pair file, or from a numeric matrix.

Pairs are indices into the *prepared* cells (all-zero cells removed); the cells used by
any constraint are reported so that scores can be computed on the other cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from .errors import InputError
from .log import note, noted

ML_NAMES = {"ml", "must-link", "must_link", "mustlink", "must", "1", "true"}
CL_NAMES = {"cl", "cannot-link", "cannot_link", "cannotlink", "cannot", "0", "-1", "false"}


@dataclass
class PairConstraints:
    """Must-link and cannot-link pairs of cell indices, shape ``(n, 2)`` each."""

    must_link: np.ndarray
    cannot_link: np.ndarray
    used_cells: np.ndarray  # bool mask over cells: touched by a constraint (or revealed)
    notes: list[str] = field(default_factory=list)

    @property
    def n_pairs(self) -> int:
        return len(self.must_link) + len(self.cannot_link)


def must_link_groups(pc: PairConstraints, n_cells: int) -> list[np.ndarray]:
    """Cells joined by must-links, directly or through others (the connected components of the
    must-link graph with two cells or more), largest first: each is one type by the user's word."""
    if len(pc.must_link) == 0:
        return []
    ml = pc.must_link
    graph = sp.coo_matrix((np.ones(len(ml)), (ml[:, 0], ml[:, 1])), shape=(n_cells, n_cells))
    _, component = connected_components(graph, directed=False)
    sizes = np.bincount(component)
    order = np.argsort(-sizes, kind="stable")
    return [np.flatnonzero(component == c) for c in order if sizes[c] >= 2]


def _empty() -> np.ndarray:
    return np.zeros((0, 2), dtype=np.int64)


def from_labels(
    labels: pd.Series | np.ndarray,
    *,
    fraction: float,
    n_pairs: int,
    error_rate: float = 0.0,
    seed: int = 0,
) -> PairConstraints:
    """Pairs among a random ``fraction`` of labelled cells (scDCC's simulation of prior knowledge).

    Same label -> must-link, different -> cannot-link; ``error_rate`` flips that fraction
    of pairs. Cells with a missing label are never revealed.
    """
    lab = pd.Series(np.asarray(labels, dtype=object))
    known = np.flatnonzero(lab.notna().to_numpy())
    rng = np.random.default_rng(seed)
    n_reveal = int(round(fraction * len(lab)))
    if n_reveal < 2:
        raise InputError(
            f"Revealing {fraction:.1%} of {len(lab)} cells gives fewer than 2 labelled cells: raise the fraction."
        )
    revealed = rng.choice(known, size=min(n_reveal, len(known)), replace=False)
    a = rng.choice(revealed, size=n_pairs)
    b = rng.choice(revealed, size=n_pairs)
    keep = a != b
    a, b = a[keep], b[keep]
    same = lab.to_numpy()[a] == lab.to_numpy()[b]
    flip = rng.random(len(a)) < error_rate
    same = np.where(flip, ~same, same)
    used = np.zeros(len(lab), dtype=bool)
    used[revealed] = True
    pairs = np.column_stack([a, b]).astype(np.int64)
    return PairConstraints(
        must_link=pairs[same],
        cannot_link=pairs[~same],
        used_cells=used,
        notes=noted(
            f"{int(same.sum())} must-link and {int((~same).sum())} cannot-link pairs from {len(revealed)} "
            "labelled cells."
        ),
    )


def read_pair_file(path: str | Path, cell_names: pd.Index) -> PairConstraints:
    """Read a CSV of pairs: columns ``cell1, cell2, type`` with type ``ml`` or ``cl``.

    Cells are given by name (matched to ``cell_names``) or, when every entry is an
    integer and no name matches, by 0-based position.

    Raises
    ------
    InputError
        Missing columns, unknown type words or cells not in the data (the first few are named).
    """
    try:
        df = pd.read_csv(path, sep=None, engine="python", dtype=str)
    except Exception as exc:  # pandas raises many types for a bad file
        raise InputError(
            f"Could not read the pair file {path}: {exc}. Expected a CSV with columns cell1, cell2, type."
        ) from exc
    df.columns = [c.strip().lower() for c in df.columns]
    missing = {"cell1", "cell2", "type"} - set(df.columns)
    if missing:
        raise InputError(f"The pair file needs columns cell1, cell2, type (ml or cl); missing: {sorted(missing)}.")
    kind = df["type"].str.strip().str.lower()
    bad = ~(kind.isin(ML_NAMES) | kind.isin(CL_NAMES))
    if bad.any():
        raise InputError(
            f"Unknown pair types {sorted(set(kind[bad]))[:5]}: use 'ml' (must-link) or 'cl' (cannot-link)."
        )
    ends = pd.concat([df["cell1"], df["cell2"]]).str.strip()
    position = pd.Series(np.arange(len(cell_names)), index=cell_names)
    if ends.isin(cell_names).all():
        a, b = position[df["cell1"].str.strip()].to_numpy(), position[df["cell2"].str.strip()].to_numpy()
    elif ends.str.fullmatch(r"\d+").all():
        a, b = df["cell1"].astype(int).to_numpy(), df["cell2"].astype(int).to_numpy()
        out = np.concatenate([a, b])
        if out.max() >= len(cell_names):
            raise InputError(
                f"The pair file names cell index {out.max()}, but the data has {len(cell_names)} cells (indices "
                "start at 0)."
            )
    else:
        unknown = sorted(set(ends[~ends.isin(cell_names)]))
        raise InputError(
            f"The pair file names {len(unknown)} cells that are not in the data, e.g. {unknown[:5]}. "
            "Use the cell names of obs_names or 0-based integer positions."
        )
    pairs = np.column_stack([a, b]).astype(np.int64)
    is_ml = kind.isin(ML_NAMES).to_numpy()
    used = np.zeros(len(cell_names), dtype=bool)
    used[pairs.ravel()] = True
    return PairConstraints(
        pairs[is_ml],
        pairs[~is_ml],
        used,
        noted(f"{int(is_ml.sum())} must-link and {int((~is_ml).sum())} cannot-link pairs from {path}."),
    )


def from_matrix(
    matrix: np.ndarray,
    *,
    n_pairs: int,
    ml_percentile: float = 0.5,
    cl_percentile: float = 95.0,
    seed: int = 0,
) -> PairConstraints:
    """Pairs from distances in a numeric matrix such as CITE-seq protein levels.

    Random pairs are drawn; those closer than the ``ml_percentile``-th percentile of their
    distances must link, those farther than the ``cl_percentile``-th cannot; at most
    ``n_pairs`` of each kind are kept.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or not np.all(np.isfinite(m)):
        raise InputError("The constraint matrix must be a 2-D numeric matrix without NaN (one row per cell).")
    rng = np.random.default_rng(seed)
    n_draw = int(min(max(n_pairs * 100 / max(ml_percentile, 1e-3), 10_000), 5_000_000))
    a, b = rng.integers(0, len(m), n_draw), rng.integers(0, len(m), n_draw)
    keep = a != b
    a, b = a[keep], b[keep]
    dist = np.linalg.norm(m[a] - m[b], axis=1)
    lo, hi = np.percentile(dist, [ml_percentile, cl_percentile])
    ml = np.flatnonzero(dist <= lo)[:n_pairs]
    cl = np.flatnonzero(dist >= hi)[:n_pairs]
    pairs = np.column_stack([a, b]).astype(np.int64)
    used = np.zeros(len(m), dtype=bool)
    used[pairs[np.concatenate([ml, cl])].ravel()] = True
    return PairConstraints(
        pairs[ml], pairs[cl], used, noted(f"{len(ml)} must-link and {len(cl)} cannot-link pairs from matrix distances.")
    )


def restrict_to_cells(pc: PairConstraints, cell_mask: np.ndarray) -> PairConstraints:
    """Re-index pairs onto the kept cells (``cell_mask``); pairs touching dropped cells are removed."""
    new_index = np.full(len(cell_mask), -1, dtype=np.int64)
    new_index[cell_mask] = np.arange(int(cell_mask.sum()))

    def remap(p: np.ndarray) -> np.ndarray:
        r = new_index[p] if len(p) else _empty()
        return r[(r >= 0).all(axis=1)] if len(r) else _empty()

    ml, cl = remap(pc.must_link), remap(pc.cannot_link)
    notes = list(pc.notes)
    dropped = len(pc.must_link) + len(pc.cannot_link) - len(ml) - len(cl)
    if dropped:
        note(notes, f"{dropped} pairs touched all-zero cells and were dropped.")
    return PairConstraints(ml, cl, pc.used_cells[cell_mask], notes)


@dataclass
class Selection:
    """Cells a user marked on the embedding: ``kind`` ``"same"`` (they are one type: must-link
    within) or ``"different"`` (they are not the type of the selection ``versus``: cannot-link
    between the two). ``cells`` are names (``obs_names``), so a selection survives re-ordering."""

    cells: list[str]
    kind: Literal["same", "different"] = "same"
    versus: int | None = None  # index of the other selection, for "different"

    def to_dict(self) -> dict:
        return {"cells": list(map(str, self.cells)), "kind": self.kind, "versus": self.versus}

    @classmethod
    def from_dict(cls, d: dict) -> Selection:
        return cls(list(d["cells"]), d.get("kind", "same"), d.get("versus"))


def _sample_pairs(a: np.ndarray, b: np.ndarray | None, max_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Pairs within ``a`` (``b`` is None) or between ``a`` and ``b``: all of them when there are at
    most ``max_pairs``, else ``max_pairs`` drawn at random after a chain that touches every cell
    (so no selected cell is left without a constraint)."""
    if b is None:
        n_all = len(a) * (len(a) - 1) // 2
        if n_all <= max_pairs:
            i, j = np.triu_indices(len(a), k=1)
            return np.column_stack([a[i], a[j]])
        order = rng.permutation(a)
        chain = np.column_stack([order, np.roll(order, -1)])
        extra = rng.choice(len(a), size=(max(max_pairs - len(chain), 0), 2))
        extra = extra[extra[:, 0] != extra[:, 1]]
        return np.concatenate([chain, a[extra]])
    if len(a) * len(b) <= max_pairs:
        i, j = np.meshgrid(np.arange(len(a)), np.arange(len(b)), indexing="ij")
        return np.column_stack([a[i.ravel()], b[j.ravel()]])
    big, small = (a, b) if len(a) >= len(b) else (b, a)
    cover = np.column_stack([big, small[rng.integers(0, len(small), len(big))]])  # every cell of the larger side
    fill = max(max_pairs - len(cover), 0)
    extra = np.column_stack([a[rng.integers(0, len(a), fill)], b[rng.integers(0, len(b), fill)]])
    return np.concatenate([cover, extra])


def from_selections(
    selections: list[Selection], cell_names: pd.Index, *, max_pairs: int = 2000, seed: int = 0
) -> PairConstraints:
    """Pairs from selections drawn on the embedding.

    A ``"same"`` selection gives must-links among its cells; a ``"different"`` one gives
    cannot-links between its cells and those of the selection it names (``versus``). Each
    selection (or pair of selections) gives every pair when there are at most ``max_pairs``,
    else ``max_pairs`` random ones that still touch every cell. A cell in both ends of a
    cannot-link is left out of it.

    Parameters
    ----------
    selections
        In the order the user made them (``versus`` counts from 0).
    cell_names
        The data's ``obs_names``: the pairs are positions in it.
    max_pairs
        Most pairs one selection (or one pair of selections) gives.
    seed
        Seeds the sampling of large selections.

    Returns
    -------
    PairConstraints
        Over the data's cells (restrict it to the prepared cells before training).

    Raises
    ------
    InputError
        A selection names unknown cells, is empty, or a ``"different"`` names no valid selection.
    """
    rng = np.random.default_rng(seed)
    position = pd.Series(np.arange(len(cell_names)), index=cell_names)
    indices = []
    for i, sel in enumerate(selections):
        names = pd.Index(map(str, sel.cells)).unique()
        unknown = names.difference(cell_names)
        if len(unknown):
            raise InputError(
                f"Selection {i + 1} names {len(unknown)} cells that are not in the data, e.g. {list(unknown[:3])}."
            )
        if len(names) == 0:
            raise InputError(f"Selection {i + 1} holds no cells: select some on the embedding.")
        indices.append(position[names].to_numpy(dtype=np.int64))
    ml, cl = [_empty()], [_empty()]
    for i, (sel, cells) in enumerate(zip(selections, indices, strict=True)):
        if sel.kind == "same":
            if len(cells) >= 2:
                ml.append(_sample_pairs(cells, None, max_pairs, rng))
        elif sel.kind == "different":
            if sel.versus is None or not 0 <= sel.versus < len(selections) or sel.versus == i:
                raise InputError(
                    f"Selection {i + 1} is marked 'different' but names no other selection to differ from."
                )
            other = indices[sel.versus]
            mine = np.setdiff1d(cells, other)
            theirs = np.setdiff1d(other, cells)
            if len(mine) and len(theirs):
                cl.append(_sample_pairs(mine, theirs, max_pairs, rng))
        else:
            raise InputError(f"Selection {i + 1} has kind {sel.kind!r}: use 'same' or 'different'.")
    must, cannot = np.concatenate(ml).astype(np.int64), np.concatenate(cl).astype(np.int64)
    used = np.zeros(len(cell_names), dtype=bool)
    for cells in indices:
        used[cells] = True
    return PairConstraints(
        must,
        cannot,
        used,
        noted(
            f"{len(must)} must-link and {len(cannot)} cannot-link pairs from {len(selections)} selections "
            f"({int(used.sum())} cells)."
        ),
    )


def pairs_table(pc: PairConstraints, cell_names: pd.Index) -> pd.DataFrame:
    """The pairs as the pair file :func:`read_pair_file` reads: columns ``cell1, cell2, type``."""
    rows = [(pc.must_link, "ml"), (pc.cannot_link, "cl")]
    return pd.DataFrame(
        {
            "cell1": np.concatenate([np.asarray(cell_names)[p[:, 0]] for p, _ in rows]),
            "cell2": np.concatenate([np.asarray(cell_names)[p[:, 1]] for p, _ in rows]),
            "type": np.concatenate([[t] * len(p) for p, t in rows]),
        }
    )
