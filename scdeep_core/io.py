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
import re
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
from .log import note
from .pp import is_integer_matrix

__all__ = [
    "read_counts",
    "detect_format",
    "guess_orientation",
    "list_data_files",
    "resolve_in_folder",
    "FORMATS",
    "DEFAULT_MAX_BYTES",
]

DEFAULT_MAX_BYTES = 8 * 1024**3
FORMATS = ("h5ad", "10x_h5", "10x_mtx", "archive", "csv", "loom", "scdcc_h5")
FORMAT_NAMES = {
    "h5ad": "an h5ad file",
    "10x_h5": "a 10x .h5 file",
    "10x_mtx": "a 10x matrix folder",
    "archive": "an archive",
    "csv": "a CSV/TSV table",
    "loom": "a loom file",
    "scdcc_h5": "an scDCC .h5 file",
}
ORIENTATIONS = ("auto", "cells_x_genes", "genes_x_cells")
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
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
            raise InputError(
                f"{p.name} is a folder without matrix.mtx(.gz): a 10x folder needs matrix.mtx, barcodes.tsv and "
                "features.tsv (or genes.tsv)."
            )
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
            raise InputError(
                "A lone matrix.mtx.gz lacks cell and gene names: upload the whole 10x folder as a .zip or .tar.gz."
            )
    elif tarfile.is_tarfile(p):
        return "archive"
    if head.startswith(b"%%MatrixMarket"):
        raise InputError(
            "A lone matrix.mtx lacks cell and gene names: upload the whole 10x folder as a .zip or .tar.gz."
        )
    if head.startswith((b"\x80", b"PAR1")) or p.suffix in (".pkl", ".pickle", ".rds", ".rda"):
        raise InputError(
            f"{p.name}: pickled or R data files are not read (they can execute code). Export counts to h5ad, "
            "10x, CSV or loom."
        )
    text = _decode_text(head)
    if text is None:
        raise InputError(
            f"{p.name} is not a supported format. Give .h5ad, a 10x .h5, a 10x folder (as .zip/.tar.gz), "
            "CSV/TSV, .loom or an scDCC .h5 with X/Y."
        )
    if any(sep in text for sep in (",", "\t", ";", " ")):
        return "csv"
    raise InputError(f"{p.name} looks like text but not like a table: expected CSV/TSV with cells and genes.")


def _text_encoding(head: bytes) -> str | None:
    """The encoding of a text file's first bytes (BOMs, UTF-8, else Latin-1); None for binary data."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "utf-16"
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    if b"\x00" in head:
        return None
    try:
        head.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3:  # a multibyte character cut at the end of the sample
            return "utf-8"
    controls = sum(b < 9 or 13 < b < 32 for b in head)
    return "latin-1" if controls <= len(head) // 100 else None


def _decode_text(head: bytes) -> str | None:
    encoding = _text_encoding(head)
    return None if encoding is None else head.decode(encoding, errors="replace")


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
    if not max_bytes or max_bytes <= 0:
        raise InputError(f"The size limit must be positive, got {max_bytes!r} bytes.")
    if not p.exists():
        raise InputError(f"No such file or folder: {p.name}")
    size = p.stat().st_size if p.is_file() else sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
    if size > max_bytes:
        raise InputError(
            f"{p.name} is {_size(size)}, above the limit of {_size(max_bytes)}. "
            "Subset it first (e.g. keep highly variable genes) or raise the limit (max_bytes / --max-gb)."
        )
    if p.is_file() and size == 0:
        raise InputError(f"{p.name} is empty (0 bytes).")
    if fmt not in FORMATS and fmt != "auto":
        raise InputError(f"Unknown format {fmt!r}: choose one of {FORMATS} or 'auto'.")
    if orientation not in ORIENTATIONS:
        raise InputError(f"orientation must be one of {ORIENTATIONS}, got {orientation!r}.")
    notes: list[str] = []
    try:
        fmt = detect_format(p) if fmt == "auto" else fmt
        if fmt == "csv":
            adata = _read_table(p, orientation, notes)
        elif fmt == "archive":
            adata = _read_archive(p, notes, orientation=orientation, max_bytes=max_bytes)
        else:
            adata = _READERS[fmt](p, notes, max_bytes)
        return _finalise(adata, fmt, p, notes)
    except InputError:
        raise
    except MemoryError:
        raise InputError(
            f"{p.name} does not fit in this machine's memory: subset it (fewer cells or genes) first."
        ) from None
    except Exception as exc:  # a reader's own failure: say which file and why, never a traceback or a server path
        what = f" as {FORMAT_NAMES[fmt]}" if fmt in FORMAT_NAMES else ""
        raise InputError(
            f"{p.name} could not be read{what}: {_without_paths(exc, p)}. "
            "The file may be truncated or not what its name says: export it again."
        ) from exc


def _size(n: float) -> str:
    """Bytes in words: 391 bytes, 12.3 MiB, 14.9 GiB."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} bytes"


def _without_paths(exc: BaseException, p: Path) -> str:
    """An exception's message with the server's folders removed (only file names stay)."""
    text = f"{type(exc).__name__}: {exc}"
    for folder in {str(p.resolve().parent), str(p.parent), tempfile.gettempdir()}:
        if folder and folder != ".":
            text = text.replace(folder + "/", "").replace(folder, "")
    return re.sub(r"(/[^\s/'\"]+)+/([^\s/'\"]+)", r"\2", text)[:300]


def _check_memory(nbytes: float, what: str, p: Path, max_bytes: int) -> None:
    """Refuse before allocating when the matrix a file *declares* would exceed ``max_bytes``."""
    if nbytes > max_bytes:
        raise InputError(
            f"{p.name} declares {what}, which needs {_size(nbytes)} of memory, above the limit of {_size(max_bytes)}. "
            "Subset it first or raise the limit (max_bytes / --max-gb)."
        )


def _sparse_bytes(n_rows: int, nnz: int) -> float:
    """Memory of a float32 CSR matrix (values, int32 indices, int64 row pointers), counted twice for one conversion."""
    return 2.0 * (8.0 * nnz + 8.0 * (n_rows + 1))


# --- a server-side data folder ----------------------------------------------------------

_DATA_SUFFIXES = (
    ".h5ad",
    ".h5",
    ".hdf5",
    ".loom",
    ".zip",
    ".tar",
    ".tar.gz",
    ".tgz",
    ".csv",
    ".tsv",
    ".txt",
    ".csv.gz",
    ".tsv.gz",
    ".txt.gz",
)


def list_data_files(root: str | Path, max_depth: int = 2) -> list[str]:
    """Data files and 10x folders under ``root`` (relative names, sorted), at most ``max_depth`` deep.

    Links that lead outside ``root`` are not listed.
    """
    base = Path(root).resolve()
    found: list[str] = []

    def walk(folder: Path, depth: int) -> None:
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            return
        for entry in entries:
            real = entry.resolve()
            if not real.is_relative_to(base) or entry.name.startswith("."):
                continue
            if real.is_dir():
                if any((real / n).exists() for n in ("matrix.mtx", "matrix.mtx.gz")):
                    found.append(str(entry.relative_to(base)))
                elif depth < max_depth:
                    walk(entry, depth + 1)
            elif entry.name.lower().endswith(_DATA_SUFFIXES):
                found.append(str(entry.relative_to(base)))

    walk(base, 1)
    return found


def resolve_in_folder(root: str | Path, name: str) -> Path:
    """``root / name`` with links resolved; refused unless it stays inside ``root``."""
    base = Path(root).resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(base) or not target.exists():
        raise InputError(f"{Path(name).name!r} is not a file in the data folder.")
    return target


# --- one reader per format ------------------------------------------------------------


def _h5_declared_bytes(p: Path) -> tuple[float, str]:
    """Memory that reading every dataset of an HDF5 file would allocate, from the declared
    shapes (no data is read), and the largest dataset's shape for the message."""
    total, largest = 0.0, (0.0, "")

    def visit(name: str, node) -> None:
        nonlocal total, largest
        if isinstance(node, h5py.Dataset) and node.shape is not None:
            nbytes = float(np.prod(node.shape, dtype=np.float64)) * max(node.dtype.itemsize, 1)
            total += nbytes
            if nbytes > largest[0]:
                largest = (nbytes, f"a dataset '{name}' of shape {' x '.join(f'{d:,}' for d in node.shape)}")

    with h5py.File(p, "r") as f:
        f.visititems(visit)
    return total, largest[1]


def _check_h5(p: Path, max_bytes: int) -> None:
    nbytes, what = _h5_declared_bytes(p)
    _check_memory(nbytes, what or "its datasets", p, max_bytes)


def _read_h5ad(p: Path, notes: list[str], max_bytes: int) -> ad.AnnData:
    _check_h5(p, max_bytes)
    adata = ad.read_h5ad(p)
    if "counts" in adata.layers:
        adata.X = adata.layers["counts"]
        note(notes, "Using layers['counts'] as the counts.")
    elif (
        not is_integer_matrix(adata.X)
        and adata.raw is not None
        and adata.raw.shape == adata.shape
        and is_integer_matrix(adata.raw.X)
    ):
        adata.X = adata.raw.X
        note(notes, "X is not integer; using the integer counts in adata.raw.")
    return adata


def _read_10x_h5(p: Path, notes: list[str], max_bytes: int) -> ad.AnnData:
    import scanpy as sc

    _check_h5(p, max_bytes)
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
        other.X.toarray() if sp.issparse(other.X) else np.asarray(other.X),
        index=adata.obs_names,
        columns=other.var_names.astype(str),
    )
    note(
        notes,
        f"Moved {int((~gex).sum())} non-gene features ({', '.join(sorted(set(types[~gex])))}) to obsm['protein'].",
    )
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


def _mtx_header(path: Path) -> tuple[int, int, int | None]:
    """Rows, columns and stored values a Matrix Market file declares (None for a dense array)."""
    with _open_maybe_gz(path) as fh:
        banner = fh.readline(1024).decode("latin-1").strip().lower()
        if not banner.startswith("%%matrixmarket"):
            raise InputError(f"{path.name} is not a Matrix Market file (it should start with %%MatrixMarket).")
        for _ in range(10_000):
            line = fh.readline(1024).decode("latin-1").strip()
            if line and not line.startswith("%"):
                break
        else:
            raise InputError(f"{path.name} has no size line after its comments.")
    try:
        numbers = [int(v) for v in line.split()]
    except ValueError:
        raise InputError(f"{path.name}: the size line {line[:60]!r} is not whole numbers.") from None
    coordinate = "coordinate" in banner
    if len(numbers) != (3 if coordinate else 2) or min(numbers) < 0:
        raise InputError(
            f"{path.name}: the size line {line[:60]!r} should give rows, columns{' and values' if coordinate else ''}."
        )
    return numbers[0], numbers[1], numbers[2] if coordinate else None


def _read_10x_mtx_dir(p: Path, notes: list[str], max_bytes: int = DEFAULT_MAX_BYTES) -> ad.AnnData:
    folder = _find_mtx_dir(p)
    if folder is None:
        raise InputError(f"No matrix.mtx(.gz) found in {p.name}.")
    barcodes_path = _first(folder, ("barcodes.tsv",))
    features_path = _first(folder, ("features.tsv", "genes.tsv"))
    if barcodes_path is None or features_path is None:
        raise InputError(
            f"The 10x folder {folder.name} needs barcodes.tsv(.gz) and features.tsv(.gz) (or genes.tsv) next to "
            "matrix.mtx."
        )
    mtx = _first(folder, ("matrix.mtx",))
    n_rows, n_cols, nnz = _mtx_header(mtx)
    # parsed from text held in memory (about 24 bytes a value), then stored as CSR
    _check_memory(
        _sparse_bytes(n_cols, nnz) + 24.0 * nnz if nnz is not None else 28.0 * n_rows * n_cols,
        f"a {n_rows:,} x {n_cols:,} matrix.mtx" + (f" with {nnz:,} values" if nnz is not None else ""),
        mtx,
        max_bytes,
    )
    with _open_maybe_gz(mtx) as fh:
        data = fh.read()  # parse while the file is open (a parser thread reading a closed file aborts the process)
    try:
        m = scipy.io.mmread(_io.BytesIO(data))
    except Exception as exc:
        raise InputError(f"matrix.mtx could not be parsed as Matrix Market: {_without_paths(exc, mtx)}") from exc
    del data
    m = sp.csr_matrix(m).T.tocsr()  # 10x stores genes x cells
    barcodes = pd.read_csv(barcodes_path, sep="\t", header=None, dtype=str)[0]
    features = pd.read_csv(features_path, sep="\t", header=None, dtype=str)
    if m.shape != (len(barcodes), len(features)):
        raise InputError(
            f"matrix.mtx is {m.shape[1]} x {m.shape[0]} but there are {len(features)} features and "
            f"{len(barcodes)} barcodes."
        )
    names = features[1] if features.shape[1] > 1 else features[0]
    var = pd.DataFrame({"gene_ids": features[0].to_numpy()}, index=names.to_numpy())
    if features.shape[1] > 2:
        var["feature_types"] = features[2].to_numpy()
    adata = ad.AnnData(X=m, obs=pd.DataFrame(index=barcodes.to_numpy()), var=var)
    return _split_feature_types(adata, notes)


def _extract_zip(p: Path, root: Path, max_bytes: int) -> None:
    """Unpack a zip under ``root``, counting the bytes actually written (headers can lie)."""
    try:
        _unzip(p, root, max_bytes)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as exc:
        raise InputError(
            f"{p.name} is damaged, or its headers do not match its content ({exc}): make the zip again."
        ) from None


def _unzip(p: Path, root: Path, max_bytes: int) -> None:
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
        declared = sum(i.file_size for i in infos)
        if declared > max_bytes:
            raise InputError(f"{p.name} unpacks to {_size(declared)}, above the limit of {_size(max_bytes)}.")
        written = 0
        for info in infos:
            target = (root / info.filename).resolve()
            if not target.is_relative_to(root.resolve()):
                raise InputError(
                    f"{p.name} has an unsafe path {info.filename!r} (outside the archive); refusing to unpack it."
                )
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                while chunk := src.read(1 << 20):
                    written += len(chunk)
                    if written > max_bytes:
                        raise InputError(
                            f"{p.name} unpacks to more than the limit of {_size(max_bytes)} "
                            "(its header understates the size)."
                        )
                    dst.write(chunk)


def _extract_tar(p: Path, root: Path, max_bytes: int) -> None:
    """Unpack a tar(.gz) under ``root``: regular files and folders only, inside ``root``, within the limit."""
    with tarfile.open(p) as tf:
        members = tf.getmembers()
        declared = sum(m.size for m in members if m.isfile())
        if declared > max_bytes:
            raise InputError(f"{p.name} unpacks to {_size(declared)}, above the limit of {_size(max_bytes)}.")
        try:
            tf.extractall(root, members=members, filter="data")  # refuses links and paths outside root
        except tarfile.FilterError as exc:
            raise InputError(
                f"{p.name} has an unsafe entry {getattr(exc, 'tarinfo', None) and exc.tarinfo.name!r} "
                "(a link, or a path outside the archive); refusing to unpack it."
            ) from None


def _read_archive(
    p: Path, notes: list[str], orientation: str = "auto", max_bytes: int = DEFAULT_MAX_BYTES, depth: int = 0
) -> ad.AnnData:
    if depth >= 3:
        raise InputError(f"{p.name}: archives nested more than 3 deep are not read.")
    with tempfile.TemporaryDirectory(prefix="scdeep_") as tmp:
        root = Path(tmp)
        if zipfile.is_zipfile(p):
            _extract_zip(p, root, max_bytes)
        else:
            _extract_tar(p, root, max_bytes)
        if _find_mtx_dir(root) is None:
            inner = [f for f in root.rglob("*") if f.is_file() and not f.name.startswith(("._", ".DS_Store"))]
            if len(inner) == 1:
                note(notes, f"Read {inner[0].name} from inside {p.name}.")
                inner_fmt = detect_format(inner[0])
                if inner_fmt == "archive":
                    return _read_archive(inner[0], notes, orientation, max_bytes, depth + 1)
                if inner_fmt == "csv":
                    return _read_table(inner[0], orientation, notes)
                return _READERS[inner_fmt](inner[0], notes, max_bytes)
            raise InputError(f"{p.name} holds no 10x matrix.mtx(.gz) folder (and not exactly one other data file).")
        note(notes, "Read a 10x folder from an archive.")
        return _read_10x_mtx_dir(root, notes, max_bytes)


def _read_table(p: Path, orientation: str, notes: list[str]) -> ad.AnnData:
    with _open_maybe_gz(p) as fh:
        encoding = _text_encoding(fh.read(65536)) or "latin-1"
    kw = dict(sep=None, engine="python", compression="infer", encoding=encoding, encoding_errors="replace")
    try:
        df = pd.read_csv(p, index_col=0, **kw)
        # pandas renames duplicate header names (G1 -> G1.1) silently; keep the originals so
        # that duplicates are reported and made unique the same way for every format.
        header = pd.read_csv(p, header=None, nrows=1, dtype=str, **kw)
    except pd.errors.EmptyDataError:
        raise InputError(f"{p.name} holds no table.") from None
    except Exception as exc:
        raise InputError(f"{p.name} could not be parsed as CSV/TSV: {_without_paths(exc, p)}") from exc
    if encoding not in ("utf-8", "utf-8-sig"):
        note(notes, f"Read the table as {encoding} text.")
    if header.shape[1] == df.shape[1] + 1:
        df.columns = header.iloc[0, 1:].astype(str).to_numpy()
    df.index = _unquote(df.index)
    df.columns = _unquote(df.columns)
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise InputError(f"{p.name} has no data cells ({df.shape[0]} rows x {df.shape[1]} columns).")
    non_numeric = [j for j in range(df.shape[1]) if not pd.api.types.is_numeric_dtype(df.iloc[:, j])]
    if non_numeric:
        values = df.iloc[:, non_numeric[0]]
        col = df.columns[non_numeric[0]]
        bad = values[pd.to_numeric(values, errors="coerce").isna() & values.notna()]
        example = bad.iloc[0] if len(bad) else "(missing)"
        raise InputError(
            f"{p.name}: column {col!r} has non-numeric entries (e.g. {example!r} in row "
            f"{bad.index[0] if len(bad) else '?'}). "
            f"{len(non_numeric)} column(s) affected. The table must hold only counts, with cell/gene names in "
            "the first column and header."
        )
    if orientation == "auto":
        orientation, why = guess_orientation(df.index, df.columns)
        note(
            notes,
            f"Read the table as {orientation.replace('_', ' ')}: {why} "
            "(pass orientation= / --orientation to override).",
        )
    if orientation == "genes_x_cells":
        df = df.T
    values = df.to_numpy(dtype=np.float32)
    return ad.AnnData(
        X=sp.csr_matrix(values),
        obs=pd.DataFrame(index=df.index.astype(str)),
        var=pd.DataFrame(index=df.columns.astype(str)),
    )


def _unquote(names: pd.Index) -> pd.Index:
    return pd.Index([str(n).strip().strip('"').strip("'") for n in names])


_ENSEMBL = r"^ENS[A-Z]*G\d{6,}"
_SYMBOL = (  # two letters or more: CD3E, HLA-DRA, MT-CO1 (human) or Cd3e, Hla-dra (mouse)
    r"^(?=(?:[^A-Za-z]*[A-Za-z]){2})"
    r"(?:[A-Z][A-Z0-9]{1,9}(?:[-.][A-Z0-9]{1,6})?|[A-Z][a-z][a-z0-9]{0,8}(?:[-.][A-Za-z0-9]{1,6})?)$"
)
_GENE_WORD = r"^(?:gene|feature)[\s_.-]?\d+$"
_CELL_WORD = r"^(?:cell|barcode|sample|c)[\s_.-]?\d+$"


def _name_evidence(names: pd.Index) -> tuple[float, float]:
    """Fractions of ``names`` that look like genes and like cells (barcodes, cell1, ...)."""
    s = pd.Series([str(n) for n in names])
    if s.empty:
        return 0.0, 0.0
    s = s if len(s) <= 5000 else s.sample(5000, random_state=0)
    barcode = s.str.contains(_BARCODE_PATTERN) | s.str.fullmatch(_CELL_WORD, case=False)
    gene = ~barcode & (s.str.contains(_ENSEMBL) | s.str.fullmatch(_SYMBOL) | s.str.fullmatch(_GENE_WORD, case=False))
    return float(gene.mean()), float(barcode.mean())


def guess_orientation(rows: pd.Index, columns: pd.Index) -> tuple[str, str]:
    """``"cells_x_genes"`` or ``"genes_x_cells"`` from the names of rows and columns, and why.

    Gene evidence: Ensembl ids, human or mouse gene symbols (CD3E, Actb, MT-CO1), gene1...;
    cell evidence: barcodes (runs of ACGT), cell1/c1/barcode1. The side whose names look
    like genes is the gene side.

    Raises
    ------
    InputError
        When only the shape could tell: pass the orientation explicitly.
    """
    gene_r, cell_r = _name_evidence(rows)
    gene_c, cell_c = _name_evidence(columns)
    genes_in_rows = (gene_r - gene_c) + (cell_c - cell_r)
    if genes_in_rows > 0.3:
        return "genes_x_cells", f"row names look like genes ({gene_r:.0%}), column names like cells ({cell_c:.0%})"
    if genes_in_rows < -0.3:
        return "cells_x_genes", f"column names look like genes ({gene_c:.0%}), row names like cells ({cell_r:.0%})"
    raise InputError(
        "Cannot tell whether rows or columns are the cells: neither the row names (e.g. "
        f"{', '.join(map(str, rows[:3]))}) "
        f"nor the column names (e.g. {', '.join(map(str, columns[:3]))}) look like gene names or cell barcodes. "
        "Choose the orientation: cells x genes (one row per cell) or genes x cells (one row per gene)."
    )


def _dense_to_csr(ds: h5py.Dataset, p: Path, max_bytes: int, block_bytes: int = 64 * 1024**2) -> sp.csr_matrix:
    """Read a dense 2-D dataset in row blocks into CSR: memory follows the non-zeros (stopped at
    ``max_bytes``), not the declared dense shape."""
    if ds.ndim != 2:
        raise InputError(f"{p.name}: expected a 2-D matrix, found shape {ds.shape}.")
    n_rows, n_cols = ds.shape
    # Every stored value must be read, zeros too: a dense matrix larger than the limit is refused up front.
    _check_memory(4.0 * n_rows * n_cols, f"a dense {n_rows:,} x {n_cols:,} matrix", p, max_bytes)
    step = max(1, block_bytes // max(8 * n_cols, 1))
    parts, stored = [], 0.0
    for start in range(0, n_rows, step):
        block = sp.csr_matrix(np.asarray(ds[start : start + step], dtype=np.float32))
        stored += _sparse_bytes(block.shape[0], block.nnz)
        _check_memory(stored, f"a {n_rows:,} x {n_cols:,} matrix", p, max_bytes)
        parts.append(block)
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((n_rows, n_cols), dtype=np.float32)


def _read_loom(p: Path, notes: list[str], max_bytes: int) -> ad.AnnData:
    with h5py.File(p, "r") as f:
        m = _dense_to_csr(f["matrix"], p, max_bytes).T.tocsr()  # loom stores genes x cells
        row_attrs = {
            k: f["row_attrs"][k][...]
            for k in f.get("row_attrs", {}).keys()
            if f["row_attrs"][k].size <= 10 * m.shape[1] + 10
        }
        col_attrs = {
            k: f["col_attrs"][k][...]
            for k in f.get("col_attrs", {}).keys()
            if f["col_attrs"][k].size <= 10 * m.shape[0] + 10
        }

    def decode(a: np.ndarray) -> np.ndarray:
        return a.astype(str) if a.dtype.kind in ("S", "O") else a

    gene_key = next((k for k in ("Gene", "gene_names", "var_names", "Accession") if k in row_attrs), None)
    cell_key = next((k for k in ("CellID", "obs_names", "cell_names") if k in col_attrs), None)
    genes = decode(row_attrs[gene_key]) if gene_key else np.array([f"g{i}" for i in range(m.shape[1])])
    cells = decode(col_attrs[cell_key]) if cell_key else np.array([f"c{i}" for i in range(m.shape[0])])
    if len(genes) != m.shape[1] or len(cells) != m.shape[0]:
        raise InputError(
            f"{p.name}: {len(cells)} cell names and {len(genes)} gene names for a {m.shape[1]} x {m.shape[0]} matrix."
        )
    obs = pd.DataFrame(
        {k: decode(v) for k, v in col_attrs.items() if k != cell_key and np.ndim(v) == 1 and len(v) == m.shape[0]},
        index=cells,
    )
    return ad.AnnData(X=m, obs=obs, var=pd.DataFrame(index=genes))


def _read_scdcc_h5(p: Path, notes: list[str], max_bytes: int) -> ad.AnnData:
    with h5py.File(p, "r") as f:
        x = f["X"]
        if isinstance(x, h5py.Group):  # sparse layout: data / indices / indptr / shape
            shape = tuple(int(v) for v in x["shape"][...])
            _check_memory(
                _sparse_bytes(shape[0], x["data"].shape[0]), f"a {shape[0]:,} x {shape[1]:,} sparse X", p, max_bytes
            )
            m = sp.csr_matrix((x["data"][...], x["indices"][...], x["indptr"][...]), shape=shape)
        else:
            m = _dense_to_csr(x, p, max_bytes)
        y = f["Y"][...] if "Y" in f and f["Y"].size <= m.shape[0] + 1 else None
        if "Y" in f and y is None:
            raise InputError(f"Y has {f['Y'].size} labels but X has {m.shape[0]} cells.")
    obs = pd.DataFrame(index=[f"c{i}" for i in range(m.shape[0])])
    if y is not None:
        if len(y) != m.shape[0]:
            raise InputError(f"Y has {len(y)} labels but X has {m.shape[0]} cells.")
        obs["label"] = pd.Categorical(y.astype(str) if y.dtype.kind in "SO" else y.astype(int).astype(str))
        note(notes, "Labels from dataset Y are in obs['label'].")
    return ad.AnnData(X=m, obs=obs, var=pd.DataFrame(index=[f"g{i}" for i in range(m.shape[1])]))


_READERS = {
    "h5ad": _read_h5ad,
    "10x_h5": _read_10x_h5,
    "10x_mtx": _read_10x_mtx_dir,
    "loom": _read_loom,
    "scdcc_h5": _read_scdcc_h5,
}


# --- checks shared by every format ------------------------------------------------------


def _finalise(adata: ad.AnnData, fmt: str, p: Path, notes: list[str]) -> ad.AnnData:
    x = adata.X
    x = sp.csr_matrix(x) if not sp.issparse(x) else x.tocsr()
    x = x.astype(np.float32)
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise InputError(f"{p.name} holds an empty matrix ({x.shape[0]} cells x {x.shape[1]} genes).")
    if x.nnz and not np.all(np.isfinite(x.data)):
        raise InputError(
            f"{p.name} has {int((~np.isfinite(x.data)).sum())} NaN or infinite values: fill or drop them before "
            "clustering."
        )
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
        note(notes, f"Made {n_dup} duplicate gene names unique (suffixes -1, -2, ...).")
    if not adata.obs_names.is_unique:
        n_dup = int(adata.obs_names.duplicated().sum())
        adata.obs_names_make_unique()
        note(notes, f"Made {n_dup} duplicate cell names unique.")
    zero_cells = int((np.diff(x.indptr) == 0).sum())
    zero_genes = int((np.bincount(x.indices, minlength=x.shape[1]) == 0).sum())
    if zero_cells:
        note(notes, f"{zero_cells} all-zero cells will be dropped before clustering.")
    if zero_genes:
        note(notes, f"{zero_genes} all-zero genes will be dropped before clustering.")
    integer = is_integer_matrix(x)
    if not integer:
        note(notes, "Values are not integer counts: DESC can use them, scDCC needs raw counts.")
    adata.uns["scdeep_io"] = {"format": fmt, "source": p.name, "integer": bool(integer), "notes": notes or [""]}
    return adata
