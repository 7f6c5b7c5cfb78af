"""Read a counts matrix from any common single-cell format into AnnData.

One entry point, :func:`read_counts`, detects the format from the file's content (not
only its name): ``.h5ad``; 10x Cell Ranger ``.h5``; a 10x ``matrix.mtx(.gz)`` folder or a
``.zip`` / ``.tar.gz`` of one; CSV/TSV (gzipped too); ``.loom``; the scDeepCluster/scDCC
HDF5 layout (datasets ``X`` and optional ``Y``). Nothing is unpickled or executed, and
the source file is never modified.

The result has raw values in ``layers["counts"]`` (and ``X``) as CSR float32, and
``uns["scdeep_io"]`` with the detected format, whether values are integers, and notes.
"""
from __future__ import annotations

import gzip
import io as _io
import tarfile
import tempfile
import zipfile
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import scipy.io
import scipy.sparse as sp

from .errors import InputError
from .pp import is_integer_matrix

__all__ = ["read_counts", "detect_format", "FORMATS", "DEFAULT_MAX_BYTES"]

DEFAULT_MAX_BYTES = 8 * 1024**3
FORMATS = ("h5ad", "10x_h5", "10x_mtx", "archive", "csv", "loom", "scdcc_h5")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_GENE_PATTERN = r"^(ENS[A-Z]*G\d+|MT-|mt-|RP[LS]\d|[A-Z][A-Z0-9-]{1,15}$|[A-Z][a-z0-9-]{1,15}$)"
_BARCODE_PATTERN = r"[ACGT]{10,}"


def detect_format(path: str | Path) -> str:
    """Name of the format of ``path`` (one of :data:`FORMATS`), judged by content.

    Raises
    ------
    InputError
        When the content matches no supported format.
    """
    p = Path(path)
    if p.is_dir():
        if _find_mtx_dir(p) is None:
            raise InputError(f"{p} is a folder without matrix.mtx(.gz): a 10x folder needs matrix.mtx, barcodes.tsv and features.tsv (or genes.tsv).")
        return "10x_mtx"
    with open(p, "rb") as fh:
        head = fh.read(512)
    if head.startswith(_HDF5_MAGIC):
        return _detect_hdf5(p)
    if head.startswith(b"PK\x03\x04"):
        return "archive"
    if head[:2] == b"\x1f\x8b":
        if tarfile.is_tarfile(p):
            return "archive"
        with gzip.open(p, "rb") as fh:
            head = fh.read(512)
        if head.startswith(b"%%MatrixMarket"):
            raise InputError("A lone matrix.mtx.gz lacks cell and gene names: upload the whole 10x folder as a .zip or .tar.gz.")
    elif tarfile.is_tarfile(p):
        return "archive"
    if head.startswith(b"%%MatrixMarket"):
        raise InputError("A lone matrix.mtx lacks cell and gene names: upload the whole 10x folder as a .zip or .tar.gz.")
    if head.startswith((b"\x80", b"PAR1")) or p.suffix in (".pkl", ".pickle", ".rds", ".rda"):
        raise InputError(f"{p.name}: pickled or R data files are not read (they can execute code). Export counts to h5ad, 10x, CSV or loom.")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(
            f"{p.name} is not a supported format. Give .h5ad, a 10x .h5, a 10x folder (as .zip/.tar.gz), CSV/TSV, .loom or an scDCC .h5 with X/Y."
        ) from None
    if any(sep in text for sep in (",", "\t", ";", " ")):
        return "csv"
    raise InputError(f"{p.name} looks like text but not like a table: expected CSV/TSV with cells and genes.")


def _detect_hdf5(p: Path) -> str:
    with h5py.File(p, "r") as f:
        keys = set(f.keys())
        if "obs" in keys and "X" in keys:
            return "h5ad"
        if "matrix" in keys and isinstance(f["matrix"], h5py.Group):
            return "10x_h5"
        if "matrix" in keys and ("row_attrs" in keys or "col_attrs" in keys):
            return "loom"
        if "X" in keys and isinstance(f["X"], (h5py.Dataset, h5py.Group)):
            return "scdcc_h5"
        if keys and all(isinstance(f[k], h5py.Group) and "barcodes" in f[k] for k in keys):
            return "10x_h5"  # Cell Ranger v2: one group per genome
    raise InputError(f"{p.name} is an HDF5 file but not h5ad, 10x .h5, loom, or an scDCC file with datasets X (and Y).")


def read_counts(
    path: str | Path,
    fmt: str = "auto",
    *,
    orientation: str = "auto",
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ad.AnnData:
    """Read a counts matrix (cells x genes) from ``path``.

    Parameters
    ----------
    path
        File or 10x folder.
    fmt
        ``"auto"`` (detect from content) or one of :data:`FORMATS`.
    orientation
        For CSV/TSV: ``"auto"``, ``"cells_x_genes"`` or ``"genes_x_cells"``.
    max_bytes
        Refuse larger files (the message says how to proceed).

    Returns
    -------
    AnnData
        Values in ``X`` and ``layers["counts"]`` (CSR float32), ``uns["scdeep_io"]``
        with ``format``, ``integer`` and ``notes``.

    Raises
    ------
    InputError
        Missing file, unsupported format, non-numeric/NaN/negative values, empty matrix,
        file too large. The message says what to do.
    """
    p = Path(path)
    if not p.exists():
        raise InputError(f"No such file or folder: {p}")
    size = p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    if size > max_bytes:
        raise InputError(
            f"{p.name} is {size / 1024**3:.1f} GiB, above the limit of {max_bytes / 1024**3:.1f} GiB. "
            "Subset it first (e.g. keep highly variable genes) or raise the limit (max_bytes / --max-gb)."
        )
    if p.is_file() and size == 0:
        raise InputError(f"{p.name} is empty (0 bytes).")
    fmt = detect_format(p) if fmt == "auto" else fmt
    if fmt not in FORMATS:
        raise InputError(f"Unknown format {fmt!r}: choose one of {FORMATS} or 'auto'.")
    notes: list[str] = []
    readers = {
        "h5ad": _read_h5ad, "10x_h5": _read_10x_h5, "10x_mtx": _read_10x_mtx_dir, "archive": _read_archive,
        "loom": _read_loom, "scdcc_h5": _read_scdcc_h5,
    }
    if fmt == "csv":
        adata = _read_table(p, orientation, notes)
    else:
        adata = readers[fmt](p, notes)
    return _finalise(adata, fmt, p, notes)


# --- one reader per format ------------------------------------------------------------

def _read_h5ad(p: Path, notes: list[str]) -> ad.AnnData:
    adata = ad.read_h5ad(p)
    if "counts" in adata.layers:
        adata.X = adata.layers["counts"]
        notes.append("Using layers['counts'] as the counts.")
    elif not is_integer_matrix(adata.X) and adata.raw is not None and adata.raw.shape == adata.shape and is_integer_matrix(adata.raw.X):
        adata.X = adata.raw.X
        notes.append("X is not integer; using the integer counts in adata.raw.")
    return adata


def _read_10x_h5(p: Path, notes: list[str]) -> ad.AnnData:
    import scanpy as sc

    adata = sc.read_10x_h5(p, gex_only=False)
    return _split_feature_types(adata, notes)


def _split_feature_types(adata: ad.AnnData, notes: list[str]) -> ad.AnnData:
    """Keep gene expression in X; move antibody capture (CITE-seq) to ``obsm['protein']``."""
    if "feature_types" not in adata.var:
        return adata
    types = adata.var["feature_types"].astype(str)
    gex = (types == "Gene Expression").to_numpy()
    if gex.all() or not gex.any():
        return adata
    other = adata[:, ~gex]
    out = adata[:, gex].copy()
    out.obsm["protein"] = pd.DataFrame(
        other.X.toarray() if sp.issparse(other.X) else np.asarray(other.X), index=adata.obs_names, columns=other.var_names.astype(str)
    )
    notes.append(f"Moved {int((~gex).sum())} non-gene features ({', '.join(sorted(set(types[~gex])))}) to obsm['protein'].")
    return out


def _find_mtx_dir(root: Path) -> Path | None:
    for m in sorted(root.rglob("matrix.mtx*")):
        if m.name in ("matrix.mtx", "matrix.mtx.gz"):
            return m.parent
    return None


def _open_maybe_gz(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def _first(folder: Path, names: tuple[str, ...]) -> Path | None:
    for n in names:
        for cand in (folder / n, folder / f"{n}.gz"):
            if cand.exists():
                return cand
    return None


def _read_10x_mtx_dir(p: Path, notes: list[str]) -> ad.AnnData:
    folder = _find_mtx_dir(p)
    if folder is None:
        raise InputError(f"No matrix.mtx(.gz) found in {p.name}.")
    barcodes_path = _first(folder, ("barcodes.tsv",))
    features_path = _first(folder, ("features.tsv", "genes.tsv"))
    if barcodes_path is None or features_path is None:
        raise InputError(f"The 10x folder {folder.name} needs barcodes.tsv(.gz) and features.tsv(.gz) (or genes.tsv) next to matrix.mtx.")
    with _open_maybe_gz(_first(folder, ("matrix.mtx",))) as fh:
        try:
            m = scipy.io.mmread(fh)
        except Exception as exc:
            raise InputError(f"matrix.mtx could not be parsed as Matrix Market: {exc}") from exc
    m = sp.csr_matrix(m).T.tocsr()  # 10x stores genes x cells
    barcodes = pd.read_csv(barcodes_path, sep="\t", header=None, dtype=str)[0]
    features = pd.read_csv(features_path, sep="\t", header=None, dtype=str)
    if m.shape != (len(barcodes), len(features)):
        raise InputError(f"matrix.mtx is {m.shape[1]} x {m.shape[0]} but there are {len(features)} features and {len(barcodes)} barcodes.")
    names = features[1] if features.shape[1] > 1 else features[0]
    var = pd.DataFrame({"gene_ids": features[0].to_numpy()}, index=names.to_numpy())
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    adata = ad.AnnData(X=m, obs=pd.DataFrame(index=barcodes.to_numpy()), var=var)
    return _split_feature_types(adata, notes)


def _read_archive(p: Path, notes: list[str]) -> ad.AnnData:
    with tempfile.TemporaryDirectory(prefix="scdeep_") as tmp:
        root = Path(tmp)
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as zf:
                total = sum(i.file_size for i in zf.infolist())
                if total > DEFAULT_MAX_BYTES:
                    raise InputError(f"The archive unpacks to {total / 1024**3:.1f} GiB: too large.")
                for info in zf.infolist():
                    target = (root / info.filename).resolve()
                    if not str(target).startswith(str(root.resolve())):
                        raise InputError(f"The archive has an unsafe path {info.filename!r}; refusing to unpack it.")
                zf.extractall(root)
        else:
            with tarfile.open(p) as tf:
                tf.extractall(root, filter="data")  # refuses links and paths outside root
        if _find_mtx_dir(root) is None:
            inner = [f for f in root.rglob("*") if f.is_file()]
            if len(inner) == 1:
                return read_counts(inner[0])
            raise InputError("The archive holds no 10x matrix.mtx(.gz) folder (and not exactly one other data file).")
        notes.append("Read a 10x folder from an archive.")
        return _read_10x_mtx_dir(root, notes)


def _read_table(p: Path, orientation: str, notes: list[str]) -> ad.AnnData:
    try:
        df = pd.read_csv(p, sep=None, engine="python", index_col=0, compression="infer")
    except Exception as exc:
        raise InputError(f"{p.name} could not be parsed as CSV/TSV: {exc}") from exc
    # pandas renames duplicate header names (G1 -> G1.1) silently; keep the originals so
    # that duplicates are reported and made unique the same way for every format.
    header = pd.read_csv(p, sep=None, engine="python", header=None, nrows=1, compression="infer", dtype=str)
    if header.shape[1] == df.shape[1] + 1:
        df.columns = header.iloc[0, 1:].astype(str).to_numpy()
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InputError(f"{p.name} has no data cells ({df.shape[0]} rows x {df.shape[1]} columns).")
    non_numeric = [j for j in range(df.shape[1]) if not pd.api.types.is_numeric_dtype(df.iloc[:, j])]
    if non_numeric:
        values = df.iloc[:, non_numeric[0]]
        col = df.columns[non_numeric[0]]
        bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
        example = bad.iloc[0] if len(bad) else "(missing)"
        raise InputError(
            f"{p.name}: column {col!r} has non-numeric entries (e.g. {example!r} in row {bad.index[0] if len(bad) else '?'}). "
            f"{len(non_numeric)} column(s) affected. The table must hold only counts, with cell/gene names in the first column and header."
        )
    if orientation == "auto":
        orientation = _guess_orientation(df)
        notes.append(f"Read the table as {orientation.replace('_', ' ')} (guessed; pass orientation= to override).")
    if orientation == "genes_x_cells":
        df = df.T
    elif orientation != "cells_x_genes":
        raise InputError(f"orientation must be 'auto', 'cells_x_genes' or 'genes_x_cells', got {orientation!r}.")
    values = df.to_numpy(dtype=np.float64)
    return ad.AnnData(X=sp.csr_matrix(values.astype(np.float32)), obs=pd.DataFrame(index=df.index.astype(str)), var=pd.DataFrame(index=df.columns.astype(str)))


def _guess_orientation(df: pd.DataFrame) -> str:
    """Genes are recognised by name patterns, barcodes by ACGT runs; else the longer side is genes."""
    idx, cols = pd.Series(df.index.astype(str)), pd.Series(df.columns.astype(str))
    idx_barcode, col_barcode = idx.str.contains(_BARCODE_PATTERN).mean(), cols.str.contains(_BARCODE_PATTERN).mean()
    if idx_barcode > 0.5 > col_barcode:
        return "cells_x_genes"
    if col_barcode > 0.5 > idx_barcode:
        return "genes_x_cells"
    idx_gene, col_gene = idx.str.contains(r"^ENS[A-Z]*G\d", regex=True).mean(), cols.str.contains(r"^ENS[A-Z]*G\d", regex=True).mean()
    if idx_gene > 0.5 > col_gene:
        return "genes_x_cells"
    if col_gene > 0.5 > idx_gene:
        return "cells_x_genes"
    return "genes_x_cells" if df.shape[0] > df.shape[1] else "cells_x_genes"


def _read_loom(p: Path, notes: list[str]) -> ad.AnnData:
    with h5py.File(p, "r") as f:
        m = sp.csr_matrix(f["matrix"][...].T)  # loom stores genes x cells
        row_attrs = {k: f["row_attrs"][k][...] for k in f.get("row_attrs", {}).keys()}
        col_attrs = {k: f["col_attrs"][k][...] for k in f.get("col_attrs", {}).keys()}

    def decode(a: np.ndarray) -> np.ndarray:
        return a.astype(str) if a.dtype.kind in ("S", "O") else a

    gene_key = next((k for k in ("Gene", "gene_names", "var_names", "Accession") if k in row_attrs), None)
    cell_key = next((k for k in ("CellID", "obs_names", "cell_names") if k in col_attrs), None)
    genes = decode(row_attrs[gene_key]) if gene_key else np.array([f"g{i}" for i in range(m.shape[1])])
    cells = decode(col_attrs[cell_key]) if cell_key else np.array([f"c{i}" for i in range(m.shape[0])])
    obs = pd.DataFrame({k: decode(v) for k, v in col_attrs.items() if k != cell_key and np.ndim(v) == 1}, index=cells)
    return ad.AnnData(X=m, obs=obs, var=pd.DataFrame(index=genes))


def _read_scdcc_h5(p: Path, notes: list[str]) -> ad.AnnData:
    with h5py.File(p, "r") as f:
        x = f["X"]
        if isinstance(x, h5py.Group):  # sparse layout: data / indices / indptr / shape
            m = sp.csr_matrix((x["data"][...], x["indices"][...], x["indptr"][...]), shape=tuple(x["shape"][...]))
        else:
            m = sp.csr_matrix(np.asarray(x[...], dtype=np.float32))
        y = f["Y"][...] if "Y" in f else None
    obs = pd.DataFrame(index=[f"c{i}" for i in range(m.shape[0])])
    if y is not None:
        if len(y) != m.shape[0]:
            raise InputError(f"Y has {len(y)} labels but X has {m.shape[0]} cells.")
        obs["label"] = pd.Categorical(y.astype(str) if y.dtype.kind in "SO" else y.astype(int).astype(str))
        notes.append("Labels from dataset Y are in obs['label'].")
    return ad.AnnData(X=m, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(m.shape[1])]))


# --- checks shared by every format ------------------------------------------------------

def _finalise(adata: ad.AnnData, fmt: str, p: Path, notes: list[str]) -> ad.AnnData:
    x = adata.X
    x = sp.csr_matrix(x) if not sp.issparse(x) else x.tocsr()
    x = x.astype(np.float32)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{p.name} holds an empty matrix ({x.shape[0]} cells x {x.shape[1]} genes).")
    if x.nnz and not np.all(np.isfinite(x.data)):
        raise InputError(f"{p.name} has {int((~np.isfinite(x.data)).sum())} NaN or infinite values: fill or drop them before clustering.")
    if x.nnz and x.data.min() < 0:
        raise InputError(
            f"{p.name} has {int((x.data < 0).sum())} negative values (min {x.data.min():.3g}): give raw counts "
            "or normalised non-negative values, not scaled data."
        )
    if x.nnz == 0:
        raise InputError(f"{p.name}: every value is zero; there is nothing to cluster.")
    x.eliminate_zeros()
    adata.X = x
    adata.layers["counts"] = x
    if not adata.var_names.is_unique:
        n_dup = int(adata.var_names.duplicated().sum())
        adata.var_names_make_unique()
        notes.append(f"Made {n_dup} duplicate gene names unique (suffixes -1, -2, ...).")
    if not adata.obs_names.is_unique:
        n_dup = int(adata.obs_names.duplicated().sum())
        adata.obs_names_make_unique()
        notes.append(f"Made {n_dup} duplicate cell names unique.")
    zero_cells = int((np.diff(x.indptr) == 0).sum())
    zero_genes = int((np.bincount(x.indices, minlength=x.shape[1]) == 0).sum())
    if zero_cells:
        notes.append(f"{zero_cells} all-zero cells will be dropped before clustering.")
    if zero_genes:
        notes.append(f"{zero_genes} all-zero genes will be dropped before clustering.")
    integer = is_integer_matrix(x)
    if not integer:
        notes.append("Values are not integer counts: DESC can use them, scDCC needs raw counts.")
    adata.uns["scdeep_io"] = {"format": fmt, "source": p.name, "integer": bool(integer), "notes": notes or [""]}
    return adata
