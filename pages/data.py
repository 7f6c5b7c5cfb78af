"""Data page: load counts (built-in, upload or server path), inspect them, QC and filter."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import KEEP, DatasetBusyError, end_page, require_app, session_figure, set_dataset
from scdeep_core import datasets, figures, io, pp, static_figures
from scdeep_core.errors import InputError
from scdeep_core.results import result_columns

require_app()
ss = st.session_state
st.title("Data")
# Reading server files is off unless the operator names one folder (never the whole file system).
DATA_DIR = os.environ.get("SCDEEP_DATA_DIR")
SOURCES = ["Built-in dataset", "Upload a file"] + (["Data folder on the server"] if DATA_DIR else [])
loaded_now = st.empty()  # filled once this run's loading is done: the loaders show what *could* be loaded
source = st.radio("Load other data from", SOURCES, horizontal=True, key="data_source", persist_state=KEEP)


def load(loader, name: str, recipe: str, temp_name: str | None = None) -> None:
    """Read a dataset with ``loader`` and make it the session's; ``recipe`` is the Python line that
    reads it again (the run's reproduce snippet starts with it)."""
    try:
        with st.spinner(f"Reading {name}..."):
            set_dataset(loader(), name, recipe)
    except InputError as exc:
        message = (
            str(exc).replace(temp_name, name) if temp_name else str(exc)
        )  # the user knows their file's name, not ours
        st.error(f"**Could not load {name}.** {message}", icon=":material/error:")
    except DatasetBusyError as exc:
        st.error(str(exc), icon=":material/hourglass_top:")


if source == "Built-in dataset":
    which = st.selectbox(
        "Dataset",
        list(datasets.BUILTIN),
        format_func=lambda k: datasets.BUILTIN[k],
        key="builtin_name",
        persist_state=KEEP,
    )
    params = {}
    if which == "simulated":
        c1, c2, c3 = st.columns(3)
        params = dict(
            n_cells=c1.slider("cells", 100, 20000, 1000, step=100, key="sim_cells", persist_state=KEEP),
            n_genes=c2.slider("genes", 100, 5000, 1000, step=100, key="sim_genes", persist_state=KEEP),
            n_groups=c3.slider("groups", 2, 20, 4, key="sim_groups", persist_state=KEEP),
            separation=c1.slider("separation", 0.2, 4.0, 1.5, 0.1, key="sim_separation", persist_state=KEEP),
            dropout=c2.slider("dropout", 0.0, 0.9, 0.2, 0.05, key="sim_dropout", persist_state=KEEP),
            seed=int(c3.number_input("seed", 0, 10**6, 0, key="sim_seed", persist_state=KEEP)),
        )
        n_batches = c1.slider(
            "batches",
            1,
            6,
            1,
            key="sim_batches",
            persist_state=KEEP,
            help="Cells spread over batches that shift every gene's level.",
        )
        if n_batches > 1:  # a technical effect on top of the same groups: try the batch column on Train
            params.update(
                n_batches=n_batches,
                batch_effect=c2.slider(
                    "batch effect",
                    0.0,
                    2.0,
                    0.5,
                    0.1,
                    key="sim_batch_effect",
                    persist_state=KEEP,
                    help="SD of the per-gene log shift.",
                ),
            )
    if st.button("Load dataset", type="primary", key="load_builtin"):
        load(
            lambda: datasets.load_builtin(which, **params),
            which,
            f"adata = sd.datasets.load_builtin({which!r}{''.join(f', {k}={v!r}' for k, v in params.items())})",
        )
elif source == "Upload a file":
    orientation = st.selectbox(
        "Table orientation (CSV/TSV only)",
        ["auto", "cells_x_genes", "genes_x_cells"],
        key="orientation",
        persist_state=KEEP,
    )
    up = st.file_uploader(
        "h5ad, 10x .h5, a 10x folder as .zip/.tar.gz, CSV/TSV (.gz), .loom, or an scDCC .h5 (X, Y)",
        type=["h5ad", "h5", "hdf5", "zip", "gz", "tgz", "tar", "csv", "tsv", "txt", "loom"],
        key="upload",
    )
    st.caption(
        f"Uploads up to {st.get_option('server.maxUploadSize')} MB."
        + (
            " Larger files: put them in the server's data folder."
            if DATA_DIR
            else " Larger files: the operator can name a data folder (SCDEEP_DATA_DIR) to read them from the server."
        )
    )
    if up is not None and ss.get("uploaded_id") != (
        up.file_id,
        orientation,
    ):  # a new file, or the same one read another way
        suffix = "".join(Path(up.name).suffixes[-2:]) or ".dat"
        # Spill the upload to a temp file and free the in-memory copy: readers work on paths.
        fd, tmp = tempfile.mkstemp(suffix=suffix, prefix="scdeep_upload_")
        with os.fdopen(fd, "wb") as fh:
            fh.write(up.getbuffer())
        try:
            load(
                lambda: io.read_counts(tmp, orientation=orientation),
                up.name,
                f"adata = sd.io.read_counts({up.name!r}, orientation={orientation!r})  # the file you uploaded",
                temp_name=Path(tmp).name,
            )
        finally:
            os.unlink(tmp)
        ss.uploaded_id = (up.file_id, orientation)
else:
    files = io.list_data_files(DATA_DIR)
    if not files:
        st.info("The server's data folder holds no data files (h5ad, 10x, CSV/TSV, loom, archives).")
    else:
        name = st.selectbox(
            "File or 10x folder in the server's data folder", files, key="server_file", persist_state=KEEP
        )
        orientation = st.selectbox(
            "Table orientation (CSV/TSV only)",
            ["auto", "cells_x_genes", "genes_x_cells"],
            key="server_orientation",
            persist_state=KEEP,
        )
        if st.button("Load", key="load_path"):
            load(
                lambda: io.read_counts(io.resolve_in_folder(DATA_DIR, name), orientation=orientation),
                Path(name).name,
                f"adata = sd.io.read_counts({name!r}, orientation={orientation!r})  # in the server's data folder",
            )

adata = ss.adata
if adata is not None:
    loaded_now.markdown(f"Loaded now: **{ss.dataset_name}** ({adata.n_obs:,} cells x {adata.n_vars:,} genes)")
if adata is None:
    st.info("Load a dataset to see its summary and quality control.")
    end_page()

counts = pp.counts_matrix(adata)
info = adata.uns.get("scdeep_io", {})
c1, c2, c3, c4 = st.columns(4)
c1.metric("cells", f"{adata.n_obs:,}")
c2.metric("genes", f"{adata.n_vars:,}")
c3.metric("integer counts", "yes" if info.get("integer", pp.is_integer_matrix(counts)) else "no")
c4.metric("zeros", f"{1 - counts.nnz / max(counts.shape[0] * counts.shape[1], 1):.1%}")
for note in info.get("notes", []):
    if note:
        st.caption(f"note: {note}")
if not info.get("integer", True):
    st.warning("Values are not integer counts: DESC can use them; scDCC needs raw counts.")

obs = adata.obs
ours = result_columns(adata)  # clusters of earlier runs are not labels
candidates = pp.grouping_columns(adata, exclude=ours)
batchy = [c for c in candidates if pp.looks_like_batch(c)]
if candidates:
    st.markdown(
        "**Columns that look like labels:** "
        + ", ".join(f"`{c}` ({obs[c].nunique()})" for c in candidates if c not in batchy)
    )
if batchy:
    st.markdown(
        "**Columns that look like batches:** "
        + ", ".join(f"`{c}`" for c in batchy)
        + " (choose one as the batch column on **Train** to correct for it)"
    )
options = [None] + list(obs.columns)
ss.label_key = st.selectbox(
    "Known labels (used only to score clusterings)",
    options,
    index=options.index(ss.label_key) if ss.label_key in options else 0,
    key="label_select",
)

st.subheader("Quality control")
if "qc" not in ss:
    with st.spinner("Computing QC metrics..."):
        ss.qc = pp.qc_metrics(adata)
qc = ss.qc
has_mito = bool(qc["pct_counts_mt"].gt(0).any())
histograms = st.empty()  # drawn below the sliders' values: each threshold is a dashed line
if not has_mito:
    st.caption("No mitochondrial genes found (names starting with MT- / mt-), so % mitochondrial is 0 for every cell.")
c1, c2, c3 = st.columns(3)
min_counts = c1.slider("min total counts per cell", 0, int(qc["total_counts"].quantile(0.5)), 0, key="f_counts")
min_genes = c2.slider("min genes detected per cell", 0, int(qc["n_genes_by_counts"].quantile(0.5)), 0, key="f_genes")
max_mt = c3.slider("max % mitochondrial counts", 0.0, 100.0, 100.0, 0.5, key="f_mt")
thresholds = {
    "total_counts": min_counts or None,
    "n_genes_by_counts": min_genes or None,
    "pct_counts_mt": max_mt if max_mt < 100 else None,
}
histograms.image(
    session_figure(
        "qc_histograms", tuple(thresholds.values()), lambda: static_figures.qc_histograms(qc, has_mito, thresholds)
    ),
    alt="histograms of total counts, genes detected and % mitochondrial counts per cell",
)
keep = (
    (qc["total_counts"] >= min_counts) & (qc["n_genes_by_counts"] >= min_genes) & (qc["pct_counts_mt"] <= max_mt)
).to_numpy()
st.markdown(f"**{int(keep.sum()):,} of {adata.n_obs:,} cells** pass these filters.")
st.image(
    session_figure(
        "counts_vs_genes", (min_counts, min_genes, max_mt), lambda: static_figures.counts_vs_genes(qc, keep)
    ),
    alt="total counts against genes detected per cell, filtered-out cells in grey",
)
if st.button("Apply filters", disabled=bool(keep.all()), key="apply_filters"):
    try:
        filtered, notes = pp.filter_cells_genes(adata, min_counts=min_counts, min_genes=min_genes, max_pct_mt=max_mt)
        label_key = ss.label_key
        recipe = (
            f"{ss.dataset_recipe}\nadata, _ = sd.pp.filter_cells_genes(adata, min_counts={min_counts!r}, "
            f"min_genes={min_genes!r}, max_pct_mt={max_mt!r})"
        )
        set_dataset(filtered, f"{ss.dataset_name} (filtered)", recipe)
        ss.label_key = label_key
        for n in notes:
            st.toast(n)
        st.rerun()
    except InputError as exc:
        st.error(str(exc))

with st.expander("Highly variable genes"):
    n_top = st.slider(
        "number of highly variable genes", 100, min(5000, adata.n_vars), min(2000, adata.n_vars), 100, key="hvg_n"
    )
    if st.button("Show highly variable genes", key="hvg_btn"):
        import anndata as ad
        import scanpy as sc

        tmp = ad.AnnData(X=counts.copy(), var=pd.DataFrame(index=adata.var_names))
        sc.pp.normalize_total(tmp, target_sum=1e4)
        sc.pp.log1p(tmp)
        sc.pp.highly_variable_genes(tmp, n_top_genes=min(n_top, adata.n_vars - 1), flavor="seurat")
        v = tmp.var
        st.plotly_chart(
            figures.hvg_plot(
                np.log1p(v["means"].to_numpy()),
                v["dispersions_norm"].fillna(0).to_numpy(),
                v["highly_variable"].to_numpy(),
            ),
            width="stretch",
        )
