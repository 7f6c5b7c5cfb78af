"""Explore page: UMAPs by cluster / confidence / labels / genes, scores, markers, downloads."""
import io as _io
import json
import os
import tempfile

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import end_page, k_selection_of, k_selection_panel, require_app
from scdeep_core import figures, metrics
from scdeep_core.markers import dot_plot_tables, marker_genes
from scdeep_core.results import labels_table, reproduce_snippet

require_app()
ss = st.session_state
st.title("Explore")
adata = ss.adata
if adata is None or not ss.runs:
    st.info("Train a model on the **Train** page first; its results appear here.")
    end_page()

key = st.selectbox("Run", list(ss.runs), index=len(ss.runs) - 1, key="explore_run")
result = ss.runs[key]
umap_key = f"X_{key}_umap"
coords = np.asarray(adata.obsm[umap_key]) if umap_key in adata.obsm else None
if coords is None:
    st.warning("This run has no UMAP (it was stopped before it was computed); showing the first two embedding dimensions.")
    coords = np.asarray(adata.obsm[f"X_{key}"])[:, :2]
st.caption(result.summary())
if result.stage == "done" and not result.converged:
    st.warning(f"This run {result.convergence()}: its labels may still have been moving.", icon=":material/warning:")
if k_selection_of(result) is not None:
    with st.expander("How k was chosen (and re-cluster with another k)"):
        k_selection_panel(result, where="explore")

options = ["cluster", "confidence (max q)", "entropy of q"] + ([f"label: {ss.label_key}"] if ss.label_key else []) + ["other obs column", "gene"]
colour = st.radio("Colour by", options, horizontal=True, key="colour_by")
if colour == "cluster":
    values = adata.obs[f"{key}_cluster"]
elif colour.startswith("confidence"):
    values = adata.obs[f"{key}_confidence"]
elif colour.startswith("entropy"):
    values = adata.obs[f"{key}_entropy"]
elif colour.startswith("label"):
    values = adata.obs[ss.label_key].astype("category")
elif colour == "other obs column":
    col = st.selectbox("column", list(adata.obs.columns), key="obs_col")
    values = adata.obs[col]
else:
    gene = st.selectbox("gene", list(adata.var_names), key="gene")
    x = adata.layers["counts"][:, adata.var_names.get_loc(gene)] if "counts" in adata.layers else adata[:, gene].X
    values = pd.Series(np.log1p(np.asarray(x.todense()).ravel() if hasattr(x, "todense") else np.asarray(x).ravel()))
fig = figures.embedding_scatter(coords, values, title=f"UMAP of the {key} embedding", hover=adata.obs_names)
event = st.plotly_chart(fig, width="stretch", on_select="rerun", selection_mode=("lasso", "box"), key="umap_chart")

points = event.selection.points if event and event.selection else []
rows = sorted({int(np.ravel(p["customdata"])[0]) for p in points if p.get("customdata") is not None})
if rows:
    sel = adata.obs.iloc[rows]
    selected = list(sel.index)
    st.markdown(f"**{len(selected)} cells selected.** Clusters: " + ", ".join(f"{k}: {v}" for k, v in sel[f"{key}_cluster"].value_counts().items() if v))
    st.write(sel[[f"{key}_cluster", f"{key}_confidence"]].describe(include="all"))
    st.download_button("Download selected cell IDs", "\n".join(selected), file_name=f"{key}_selected_cells.txt", key="dl_sel")

st.subheader("Confidence")
threshold = st.slider("low-confidence threshold (max q)", 0.0, 1.0, 0.5, 0.05, key="conf_threshold")
conf = adata.obs[f"{key}_confidence"].to_numpy()
st.plotly_chart(figures.confidence_by_cluster(adata.obs[f"{key}_cluster"], conf, threshold), width="stretch")
low = np.nan_to_num(conf, nan=1.0) < threshold
st.markdown(f"**{int(low.sum())} cells** ({low.mean():.1%}) are below the threshold.")
if low.any():
    st.plotly_chart(figures.embedding_scatter(coords, pd.Series(np.where(low, "low confidence", "confident")).astype("category"),
                                              title="low-confidence cells"), width="stretch")

if ss.label_key:
    st.subheader(f"Against the labels in `{ss.label_key}`")
    known = adata.obs[ss.label_key].notna().to_numpy() & adata.obs[f"{key}_cluster"].notna().to_numpy()
    if result.eval_mask is not None and len(result.cell_mask) == adata.n_obs:
        held_out = np.zeros(adata.n_obs, bool)
        held_out[result.cell_mask] = result.eval_mask
        if (~held_out & known).any():
            st.caption(f"Scored on the {int((held_out & known).sum()):,} labelled cells that were not used for constraints.")
        known &= held_out
    if not known.any():
        st.info("No held-out labelled cells to score this run against.")
    else:
        truth, pred = adata.obs[ss.label_key][known], adata.obs[f"{key}_cluster"][known]
        s = metrics.scores(truth, pred)
        c1, c2, c3 = st.columns(3)
        c1.metric("ARI", f"{s['ari']:.3f}")
        c2.metric("NMI", f"{s['nmi']:.3f}")
        c3.metric("ACC", f"{s['acc']:.3f}")
        st.plotly_chart(figures.confusion_heatmap(metrics.confusion(truth, pred)), width="stretch")

st.subheader("Marker genes")
n_markers = st.slider("genes per cluster", 1, 20, 5, key="n_markers")
if st.button("Find marker genes", key="markers_btn"):
    with st.spinner("Ranking genes (t-test, each cluster vs rest)..."):
        ss[f"markers_{key}"] = marker_genes(adata, f"{key}_cluster", n_genes=n_markers)
if f"markers_{key}" in ss:
    table = ss[f"markers_{key}"]
    st.dataframe(table, hide_index=True, height=300)
    genes = list(dict.fromkeys(table[table["rank"] <= 3]["gene"]))[:40]
    frac, mean = dot_plot_tables(adata[adata.obs[f"{key}_cluster"].notna().to_numpy()], f"{key}_cluster", genes)
    st.plotly_chart(figures.dot_plot(frac, mean), width="stretch")

if len(ss.runs) >= 2:
    st.subheader("Two runs side by side")
    c1, c2 = st.columns(2)
    a_key = c1.selectbox("left", list(ss.runs), index=0, key="cmp_a")
    b_key = c2.selectbox("right", list(ss.runs), index=1, key="cmp_b")
    both = adata.obs[f"{a_key}_cluster"].notna() & adata.obs[f"{b_key}_cluster"].notna()
    st.metric("ARI between the two runs", f"{metrics.ari(adata.obs[f'{a_key}_cluster'][both], adata.obs[f'{b_key}_cluster'][both]):.3f}")
    for col, k in ((c1, a_key), (c2, b_key)):
        u = f"X_{k}_umap"
        if u in adata.obsm:
            col.plotly_chart(figures.embedding_scatter(np.asarray(adata.obsm[u]), adata.obs[f"{k}_cluster"], title=k), width="stretch", key=f"cmp_{k}")

st.subheader("Downloads")


def h5ad_bytes(adata) -> bytes:
    """The session's dataset with every run's keys as h5ad bytes, cached in this session only
    (a server-wide cache keyed by names handed one user's results to another)."""
    token = (id(adata), tuple(ss.runs), tuple(adata.obs.columns), adata.n_obs)
    cached = ss.get("_h5ad_download")
    if cached is None or cached[0] != token:
        fd, path = tempfile.mkstemp(suffix=".h5ad")
        os.close(fd)
        try:
            with st.spinner("Writing h5ad..."):
                adata.write_h5ad(path)
            with open(path, "rb") as fh:
                cached = (token, fh.read())
        finally:
            os.unlink(path)
        ss["_h5ad_download"] = cached
    return cached[1]


c1, c2, c3 = st.columns(3)
c1.download_button("Results (.h5ad)", h5ad_bytes(adata), file_name=f"scdeep_{key}.h5ad", key="dl_h5ad")
c2.download_button("Labels, confidence, embedding (.csv)", labels_table(adata, key).to_csv(), file_name=f"{key}_labels.csv", key="dl_labels")
q = pd.DataFrame(np.asarray(adata.obsm[f"{key}_q"]), index=adata.obs_names, columns=[f"q_{j}" for j in range(result.n_clusters)])
c3.download_button("Soft assignments q (.csv)", q.to_csv(), file_name=f"{key}_q.csv", key="dl_q")
c1.download_button("Loss history (.csv)", result.history.to_csv(index=False), file_name=f"{key}_history.csv", key="dl_hist")
c2.download_button("Config + versions (.json)", json.dumps({"config": result.config, "versions": result.versions, "scores": result.scores}, indent=2),
                   file_name=f"{key}_config.json", key="dl_cfg")
snippet = reproduce_snippet(result, label_key=ss.label_key)
c3.download_button("Python snippet (.py)", snippet, file_name=f"reproduce_{key}.py", key="dl_py")
with st.expander("Reproduce this run in Python"):
    st.code(snippet, language="python")
