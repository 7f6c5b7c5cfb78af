"""scDCC's pairwise constraints: from revealed labels, from a pair file, or from a numeric matrix.

Pairs are indices into the *prepared* cells (all-zero cells removed); the cells used by
any constraint are reported so that scores can be computed on the other cells.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

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
