"""A catalogue of bad or odd inputs: each gets a clear message (or the right result), never a
traceback, a server path, a crash or a memory blow-up.

Every case builds its file in a temporary folder. ``("error", regex)`` cases must raise
:class:`InputError` whose message matches and names no folder of this machine; ``("ok", check)``
cases must read and pass ``check(adata)``. The bomb cases (files that declare huge matrices)
also run in a fresh process whose peak memory is measured.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from scdeep_core.errors import InputError
from scdeep_core.io import read_counts

ROOT = Path(__file__).resolve().parents[1]
GENES = ["CD3E", "CD79A", "LYZ", "MS4A1", "NKG7", "GNLY", "HLA-DRA", "MT-CO1", "RPL13A", "FCGR3A"]
MOUSE = ["Actb", "Cd74", "Lyz2", "Gm12345", "Rpl13a", "mt-Co1", "Krt8", "Upk3a", "Col1a1", "Dcn"]


def counts(n_cells: int, n_genes: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(2.0, size=(n_cells, n_genes))


def write_table(
    path: Path,
    cells: list[str],
    genes: list[str],
    values: np.ndarray,
    *,
    genes_in_rows=False,
    sep=",",
    encoding="utf-8",
    quote=False,
    corner="",
) -> Path:
    df = pd.DataFrame(values, index=cells, columns=genes)
    if genes_in_rows:
        df = df.T
    text = df.to_csv(sep=sep, index_label=corner or None, quoting=1 if quote else 0)
    path.write_bytes(text.encode(encoding))
    return path


def barcodes(n: int) -> list[str]:
    rng = np.random.default_rng(1)
    return ["".join(rng.choice(list("ACGT"), 16)) + "-1" for _ in range(n)]


# --- builders: (tmp_path) -> (path, kwargs) ----------------------------------------------


def csv_symbols_cells_in_rows(t):  # 500 cells x 300 genes, symbols: must not be read transposed
    genes = [f"{g}{i}" if i >= 10 else g for i, g in enumerate(GENES * 30)][:300]
    return write_table(t / "x.csv", [f"cell{i}" for i in range(500)], genes, counts(500, 300)), {}


def csv_symbols_genes_in_rows(t):
    genes = [f"GENE{i}" for i in range(300)]
    return write_table(t / "x.csv", barcodes(500), genes, counts(500, 300), genes_in_rows=True), {}


def tsv_quoted(t):
    return write_table(t / "x.tsv", [f"cell_{i}" for i in range(40)], GENES, counts(40, 10), sep="\t", quote=True), {}


def csv_one_gene(t):
    return write_table(t / "x.csv", [f"cell{i}" for i in range(30)], ["CD3E"], counts(30, 1)), {}


def csv_mouse_symbols(t):
    return write_table(t / "x.csv", [f"c{i}" for i in range(30)], MOUSE, counts(30, 10)), {}


def csv_ensembl(t):
    return write_table(
        t / "x.csv", [f"ENSG{i:011d}" for i in range(50)], [f"S{i}" for i in range(20)], counts(20, 50).T
    ), {}


def csv_latin1(t):
    return write_table(t / "x.csv", [f"Zelle_ä{i}" for i in range(20)], GENES, counts(20, 10), encoding="latin-1"), {}


def csv_utf16(t):
    return write_table(t / "x.csv", [f"cell{i}" for i in range(20)], GENES, counts(20, 10), encoding="utf-16"), {}


def csv_utf8_bom(t):
    return write_table(t / "x.csv", [f"cell{i}" for i in range(20)], GENES, counts(20, 10), encoding="utf-8-sig"), {}


def csv_multibyte(t):
    return write_table(t / "x.csv", [f"细胞{i}" for i in range(20)], GENES, counts(20, 10), corner="名称"), {
        "orientation": "cells_x_genes"
    }


def csv_semicolon(t):
    return write_table(t / "x.csv", [f"cell{i}" for i in range(20)], GENES, counts(20, 10), sep=";"), {}


def csv_gz(t):
    p = write_table(t / "x.csv", [f"cell{i}" for i in range(20)], GENES, counts(20, 10))
    gz = t / "x.csv.gz"
    gz.write_bytes(gzip.compress(p.read_bytes()))
    return gz, {}


def csv_names_say_nothing(t):
    return write_table(t / "x.csv", [str(i) for i in range(30)], [f"v{i}" for i in range(8)], counts(30, 8)), {}


def csv_names_say_nothing_oriented(t):
    return csv_names_say_nothing(t)[0], {"orientation": "genes_x_cells"}


def csv_duplicates(t):
    return write_table(t / "x.csv", ["cell1", "cell1", "cell2"], ["CD3E", "CD3E", "LYZ"], counts(3, 3) + 1), {}


def text_file(content: str | bytes, name="x.csv"):
    def build(t):
        p = t / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
        return p, {}

    return build


def csv_truncated_gz(t):
    p = write_table(t / "x.csv", [f"cell{i}" for i in range(200)], GENES, counts(200, 10))
    data = gzip.compress(p.read_bytes())
    gz = t / "x.csv.gz"
    gz.write_bytes(data[: len(data) // 2])
    return gz, {}


def pickle_file(t):
    p = t / "x.pkl"
    p.write_bytes(pickle.dumps({"a": 1}))
    return p, {}


def h5ad_small(t, n_cells=30):
    import anndata as ad

    a = ad.AnnData(
        X=sp.csr_matrix(counts(n_cells, 10).astype(np.float32)),
        obs=pd.DataFrame(index=[f"c{i}" for i in range(n_cells)]),
        var=pd.DataFrame(index=GENES),
    )
    p = t / "x.h5ad"
    a.write_h5ad(p)
    return p


def h5ad_truncated(t):
    p = h5ad_small(t, 3000)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p, {}


def h5_huge_dense(layout: str):
    """A tiny chunked, compressed HDF5 file whose matrix declares 200,000 x 100,000."""

    def build(t):
        p = t / {"h5ad": "x.h5ad", "loom": "x.loom", "scdcc": "x.h5", "10x": "x.h5"}[layout]
        with h5py.File(p, "w") as f:
            if layout == "h5ad":
                f.create_dataset("X", shape=(200_000, 100_000), dtype="f4", chunks=(100, 100), compression="gzip")
                f.create_group("obs")
                f.create_group("var")
            elif layout == "loom":
                f.create_dataset("matrix", shape=(100_000, 200_000), dtype="f4", chunks=(100, 100), compression="gzip")
                f.create_group("row_attrs")
                f.create_group("col_attrs")
            elif layout == "scdcc":
                f.create_dataset("X", shape=(200_000, 100_000), dtype="f4", chunks=(100, 100), compression="gzip")
            else:
                g = f.create_group("matrix")
                g.create_dataset("data", shape=(2_000_000_000,), dtype="i4", chunks=(10_000,), compression="gzip")
                g.create_dataset("indices", shape=(2_000_000_000,), dtype="i4", chunks=(10_000,), compression="gzip")
                g["indptr"] = np.zeros(11, dtype=np.int64)
                g["shape"] = np.array([100_000, 10])
                g["barcodes"] = np.array([b"A"] * 10)
        return p, {}

    return build


def h5_unknown_layout(t):
    p = t / "x.h5"
    with h5py.File(p, "w") as f:
        f["something"] = np.arange(5)
    return p, {}


def scdcc_bad_y(t):
    p = t / "x.h5"
    with h5py.File(p, "w") as f:
        f["X"] = counts(20, 10).astype(np.float32)
        f["Y"] = np.arange(7)
    return p, {}


def loom_name_mismatch(t):
    p = t / "x.loom"
    with h5py.File(p, "w") as f:
        f["matrix"] = counts(20, 10).T.astype(np.float32)
        f.create_group("row_attrs")["Gene"] = np.array([b"A", b"B"])
        f.create_group("col_attrs")
    return p, {}


def mtx_folder(t, *, header=None, n_barcodes=20, with_barcodes=True, name="tenx"):
    folder = t / name
    folder.mkdir()
    m = sp.csr_matrix(counts(20, 10).T)
    buf = io.BytesIO()
    scipy.io.mmwrite(buf, m)
    text = buf.getvalue().decode()
    if header is not None:
        lines = text.splitlines()
        size_line = next(i for i, line in enumerate(lines) if not line.startswith("%"))
        lines[size_line] = header
        text = "\n".join(lines) + "\n"
    (folder / "matrix.mtx").write_text(text)
    if with_barcodes:
        (folder / "barcodes.tsv").write_text("\n".join(barcodes(n_barcodes)) + "\n")
    (folder / "features.tsv").write_text(
        "\n".join(f"ENSG{i:011d}\t{g}\tGene Expression" for i, g in enumerate(GENES)) + "\n"
    )
    return folder


def zip_of(folder: Path, target: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in folder.rglob("*"):
            if f.is_file():
                zf.write(f, prefix + str(f.relative_to(folder.parent)))
    return target


def zip_mtx_huge_header(t):  # the 391-byte upload that killed the server
    folder = mtx_folder(t, header="200000 100000 5")
    return zip_of(folder, t / "bomb.zip"), {}


def zip_mtx_huge_dense(t):
    folder = t / "tenx"
    folder.mkdir()
    (folder / "matrix.mtx").write_text("%%MatrixMarket matrix array real general\n200000 100000\n1\n")
    (folder / "barcodes.tsv").write_text("A\n")
    (folder / "features.tsv").write_text("G\tCD3E\n")
    return zip_of(folder, t / "bomb.zip"), {}


def zip_mtx_huge_nnz(t):
    folder = mtx_folder(t, header="10 20 20000000000")
    return zip_of(folder, t / "bomb.zip"), {}


def zip_ok(t):
    return zip_of(mtx_folder(t), t / "ok.zip"), {}


def zip_understated(t):
    """A zip whose headers say each member is 10 bytes while it unpacks to 3 MiB."""
    p = t / "liar.zip"
    with zipfile.ZipFile(p, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("x.csv", "cell,CD3E\n" + "c,1\n" * 800_000)
    data = bytearray(p.read_bytes())
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # uncompressed size in local / central headers
        i = data.find(sig)
        struct.pack_into("<I", data, i + offset, 10)
    p.write_bytes(bytes(data))
    return p, {"max_bytes": 1_000_000}


def zip_declared_over_limit(t):
    return zip_of(mtx_folder(t), t / "ok.zip"), {"max_bytes": 1500}


def zip_unsafe(t):
    p = t / "evil.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("../../evil/matrix.mtx", "x")
    return p, {}


def tar_with(member_name: str, kind: str = "file"):
    def build(t):
        p = t / "x.tar.gz"
        with tarfile.open(p, "w:gz") as tf:
            info = tarfile.TarInfo(member_name)
            if kind == "symlink":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                tf.addfile(info)
            else:
                data = b"cell,CD3E\nc1,1\n"
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
        return p, {}

    return build


def tar_over_limit(t):
    """A small .tar.gz whose member unpacks to 3 MiB, read with a 100 kB limit."""
    p = t / "x.tar.gz"
    data = b"cell,CD3E\n" + b"c,1\n" * 800_000
    with tarfile.open(p, "w:gz") as tf:
        info = tarfile.TarInfo("x.csv")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return p, {"max_bytes": 100_000}


def zip_junk(t):
    p = t / "junk.zip"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("a.txt", "hello")
        zf.writestr("b.txt", "world")
    return p, {}


def zip_nested_csv(t):
    inner = t / "inner.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr(
            "data.csv", pd.DataFrame(counts(6, 4), index=[str(i) for i in range(6)], columns=list("abcd")).to_csv()
        )
    outer = t / "outer.zip"
    with zipfile.ZipFile(outer, "w") as zf:
        zf.write(inner, "inner.zip")
    return outer, {"orientation": "cells_x_genes"}


def zip_nested_deep(t):
    inner = t / "d0.zip"
    with zipfile.ZipFile(inner, "w") as zf:
        zf.writestr("data.csv", "cell,CD3E\nc1,1\n")
    for depth in range(1, 5):
        outer = t / f"d{depth}.zip"
        with zipfile.ZipFile(outer, "w") as zf:
            zf.write(inner, inner.name)
        inner = outer
    return inner, {}


def zip_truncated(t):
    p = zip_of(mtx_folder(t), t / "x.zip")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p, {}


def folder_case(**kw):
    def build(t):
        return mtx_folder(t, **kw), {}

    return build


def lone_mtx(t):
    folder = mtx_folder(t)
    return folder / "matrix.mtx", {}


def empty_folder(t):
    (t / "empty").mkdir()
    return t / "empty", {}


def missing(t):
    return t / "nope.h5ad", {}


def with_kwargs(builder, **kw):
    def build(t):
        p, k = builder(t)
        return p, dict(k, **kw)

    return build


def shape(n_cells, n_genes):
    return lambda a: a.shape == (n_cells, n_genes)


CASES = {
    # text tables
    "csv_symbols_cells_in_rows": (csv_symbols_cells_in_rows, ("ok", shape(500, 300))),
    "csv_symbols_genes_in_rows": (csv_symbols_genes_in_rows, ("ok", shape(500, 300))),
    "tsv_quoted_names": (tsv_quoted, ("ok", lambda a: a.shape == (40, 10) and "CD3E" in a.var_names)),
    "csv_one_gene": (csv_one_gene, ("ok", shape(30, 1))),
    "csv_mouse_symbols": (csv_mouse_symbols, ("ok", shape(30, 10))),
    "csv_ensembl_rows": (csv_ensembl, ("ok", shape(20, 50))),
    "csv_latin1": (csv_latin1, ("ok", lambda a: a.shape == (20, 10) and a.obs_names[0] == "Zelle_ä0")),
    "csv_utf16": (csv_utf16, ("ok", shape(20, 10))),
    "csv_utf8_bom": (csv_utf8_bom, ("ok", lambda a: a.shape == (20, 10) and a.obs_names[0] == "cell0")),
    "csv_multibyte_names": (csv_multibyte, ("ok", lambda a: a.obs_names[0] == "细胞0")),
    "csv_semicolon": (csv_semicolon, ("ok", shape(20, 10))),
    "csv_gz": (csv_gz, ("ok", shape(20, 10))),
    "csv_orientation_unknowable": (
        csv_names_say_nothing,
        ("error", "Cannot tell whether rows or columns are the cells"),
    ),
    "csv_orientation_given": (csv_names_say_nothing_oriented, ("ok", shape(8, 30))),
    "csv_duplicate_names": (csv_duplicates, ("ok", lambda a: a.obs_names.is_unique and a.var_names.is_unique)),
    "csv_empty": (text_file(""), ("error", "empty")),
    "csv_header_only": (text_file("cell,CD3E,LYZ\n"), ("error", "no data|no table")),
    "csv_text_entry": (text_file("cell,CD3E,LYZ\ncell1,1,two\n"), ("error", "non-numeric entries.*'two'")),
    "csv_nan": (text_file("cell,CD3E,LYZ\ncell1,1,nan\ncell2,1,1\n"), ("error", "NaN")),
    "csv_inf": (text_file("cell,CD3E,LYZ\ncell1,1,inf\ncell2,1,1\n"), ("error", "infinite")),
    "csv_overflow": (text_file("cell,CD3E,LYZ\ncell1,1,1e40\ncell2,1,1\n"), ("error", "infinite")),
    "csv_negative": (text_file("cell,CD3E,LYZ\ncell1,1,-3\ncell2,1,1\n"), ("error", "negative")),
    "csv_all_zero": (text_file("cell,CD3E,LYZ\ncell1,0,0\ncell2,0,0\n"), ("error", "every value is zero")),
    "csv_ragged": (text_file("cell,CD3E,LYZ\ncell1,1,2,3,4\ncell2,1\n"), ("error", "could not be parsed|non-numeric")),
    "csv_decimal_values": (
        text_file("cell,CD3E,LYZ\ncell1,1.5,2\ncell2,0.25,1\n"),
        ("ok", lambda a: not a.uns["scdeep_io"]["integer"]),
    ),
    "text_no_separator": (text_file("hello\nworld\n", "x.txt"), ("error", "not like a table")),
    "binary_junk": (text_file(bytes(range(256)) * 8, "x.csv"), ("error", "not a supported format")),
    "nul_bytes": (text_file(b"cell,CD3E\x00\x00\x00\x00\n" * 20, "x.csv"), ("error", "not a supported format")),
    "csv_gz_truncated": (csv_truncated_gz, ("error", "could not be read|could not be parsed")),
    "pickle": (pickle_file, ("error", "not read")),
    "rds_name": (text_file(b"X\n\x00\x00\x00\x03", "x.rds"), ("error", "not read")),
    "parquet_magic": (text_file(b"PAR1\x00\x00", "x.parquet"), ("error", "not read")),
    # HDF5
    "h5ad_truncated": (h5ad_truncated, ("error", "x.h5ad could not be read.*truncated")),
    "h5ad_declares_huge_X": (h5_huge_dense("h5ad"), ("error", "declares .*200,000 x 100,000.*above the limit")),
    "loom_declares_huge_matrix": (h5_huge_dense("loom"), ("error", "declares a dense 100,000 x 200,000 matrix")),
    "scdcc_declares_huge_X": (h5_huge_dense("scdcc"), ("error", "declares a dense 200,000 x 100,000 matrix")),
    "tenx_h5_declares_huge_data": (h5_huge_dense("10x"), ("error", "declares .*2,000,000,000.*above the limit")),
    "h5_unknown_layout": (h5_unknown_layout, ("error", "HDF5 file but not")),
    "scdcc_wrong_label_count": (scdcc_bad_y, ("error", "Y has 7 labels but X has 20 cells")),
    "loom_name_count_mismatch": (loom_name_mismatch, ("error", "2 gene names for a")),
    # 10x folders and archives
    "zip_mtx_wrong_size_line": (zip_mtx_huge_header, ("error", "could not be parsed as Matrix Market")),
    "zip_mtx_declares_huge_dense": (zip_mtx_huge_dense, ("error", "declares a 200,000 x 100,000 matrix.mtx")),
    "zip_mtx_declares_huge_nnz": (zip_mtx_huge_nnz, ("error", "20,000,000,000 values")),
    "zip_10x_ok": (zip_ok, ("ok", shape(20, 10))),
    "zip_header_understates": (zip_understated, ("error", "damaged, or its headers do not match")),
    "zip_over_callers_limit": (zip_declared_over_limit, ("error", "unpacks to .* above the limit")),
    "zip_unsafe_path": (zip_unsafe, ("error", "unsafe path")),
    "tar_parent_path": (tar_with("../../x.csv"), ("error", "unsafe")),
    "tar_absolute_path_kept_inside": (
        tar_with("/tmp/scdeep_evil.csv"),
        ("ok", lambda a: a.shape == (1, 1) and not Path("/tmp/scdeep_evil.csv").exists()),
    ),
    "tar_symlink": (tar_with("link", "symlink"), ("error", "unsafe")),
    "tar_over_callers_limit": (tar_over_limit, ("error", "unpacks to .* above the limit")),
    "zip_without_data": (zip_junk, ("error", "holds no 10x")),
    "zip_nested_csv_keeps_orientation": (zip_nested_csv, ("ok", shape(6, 4))),
    "zip_nested_too_deep": (zip_nested_deep, ("error", "nested more than 3 deep")),
    "zip_truncated": (zip_truncated, ("error", "could not be read|not a supported|not a Matrix|holds no")),
    "mtx_folder_ok": (folder_case(), ("ok", shape(20, 10))),
    "mtx_folder_no_barcodes": (folder_case(with_barcodes=False), ("error", "needs barcodes.tsv")),
    "mtx_folder_barcode_count": (folder_case(n_barcodes=7), ("error", "7 barcodes")),
    "mtx_bad_size_line": (folder_case(header="ten 20 5"), ("error", "not whole numbers")),
    "mtx_short_size_line": (folder_case(header="10 20"), ("error", "should give rows, columns and values")),
    "lone_mtx": (lone_mtx, ("error", "lacks cell and gene names")),
    "folder_without_mtx": (empty_folder, ("error", "folder without matrix.mtx")),
    # arguments
    "missing_file": (missing, ("error", "No such file or folder: nope.h5ad")),
    "limit_zero": (with_kwargs(csv_semicolon, max_bytes=0), ("error", "limit must be positive")),
    "file_over_limit": (with_kwargs(csv_semicolon, max_bytes=100), ("error", "above the limit of 100 bytes")),
    "unknown_format": (with_kwargs(csv_semicolon, fmt="xlsx"), ("error", "Unknown format 'xlsx'")),
    "unknown_orientation": (
        with_kwargs(csv_semicolon, orientation="sideways"),
        ("error", "orientation must be one of"),
    ),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_or_odd_input(name, tmp_path):
    build, (kind, expect) = CASES[name]
    path, kwargs = build(tmp_path)
    if kind == "ok":
        adata = read_counts(path, **kwargs)
        assert expect(adata), (adata.shape, list(adata.obs_names[:3]), list(adata.var_names[:3]))
        return
    with pytest.raises(InputError) as info:
        read_counts(path, **kwargs)
    message = str(info.value)
    assert __import__("re").search(expect, message), message
    assert str(tmp_path) not in message and "Traceback" not in message, message


def test_catalogue_is_large_enough():
    assert len(CASES) >= 60


BOMBS = [
    "zip_mtx_declares_huge_dense",
    "zip_mtx_declares_huge_nnz",
    "h5ad_declares_huge_X",
    "loom_declares_huge_matrix",
    "scdcc_declares_huge_X",
    "tenx_h5_declares_huge_data",
    "zip_header_understates",
]


def test_bombs_stay_small_in_a_fresh_process(tmp_path):
    """Files that declare huge matrices are refused before allocating: peak memory stays far below 2 GB."""
    paths = {}
    for name in BOMBS:
        folder = tmp_path / name
        folder.mkdir()
        p, kw = CASES[name][0](folder)
        paths[name] = (str(p), kw)
    script = (
        "import json, resource, sys\n"
        "from scdeep_core.io import read_counts\nfrom scdeep_core.errors import InputError\n"
        "out = {}\n"
        "for name, (path, kw) in json.loads(sys.argv[1]).items():\n"
        "    try:\n        read_counts(path, **kw); out[name] = 'read'\n"
        "    except InputError as e:\n        out[name] = 'refused'\n"
        "out['peak_mb'] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024\n"
        "print(json.dumps(out))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, json.dumps(paths)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr[-2000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(out[name] == "refused" for name in BOMBS), out
    assert out["peak_mb"] < 2048, out
