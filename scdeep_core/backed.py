"""Out-of-core training data: minibatches read from an ``.h5ad`` file on disk instead of memory.

:func:`prepare_backed` reads the counts twice, in chunks of rows, and keeps only per-cell and
per-gene statistics (library sizes; each gene's sums of the normalised values, of their squares,
and of the log values and their squares). From them it chooses the highly variable genes the way
``scanpy.pp.highly_variable_genes(flavor="seurat")`` does and the z-scoring of the network
input, as :func:`scdeep_core.pp.prepare` does in memory. :class:`BackedData` then serves
minibatches (network input, and the raw counts for scDCC's ZINB) by reading their rows from the
file, so memory follows the minibatch and the model, not the number of cells.

Minibatches are *block-shuffled*: the cells are cut into blocks of contiguous rows, the blocks
are shuffled, and a window of several blocks is shuffled cell by cell before it is cut into
minibatches. Each read is then a few contiguous slices (fast on disk), while a minibatch still
mixes cells from distant parts of the file (a file sorted by cell type does not give
single-type minibatches).

The counts are read with ``h5py`` from the file's CSR (or dense) matrix: ``layers/counts`` when
present, else ``X`` (the same rule as :func:`scdeep_core.pp.counts_matrix`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import scipy.sparse as sp

from .errors import InputError
from .log import note
from .pp import is_integer_matrix


class CountsFile:
    """Rows of an h5ad's counts matrix, read on demand (CSR groups or dense datasets)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.file = h5py.File(self.path, "r")
        key = "layers/counts" if "layers" in self.file and "counts" in self.file["layers"] else "X"
        self.key = key
        node = self.file[key]
        if isinstance(node, h5py.Dataset):
            self.dense, self.shape = node, tuple(node.shape)
            return
        encoding = node.attrs.get("encoding-type", "")
        encoding = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
        if encoding != "csr_matrix":
            raise InputError(
                f"{Path(self.path).name}: {key} is stored as {encoding or 'an unknown type'}; out-of-core training "
                "reads cells as rows of a CSR matrix. Rewrite it once with adata.X = scipy.sparse.csr_matrix(adata.X) "
                "and adata.write_h5ad(...), or load it into memory."
            )
        self.dense = None
        self.shape = tuple(int(v) for v in node.attrs["shape"])
        self.indptr = node["indptr"][:]  # n_cells + 1 integers: small next to the matrix
        self.data, self.indices = node["data"], node["indices"]

    def slice(self, start: int, stop: int) -> sp.csr_matrix:
        """Rows ``start:stop`` as CSR (float32)."""
        if self.dense is not None:
            return sp.csr_matrix(np.asarray(self.dense[start:stop], dtype=np.float32))
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        return sp.csr_matrix(
            (self.data[lo:hi].astype(np.float32), self.indices[lo:hi], self.indptr[start : stop + 1] - lo),
            shape=(stop - start, self.shape[1]),
        )

    def rows(self, rows: np.ndarray, max_gap: int = 64) -> sp.csr_matrix:
        """Rows in the given order.

        Rows closer than ``max_gap`` are read as one span and the others dropped: a block-shuffled
        minibatch holds a few cells of each of several blocks, and one read per block costs far
        less than one per cell (each read is a separate HDF5 call).
        """
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        sorted_rows = rows[order]
        breaks = np.flatnonzero(np.diff(sorted_rows) > max_gap) + 1
        parts = [
            self.slice(int(run[0]), int(run[-1]) + 1)[run - run[0]]
            for run in np.split(sorted_rows, breaks)
            if len(run)  # np.split of an empty array gives one empty run
        ]
        stacked = sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, self.shape[1]), dtype=np.float32)
        inverse = np.empty_like(order)
        inverse[order] = np.arange(len(order))
        return stacked[inverse]

    def chunks(self, chunk_rows: int):
        """``(start, rows)`` over the whole matrix, ``chunk_rows`` at a time."""
        for start in range(0, self.shape[0], chunk_rows):
            yield start, self.slice(start, min(start + chunk_rows, self.shape[0]))

    def close(self) -> None:
        self.file.close()


def seurat_hvg(mean: np.ndarray, var: np.ndarray, n_top_genes: int, n_bins: int = 20) -> np.ndarray:
    """scanpy's ``flavor="seurat"`` choice of highly variable genes from each gene's mean and variance.

    ``mean`` and ``var`` (ddof 1) are of the normalised, not logged, values, as scanpy computes
    them after ``expm1``. Dispersions are binned by log mean into ``n_bins`` and z-scored within
    their bin; a bin with one gene gives it a normalised dispersion of 1; the top ``n_top_genes``
    are kept (scanpy's ``_highly_variable_genes_single_batch``, reproduced on streamed statistics).
    """
    mean = mean.astype(np.float64).copy()
    mean[mean == 0] = 1e-12
    dispersion = var / mean
    dispersion[dispersion == 0] = np.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        dispersion = np.log(dispersion)
    df = pd.DataFrame({"means": np.log1p(mean), "dispersions": dispersion})
    df["mean_bin"] = pd.cut(df["means"], bins=n_bins)
    stats = df.groupby("mean_bin", observed=True)["dispersions"].agg(avg="mean", dev="std")
    single = stats["dev"].isnull()
    stats.loc[single, "dev"] = stats.loc[single, "avg"]
    stats.loc[single, "avg"] = 0
    per_gene = stats.loc[df["mean_bin"]].set_index(df.index)
    norm = ((df["dispersions"] - per_gene["avg"]) / per_gene["dev"]).to_numpy()
    valid = norm[~np.isnan(norm)]
    n = min(n_top_genes, valid.size)
    cutoff = np.sort(valid)[::-1][n - 1]
    return np.nan_to_num(norm, nan=-np.inf) >= cutoff


@dataclass
class BackedData:
    """The out-of-core counterpart of :class:`scdeep_core.pp.PreparedData` (same interface).

    Holds per-cell and per-gene statistics only; :meth:`scaled_input` and :meth:`counts_rows`
    read the requested cells from the file.
    """

    source: CountsFile
    file_rows: np.ndarray  # file row of each used cell
    gene_cols: np.ndarray  # file column of each kept gene
    norm_factor: np.ndarray  # per used cell: normalised = counts * norm_factor
    gene_mean: np.ndarray
    gene_std: np.ndarray
    max_value: float
    genes: pd.Index
    cell_mask: np.ndarray
    size_factors: np.ndarray | None = None
    uses_counts: bool = False
    block_cells: int = 64
    notes: list[str] = field(default_factory=list)
    batch: np.ndarray | None = None  # no batch correction out of core (refused in prepare_backed)
    batch_names: list[str] = field(default_factory=list)
    _last: tuple[bytes, sp.csr_matrix] | None = field(default=None, repr=False)

    @property
    def n_cells(self) -> int:
        return len(self.file_rows)

    @property
    def n_genes(self) -> int:
        return len(self.gene_cols)

    @property
    def n_batches(self) -> int:
        return 0

    @property
    def counts(self):
        """Truthy when scDCC needs the counts (read per minibatch through :meth:`counts_rows`)."""
        return self if self.uses_counts else None

    def counts_rows(self, rows: np.ndarray) -> sp.csr_matrix:
        """Raw counts of the kept genes for the given cells.

        The last read is kept: a scDCC minibatch asks for its rows twice (network input, ZINB target).
        """
        rows = np.asarray(rows)
        key = rows.tobytes()
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        counts = self.source.rows(self.file_rows[rows])
        if len(self.gene_cols) < counts.shape[1]:  # all genes kept: no column indexing (it copies)
            counts = counts[:, self.gene_cols]
        self._last = (key, counts)
        return counts

    def scaled_input(self, rows: np.ndarray | slice) -> np.ndarray:
        """Dense scaled network input for the given cells (float32), as ``PreparedData`` computes it."""
        rows = np.arange(self.n_cells)[rows] if isinstance(rows, slice) else np.asarray(rows)
        counts = self.counts_rows(rows)
        # Normalise and log the non-zeros only, then densify (as pp.prepare does for the whole matrix).
        log_norm = sp.csr_matrix(
            (counts.data * np.repeat(self.norm_factor[rows], np.diff(counts.indptr)), counts.indices, counts.indptr),
            shape=counts.shape,
        )
        np.log1p(log_norm.data, out=log_norm.data)
        dense = log_norm.toarray()
        dense -= self.gene_mean
        dense /= self.gene_std
        np.clip(dense, -self.max_value, self.max_value, out=dense)
        return dense

    def batch_onehot(self, rows) -> None:
        return None

    def epoch_order(self, rng: np.random.Generator) -> np.ndarray:
        """Block-shuffled order of the cells for one epoch (see the module docstring)."""
        n, block = self.n_cells, self.block_cells
        if block <= 1:  # cell by cell: exactly the in-memory order (train's rng.permutation)
            return rng.permutation(n)
        blocks = [np.arange(s, min(s + block, n)) for s in range(0, n, block)]
        order = np.concatenate([blocks[i] for i in rng.permutation(len(blocks))])
        window = block * 16  # 16 blocks mixed cell by cell: ~4 minibatches of 256
        for s in range(0, n, window):
            order[s : s + window] = rng.permutation(order[s : s + window])
        return order


def prepare_backed(
    path: str | Path,
    *,
    method: str,
    n_top_genes: int = 2000,
    max_value: float = 10.0,
    chunk_rows: int = 10_000,
    var_names: pd.Index | None = None,
    block_cells: int = 64,
) -> BackedData:
    """Statistics for out-of-core training of ``method`` on the h5ad at ``path`` (two passes over it).

    Pass 1: each cell's library size and each gene's number of cells with counts. Pass 2, over the
    used cells: each gene's sums of the normalised values and their squares (for the highly
    variable genes, scanpy's Seurat flavour) and of the log values and their squares (for the
    z-scoring). Normalisation as :func:`scdeep_core.pp.prepare`: DESC to 1e4 counts per cell,
    scDCC by the size factor (library over the median library size). Memory: a few vectors of
    the number of cells and of genes, and one chunk of ``chunk_rows`` cells.

    ``var_names``: the genes' names when the caller already holds them (a backed AnnData's
    ``var_names``); otherwise they are read from the file. ``block_cells``: contiguous cells
    shuffled as one block (1: cell by cell, the same order as in memory).

    Raises
    ------
    InputError
        No usable cells or genes, negative or non-finite values, non-integers for scDCC, or a
        matrix that is not stored by rows.
    """
    source = CountsFile(path)
    n_cells, n_genes = source.shape
    library = np.zeros(n_cells, dtype=np.float64)
    cells_with = np.zeros(n_genes, dtype=np.int64)
    for start, chunk in source.chunks(chunk_rows):
        if chunk.nnz and (not np.all(np.isfinite(chunk.data)) or chunk.data.min() < 0):
            raise InputError("The matrix has NaN, infinite or negative values: give raw counts.")
        if method == "scdcc" and not is_integer_matrix(chunk):
            raise InputError("scDCC models raw counts, but these values are not integers: give the raw counts.")
        library[start : start + chunk.shape[0]] = np.asarray(chunk.sum(axis=1)).ravel()
        cells_with += np.bincount(chunk.indices, minlength=n_genes)
    notes: list[str] = []
    cell_mask, gene_mask = library > 0, cells_with > 0
    if (~cell_mask).sum():
        note(notes, f"Dropped {int((~cell_mask).sum())} all-zero cells.")
    if (~gene_mask).sum():
        note(notes, f"Dropped {int((~gene_mask).sum())} all-zero genes.")
    if cell_mask.sum() < 2 or gene_mask.sum() < 2:
        raise InputError("Fewer than 2 cells or genes have any non-zero value: nothing to cluster.")
    median = np.median(library[cell_mask])
    sf = (library / median).astype(np.float32)
    # Dropped (all-zero) cells get factor 0; divide only where the cell is kept (no 1/0 warning).
    numerator, denominator = (1.0, sf) if method == "scdcc" else (1e4, library)
    factor = np.divide(numerator, denominator, out=np.zeros(n_cells), where=cell_mask)

    sums = np.zeros((4, n_genes), dtype=np.float64)  # norm, norm², log, log²
    for start, chunk in source.chunks(chunk_rows):
        norm = sp.diags(factor[start : start + chunk.shape[0]].astype(np.float32)) @ chunk
        norm = norm.tocsr()
        log = norm.copy()
        log.data = np.log1p(log.data)
        for i, m in enumerate((norm, norm.multiply(norm), log, log.multiply(log))):
            sums[i] += np.asarray(m.sum(axis=0)).ravel()
    n = int(cell_mask.sum())
    mean = sums[[0, 2]] / n
    var = (sums[[1, 3]] / n - mean**2) * n / max(n - 1, 1)
    genes_kept = np.flatnonzero(gene_mask)
    if n_top_genes < len(genes_kept):
        hvg = seurat_hvg(mean[0, genes_kept], var[0, genes_kept], n_top_genes)
        genes_kept = genes_kept[hvg]
        note(notes, f"Kept {int(hvg.sum())} highly variable genes.")
    std = np.sqrt(np.maximum(var[1, genes_kept], 0))
    std[std == 0] = 1.0
    var_names = np.asarray(var_names) if var_names is not None else _var_names(source, n_genes)
    rows = np.flatnonzero(cell_mask)
    return BackedData(
        source=source,
        file_rows=rows,
        gene_cols=genes_kept,
        norm_factor=factor[rows].astype(np.float32),
        gene_mean=mean[1, genes_kept].astype(np.float32),
        gene_std=std.astype(np.float32),
        max_value=float(max_value),
        genes=pd.Index(var_names[genes_kept]),
        cell_mask=cell_mask,
        size_factors=sf[rows] if method == "scdcc" else None,
        uses_counts=method == "scdcc",
        block_cells=int(block_cells),
        notes=notes,
    )


def _var_names(source: CountsFile, n_genes: int) -> np.ndarray:
    """The file's gene names (``var``'s index), or positions when it has none."""
    var = source.file.get("var")
    if var is None:
        return np.array([str(i) for i in range(n_genes)])
    index_key = var.attrs.get("_index", "_index")
    index_key = index_key.decode() if isinstance(index_key, bytes) else index_key
    names = var[index_key][:]
    return np.array([v.decode() if isinstance(v, bytes) else str(v) for v in names])
