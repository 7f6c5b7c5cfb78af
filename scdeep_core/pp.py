"""Preprocessing: QC metrics, filters, size factors, normalisation, HVGs, scaling.

scanpy does the work; these functions pick each method's defaults and never modify the
caller's AnnData (they work on copies or return new arrays).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import anndata as ad
import numpy as np
import pandas as pd
import scanpy as sc
import scipy.sparse as sp

from .errors import InputError
from .log import note

__all__ = [
    "counts_matrix",
    "is_integer_matrix",
    "qc_metrics",
    "filter_cells_genes",
    "size_factors",
    "PreparedData",
    "prepare",
]


def counts_matrix(adata: ad.AnnData) -> sp.csr_matrix:
    """The raw counts of ``adata`` as CSR float32: ``layers["counts"]`` if present, else ``X``."""
    m = adata.layers["counts"] if "counts" in adata.layers else adata.X
    m = sp.csr_matrix(m) if not sp.issparse(m) else m.tocsr()
    return m.astype(np.float32, copy=False)


def is_integer_matrix(m: sp.spmatrix | np.ndarray, tol: float = 1e-3) -> bool:
    """True when every stored value is within ``tol`` of a non-negative integer."""
    data = m.data if sp.issparse(m) else np.asarray(m).ravel()
    if data.size == 0:
        return True
    sample = data if data.size <= 2_000_000 else data[:: data.size // 2_000_000]
    return bool(np.all(sample >= 0) and np.all(np.abs(sample - np.round(sample)) <= tol))


def qc_metrics(adata: ad.AnnData, mito_prefixes: tuple[str, ...] = ("MT-", "mt-", "Mt-")) -> pd.DataFrame:
    """Per-cell QC metrics under scanpy's names.

    Returns a DataFrame indexed like ``adata.obs`` with ``total_counts``,
    ``n_genes_by_counts`` and ``pct_counts_mt`` (0 when no gene name starts with a
    mitochondrial prefix). ``adata`` is not modified.
    """
    tmp = ad.AnnData(
        X=counts_matrix(adata), obs=pd.DataFrame(index=adata.obs_names), var=pd.DataFrame(index=adata.var_names)
    )
    tmp.var["mt"] = tmp.var_names.str.startswith(mito_prefixes)
    obs, _ = sc.pp.calculate_qc_metrics(tmp, qc_vars=["mt"], percent_top=None, log1p=False, inplace=False)
    return obs[["total_counts", "n_genes_by_counts", "pct_counts_mt"]]


def filter_cells_genes(
    adata: ad.AnnData,
    *,
    min_counts: int = 1,
    min_genes: int = 1,
    max_pct_mt: float | None = None,
    min_cells: int = 1,
) -> tuple[ad.AnnData, list[str]]:
    """Drop low-quality cells and rarely seen genes; return a filtered copy and notes.

    Parameters
    ----------
    adata
        Data with counts in ``layers["counts"]`` or ``X``.
    min_counts, min_genes
        Minimal total counts and detected genes per cell.
    max_pct_mt
        Maximal percentage of mitochondrial counts per cell (``None``: no filter).
    min_cells
        Minimal number of cells in which a gene is detected.

    Returns
    -------
    (AnnData, list[str])
        The filtered copy and human-readable notes of what was dropped.
    """
    qc = qc_metrics(adata)
    keep_cells = (qc["total_counts"] >= min_counts) & (qc["n_genes_by_counts"] >= min_genes)
    if max_pct_mt is not None:
        keep_cells &= qc["pct_counts_mt"] <= max_pct_mt
    notes = []
    if (~keep_cells).sum():
        note(notes, f"Dropped {int((~keep_cells).sum())} of {adata.n_obs} cells failing the cell filters.")
    out = adata[keep_cells.to_numpy()].copy()
    detected = np.asarray((counts_matrix(out) > 0).sum(axis=0)).ravel()
    keep_genes = detected >= min_cells
    if (~keep_genes).sum():
        note(
            notes, f"Dropped {int((~keep_genes).sum())} of {out.n_vars} genes detected in fewer than {min_cells} cells."
        )
    out = out[:, keep_genes].copy()
    if out.n_obs == 0 or out.n_vars == 0:
        raise InputError(
            f"No cells or genes are left after filtering ({out.n_obs} cells x {out.n_vars} genes): loosen the filters."
        )
    return out, notes


BATCH_WORDS = ("batch", "sample", "donor", "plate", "run", "lane", "library")


def grouping_columns(adata: ad.AnnData, exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """``obs`` columns that group cells (2..200 values, at most one per two cells, not floats): the
    candidates for known labels and for a batch column. ``exclude``: columns to leave out (e.g.
    the clusters of earlier runs)."""
    obs = adata.obs
    return [
        c
        for c in obs.columns
        if c not in exclude
        and 1 < obs[c].nunique() <= min(200, adata.n_obs // 2)
        and not pd.api.types.is_float_dtype(obs[c])
    ]


def looks_like_batch(column: str) -> bool:
    """Whether a column's name says it holds batches (sample, donor, plate, run...)."""
    return any(word in column.lower() for word in BATCH_WORDS)


def size_factors(counts: sp.spmatrix | np.ndarray) -> np.ndarray:
    """Library size of each cell divided by the median library size (scDCC's size factors)."""
    lib = np.asarray(counts.sum(axis=1)).ravel().astype(np.float64)
    med = np.median(lib[lib > 0]) if np.any(lib > 0) else 1.0
    return (lib / med).astype(np.float32)


@dataclass
class PreparedData:
    """A method's view of the data: what the network reads and what it reconstructs.

    The network input is ``clip((log_norm - gene_mean) / gene_std, ±max_value)``; it is
    computed per minibatch from the sparse ``log_norm`` so memory stays proportional to
    the non-zeros (100k cells fit easily). With batches, ``batch`` holds each cell's batch code
    (``batch_names`` its names), and ``gene_mean`` and ``gene_std`` have one row per batch
    (genes scaled within each batch).
    """

    log_norm: sp.csr_matrix  # cells x genes, normalised + log1p
    gene_mean: np.ndarray
    gene_std: np.ndarray
    max_value: float
    genes: pd.Index
    cell_mask: np.ndarray  # which of the caller's cells are used (all-zero cells are not)
    counts: sp.csr_matrix | None = None  # raw counts of the same genes (scDCC)
    size_factors: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)
    batch: np.ndarray | None = None  # batch code of each cell
    batch_names: list[str] = field(default_factory=list)

    @property
    def n_cells(self) -> int:
        return self.log_norm.shape[0]

    @property
    def n_genes(self) -> int:
        return self.log_norm.shape[1]

    @property
    def n_batches(self) -> int:
        """Number of batches (0 without a batch column)."""
        return len(self.batch_names)

    def scaled_input(self, rows: np.ndarray | slice) -> np.ndarray:
        """Dense scaled network input for the given cells (float32)."""
        dense = self.log_norm[rows].toarray()
        if self.gene_mean.ndim == 2:  # scaled within each batch
            codes = self.batch[rows]
            dense -= self.gene_mean[codes]
            dense /= self.gene_std[codes]
        else:
            dense -= self.gene_mean
            dense /= self.gene_std
        np.clip(dense, -self.max_value, self.max_value, out=dense)
        return dense

    def counts_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        """Raw counts of the given cells (scDCC's ZINB target)."""
        return self.counts[rows]

    def batch_onehot(self, rows: np.ndarray | slice) -> np.ndarray | None:
        """One-hot batch of the given cells (float32), or ``None`` without batches."""
        if self.batch is None:
            return None
        return np.eye(self.n_batches, dtype=np.float32)[self.batch[rows]]


def _gene_scaling(log_norm: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample standard deviation of every gene (1 where a gene does not vary)."""
    mean = np.asarray(log_norm.mean(axis=0)).ravel()
    sq_mean = np.asarray(log_norm.multiply(log_norm).mean(axis=0)).ravel()
    n = log_norm.shape[0]
    var = (sq_mean - mean**2) * n / max(n - 1, 1)
    std = np.sqrt(np.maximum(var, 0))
    std[std == 0] = 1.0
    return mean.astype(np.float32), std.astype(np.float32)


def _batch_codes(batch: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Batch codes 0..n-1 of each cell and the batch names (sorted), refusing tiny batches."""
    codes, names = pd.factorize(pd.Series(batch).astype(str), sort=True)
    sizes = np.bincount(codes, minlength=len(names))
    if (sizes < 2).any():
        tiny = [str(names[i]) for i in np.flatnonzero(sizes < 2)][:5]
        raise InputError(
            f"Batch {', '.join(map(repr, tiny))} has fewer than 2 cells with counts: genes cannot be scaled "
            "within it. Merge it into another batch, drop its cells, or run without a batch column."
        )
    return codes.astype(np.int64), [str(n) for n in names]


def prepare(
    adata: ad.AnnData,
    *,
    method: str,
    n_top_genes: int = 2000,
    max_value: float = 10.0,
    batch: np.ndarray | None = None,
) -> PreparedData:
    """Preprocess ``adata`` the way ``method`` expects, without modifying it.

    DESC: counts normalised to 1e4 per cell, log1p, highly variable genes, z-scored and
    clipped. scDCC: size factors (library / median), normalised, log1p, HVGs, z-scored
    and clipped as input; the raw counts of the same genes and the size factors as the
    ZINB target. All-zero cells and genes are dropped with a note.

    With ``batch`` (one value per cell of ``adata``), highly variable genes are chosen within
    each batch and ranked by how many batches share them (scanpy's ``batch_key``), and the network
    input is z-scored within each batch (DESC's ``scale_bygroup``). scDCC also gets the batch as
    an input of its encoder and decoder (see :class:`~scdeep_core.nets.ClusteringAutoencoder`),
    while its ZINB target stays the raw counts.

    Raises
    ------
    InputError
        Empty data, NaN/negative values, or non-integer values for scDCC.
    """
    counts = counts_matrix(adata)
    if counts.shape[0] == 0 or counts.shape[1] == 0:
        raise InputError(f"The matrix is empty ({counts.shape[0]} cells x {counts.shape[1]} genes).")
    if counts.nnz and (not np.all(np.isfinite(counts.data)) or counts.data.min() < 0):
        raise InputError(
            "The matrix has NaN, infinite or negative values: give raw counts or normalised, non-negative values."
        )
    if method == "scdcc" and not is_integer_matrix(counts):
        raise InputError(
            "scDCC models raw counts with a zero-inflated negative binomial, but these values are not "
            "integers (normalised or log data?). Give the raw counts (e.g. layers['counts']), "
            "or use DESC, which accepts normalised data."
        )
    notes: list[str] = []
    cell_totals = np.asarray(counts.sum(axis=1)).ravel()
    cell_mask = cell_totals > 0
    if (~cell_mask).sum():
        note(notes, f"Dropped {int((~cell_mask).sum())} all-zero cells.")
    gene_mask = np.asarray((counts[cell_mask] > 0).sum(axis=0)).ravel() > 0
    if (~gene_mask).sum():
        note(notes, f"Dropped {int((~gene_mask).sum())} all-zero genes.")
    if cell_mask.sum() < 2 or gene_mask.sum() < 2:
        raise InputError("Fewer than 2 cells or genes have any non-zero value: nothing to cluster.")
    counts = counts[cell_mask][:, gene_mask]
    genes = adata.var_names[gene_mask]
    codes, batch_names = _batch_codes(np.asarray(batch)[cell_mask]) if batch is not None else (None, [])

    sf = size_factors(counts)
    if method == "scdcc":
        norm = sp.diags(1.0 / sf) @ counts  # normalise to the median library size
    else:
        norm = sp.diags(1e4 / np.maximum(cell_totals[cell_mask], 1e-12)) @ counts
    log_norm = norm.tocsr().astype(np.float32)
    log_norm.data = np.log1p(log_norm.data)

    if n_top_genes < log_norm.shape[1]:
        tmp = ad.AnnData(X=log_norm, var=pd.DataFrame(index=genes))
        if codes is not None:
            tmp.obs["batch"] = pd.Categorical(codes)
        sc.pp.highly_variable_genes(
            tmp, n_top_genes=n_top_genes, flavor="seurat", batch_key="batch" if codes is not None else None
        )
        hvg = tmp.var["highly_variable"].to_numpy()
        log_norm, counts, genes = log_norm[:, hvg], counts[:, hvg], genes[hvg]
        note(notes, f"Kept {int(hvg.sum())} highly variable genes.")

    log_norm = log_norm.tocsr()
    if codes is not None:
        per_batch = [_gene_scaling(log_norm[codes == b]) for b in range(len(batch_names))]
        mean, std = np.stack([m for m, _ in per_batch]), np.stack([s for _, s in per_batch])
        note(notes, f"Genes scaled within each of {len(batch_names)} batches.")
    else:
        mean, std = _gene_scaling(log_norm)
    return PreparedData(
        log_norm=log_norm,
        gene_mean=mean,
        gene_std=std,
        max_value=float(max_value),
        genes=genes,
        cell_mask=cell_mask,
        counts=counts.tocsr() if method == "scdcc" else None,
        size_factors=sf if method == "scdcc" else None,
        notes=notes,
        batch=codes,
        batch_names=batch_names,
    )
