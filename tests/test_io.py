"""Reading every supported format, and clear errors for bad input."""

import gzip
import shutil
import tarfile
import zipfile

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.sparse as sp

from scdeep_core.errors import InputError
from scdeep_core.io import detect_format, read_counts


@pytest.fixture(scope="module")
def small(pbmc_demo):
    """First 60 cells x 80 genes of the real PBMC demo (integer counts)."""
    a = pbmc_demo[:60, :80].copy()
    a.var_names = [f"GENE{i}" for i in range(a.n_vars)]
    a.obs_names = [f"AAACCTGAGC{i:06d}".replace("0", "A")[:16] + f"-{i}" for i in range(a.n_obs)]
    return a


def dense(a):
    return a.layers["counts"].toarray()


def write_mtx_folder(a, folder, gz=True):
    folder.mkdir(parents=True)
    mtx = folder / "matrix.mtx"
    scipy.io.mmwrite(mtx, sp.csr_matrix(a.layers["counts"]).T.astype(int))
    pd.DataFrame({"b": a.obs_names}).to_csv(folder / "barcodes.tsv", sep="\t", header=False, index=False)
    pd.DataFrame(
        {"id": [f"ENSG{i:011d}" for i in range(a.n_vars)], "name": a.var_names, "type": "Gene Expression"}
    ).to_csv(folder / "features.tsv", sep="\t", header=False, index=False)
    if gz:
        for f in list(folder.iterdir()):
            with open(f, "rb") as src, gzip.open(f"{f}.gz", "wb") as dst:
                shutil.copyfileobj(src, dst)
            f.unlink()
    return folder


def test_h5ad_roundtrip_keeps_counts_and_source(small, tmp_path):
    path = tmp_path / "x.h5ad"
    small.write_h5ad(path)
    before = path.read_bytes()
    a = read_counts(path)
    assert a.uns["scdeep_io"]["format"] == "h5ad" and a.uns["scdeep_io"]["integer"]
    np.testing.assert_array_equal(dense(a), dense(small))
    assert path.read_bytes() == before  # never modified


def test_10x_folder_zip_and_targz(small, tmp_path):
    folder = write_mtx_folder(small, tmp_path / "filtered_feature_bc_matrix")
    for path in (folder,):
        a = read_counts(path)
        np.testing.assert_array_equal(dense(a), dense(small))
        assert list(a.var_names) == list(small.var_names)
    z = tmp_path / "tenx.zip"
    with zipfile.ZipFile(z, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f"filtered_feature_bc_matrix/{f.name}")
    t = tmp_path / "tenx.tar.gz"
    with tarfile.open(t, "w:gz") as tf:
        tf.add(folder, arcname="filtered_feature_bc_matrix")
    for path in (z, t):
        assert detect_format(path) == "archive"
        np.testing.assert_array_equal(dense(read_counts(path)), dense(small))


def test_10x_h5(small, tmp_path):
    m = sp.csc_matrix(small.layers["counts"].T.astype(np.int32))  # genes x cells, CSC by cell
    path = tmp_path / "filtered_feature_bc_matrix.h5"
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"], g["indices"], g["indptr"] = m.data, m.indices, m.indptr
        g["shape"] = np.array(m.shape)
        g["barcodes"] = np.array(small.obs_names, dtype="S")
        feat = g.create_group("features")
        feat["id"] = np.array([f"ENSG{i}" for i in range(small.n_vars)], dtype="S")
        feat["name"] = np.array(small.var_names, dtype="S")
        feat["feature_type"] = np.array(["Gene Expression"] * small.n_vars, dtype="S")
        feat["genome"] = np.array(["GRCh38"] * small.n_vars, dtype="S")
        feat["_all_tag_keys"] = np.array([b"genome"])
    assert detect_format(path) == "10x_h5"
    np.testing.assert_array_equal(dense(read_counts(path)), dense(small))


@pytest.mark.parametrize("sep,suffix", [(",", ".csv"), ("\t", ".tsv.gz")])
def test_csv_orientation_detected_and_overridable(small, tmp_path, sep, suffix):
    df = pd.DataFrame(dense(small).T.astype(int), index=small.var_names, columns=small.obs_names)  # genes x cells
    path = tmp_path / f"counts{suffix}"
    df.to_csv(path, sep=sep)
    a = read_counts(path)
    assert a.shape == small.shape  # barcodes recognised in the header
    np.testing.assert_array_equal(dense(a), dense(small))
    b = read_counts(path, orientation="cells_x_genes")
    assert b.shape == (small.n_vars, small.n_obs)


def test_loom_and_scdcc_h5(small, tmp_path):
    loom = tmp_path / "x.loom"
    with h5py.File(loom, "w") as f:
        f["matrix"] = dense(small).T
        f.create_group("row_attrs")["Gene"] = np.array(small.var_names, dtype="S")
        ca = f.create_group("col_attrs")
        ca["CellID"] = np.array(small.obs_names, dtype="S")
        ca["cell_type"] = np.array(small.obs["bulk_labels"].astype(str), dtype="S")
    a = read_counts(loom)
    assert detect_format(loom) == "loom" and list(a.obs["cell_type"]) == list(small.obs["bulk_labels"].astype(str))
    np.testing.assert_array_equal(dense(a), dense(small))
    h5 = tmp_path / "scdcc.h5"
    with h5py.File(h5, "w") as f:
        f["X"] = dense(small)
        f["Y"] = small.obs["bulk_labels"].cat.codes.to_numpy()
    b = read_counts(h5)
    assert detect_format(h5) == "scdcc_h5" and b.obs["label"].nunique() == small.obs["bulk_labels"].nunique()


def test_unknown_format(tmp_path):
    p = tmp_path / "x.bin"
    p.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not a supported format"):
        read_counts(p)


def test_pickle_is_refused_not_loaded(tmp_path):
    import pickle

    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(InputError, match="not read"):
        read_counts(p)


def test_csv_with_text_entries(tmp_path):
    p = tmp_path / "bad.csv"
    p.write_text("gene,c1,c2\nA,1,2\nB,three,4\n")
    with pytest.raises(InputError, match="non-numeric entries.*'three'"):
        read_counts(p)


@pytest.mark.parametrize("value,match", [("-1", "negative"), ("nan", "NaN")])
def test_negative_or_nan_values(tmp_path, value, match):
    p = tmp_path / "bad.csv"
    p.write_text(f"cell,GENE1,GENE2\nc1,1,{value}\nc2,3,4\n")
    with pytest.raises(InputError, match=match):
        read_counts(p, orientation="cells_x_genes")


def test_empty_and_all_zero(tmp_path):
    p = tmp_path / "empty.csv"
    p.write_text("")
    with pytest.raises(InputError, match="empty"):
        read_counts(p)
    z = tmp_path / "zero.csv"
    z.write_text("cell,G1,G2\nc1,0,0\nc2,0,0\n")
    with pytest.raises(InputError, match="every value is zero"):
        read_counts(z, orientation="cells_x_genes")


def test_all_zero_rows_noted_and_duplicate_genes_made_unique(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("cell,G1,G1,G2\nc1,1,2,0\nc2,0,0,0\nc3,4,0,1\n")
    a = read_counts(p, orientation="cells_x_genes")
    notes = " ".join(a.uns["scdeep_io"]["notes"])
    assert a.var_names.is_unique and "duplicate gene names" in notes and "1 all-zero cells" in notes


def test_non_integer_values_are_noted(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("cell,G1,G2\nc1,1.5,2\nc2,0.3,1\n")
    a = read_counts(p, orientation="cells_x_genes")
    assert a.uns["scdeep_io"]["integer"] is False


def test_too_large_and_missing(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("cell,G1\nc1,1\n")
    with pytest.raises(InputError, match="above the limit"):
        read_counts(p, max_bytes=5)
    with pytest.raises(InputError, match="No such file"):
        read_counts(tmp_path / "nope.h5ad")


def test_zip_with_unsafe_path_is_refused(tmp_path):
    z = tmp_path / "evil.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("../../evil/matrix.mtx", "x")
    with pytest.raises(InputError, match="unsafe path"):
        read_counts(z)
