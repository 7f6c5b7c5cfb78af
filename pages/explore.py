"""Explore page: UMAPs by cluster / confidence / labels / genes, scores, markers, downloads."""

import json
import os
import tempfile
from functools import partial

import numpy as np
import pandas as pd
import streamlit as st

from pages.common import KEEP, end_page, k_selection_of, k_selection_panel, require_app, session_figure
from scdeep_core import figures, metrics, starts
from scdeep_core.annotation import annotation_column, merge, rename, split, start_annotation
from scdeep_core.colours import colour_map
from scdeep_core.errors import InputError
from scdeep_core.markers import dot_plot_tables, marker_genes
from scdeep_core.results import for_viewers, labels_table, reproduce_snippet
from scdeep_core.standard import compare, standard_clustering

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
has_umap = umap_key in adata.obsm
if has_umap:
    coords = np.asarray(adata.obsm[umap_key])
else:
    st.warning(
        "This run has no UMAP (it was stopped before it was computed); showing the first two embedding dimensions."
    )
    coords = np.asarray(adata.obsm[f"X_{key}"])[:, :2]
# Every scatter of this run's cells draws `coords`: their axes say what those are.
axis_names = ("UMAP1", "UMAP2") if has_umap else ("embedding dimension 1", "embedding dimension 2")
scatter = partial(figures.embedding_scatter, axis_names=axis_names)
st.caption(result.summary())
if result.consensus is not None:
    st.caption(
        f"Thorough preset: a consensus of {result.consensus['n_models']} models. The map is drawn from the first "
        "model's embedding; the clusters and their confidence come from the models' mean soft assignment."
    )
if result.start is not None:
    st.caption(starts.describe(result.start))
if result.stage == "done" and not result.converged:
    st.warning(f"This run {result.convergence()}: its labels may still have been moving.", icon=":material/warning:")
if k_selection_of(result) is not None:
    with st.expander("How k was chosen (and re-cluster with another k)"):
        k_selection_panel(result, where="explore")


def mark_selection(selected: list[str]) -> None:
    """Buttons that turn the lassoed cells into a constraint: one type, or different from an earlier selection."""
    sames = [i for i, t in enumerate(teach) if t["kind"] == "same"]
    c1, c2, c3 = st.columns([1, 1, 1])
    if c1.button("Mark as one type (same type)", key="teach_same", icon=":material/join:"):
        teach.append({"cells": selected, "kind": "same", "versus": None})
        st.rerun()
    if sames:
        versus = c2.selectbox(
            "different from",
            sames,
            format_func=lambda i: f"selection {i + 1} ({len(teach[i]['cells'])} cells)",
            key="teach_versus",
        )
        if c3.button("Mark as a different type", key="teach_different", icon=":material/call_split:"):
            teach.append({"cells": selected, "kind": "different", "versus": int(versus)})
            st.rerun()
    else:
        c2.caption("Mark one selection as a type first; then another can be marked different from it.")


def remove_selection(index: int) -> None:
    """Undo one selection; 'different' ones that pointed at it go with it, the others keep their targets."""
    kept = []
    for i, t in enumerate(teach):
        if i == index or (t["kind"] == "different" and t["versus"] == index):
            continue
        versus = t["versus"]
        kept.append({**t, "versus": versus - 1 if versus is not None and versus > index else versus})
    teach[:] = kept


def teach_panel() -> None:
    """The constraint set (selections, cells, pairs), undo, and re-clustering with it."""
    from pages.common import next_key, session_owner, submit
    from scdeep_core.config import CONFIG_CLASSES
    from scdeep_core.constraints import Selection, from_selections
    from scdeep_core.jobs import BusyError, TrainingJob

    st.subheader("Teach the clustering")
    st.caption(
        "Lasso cells on the UMAP you know are one type and mark them **same type** (must-link pairs among them); "
        "mark a second selection **different** from a first (cannot-link pairs between them). Then re-cluster: "
        "scDCC's clustering stage runs again from the same pretrained autoencoder with these constraints, as a "
        "new run. Scores are then reported on the cells you did not select."
    )
    if not teach:
        st.info("No selections yet: draw a lasso or a box on the UMAP above.")
        return
    selections = [Selection(t["cells"], t["kind"], t["versus"]) for t in teach]
    pairs = from_selections(selections, adata.obs_names, seed=int(result.config.get("seed", 0)))
    table = pd.DataFrame(
        {
            "selection": [i + 1 for i in range(len(teach))],
            "marked as": [
                "same type" if t["kind"] == "same" else f"different from selection {t['versus'] + 1}" for t in teach
            ],
            "cells": [len(t["cells"]) for t in teach],
        }
    )
    st.dataframe(table, hide_index=True)
    st.markdown(
        f"**{len(pairs.must_link):,} must-link** and **{len(pairs.cannot_link):,} cannot-link** pairs over "
        f"{int(pairs.used_cells.sum()):,} cells (a large selection gives at most 2,000 pairs, touching every cell)."
    )
    c1, c2, c3 = st.columns([1, 1, 2])
    which = c1.selectbox("undo selection", table["selection"].tolist(), key="teach_undo_which")
    if c2.button("Remove it", key="teach_undo", icon=":material/undo:"):
        remove_selection(int(which) - 1)
        st.rerun()
    if result.pretrained is None:
        st.caption("The pretrained model of this run is not in memory (loaded from a file): train again to re-cluster.")
        return

    def go() -> None:
        ss.train_error = None
        new_key = next_key(result.method)
        try:
            submit(
                TrainingJob(
                    ss.adata,
                    result.method,
                    CONFIG_CLASSES[result.method].from_dict(result.config),
                    label_key=ss.label_key,
                    key=new_key,
                    owner=session_owner().id,
                    pretrained=result.pretrained,
                    constraints=selections,
                )
            )
            ss.setdefault("taught_from", {})[new_key] = key
        except (BusyError, ValueError) as exc:
            ss.train_error = str(exc)

    c3.button(
        "Re-cluster with these constraints", on_click=go, key="teach_go", type="primary", icon=":material/replay:"
    )
    if ss.get("train_error"):
        st.error(ss.train_error)


def before_after(parent: str) -> None:
    """This run beside the run it was taught from: both UMAPs, and which cells changed cluster."""
    before = adata.obs[f"{parent}_cluster"]
    after = adata.obs[f"{key}_cluster"]
    comparison = compare(after, before)
    st.subheader(f"Before and after the constraints (run {parent} -> {key})")
    changed = ~comparison.agree
    st.markdown(
        f"**{int(changed.sum()):,} cells ({changed.mean():.1%}) changed cluster**; agreement of the two runs "
        f"ARI {comparison.ari:.3f}."
    )
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        scatter(coords, before, title=f"before: {parent}", colours=colour_map(adata, f"{parent}_cluster")),
        width="stretch",
        key="taught_before",
    )
    c2.plotly_chart(
        scatter(coords, after, title=f"after: {key}", colours=colour_map(adata, f"{key}_cluster")),
        width="stretch",
        key="taught_after",
    )
    st.plotly_chart(
        figures.confusion_heatmap(
            metrics.confusion(before, after), rows=f"cluster before ({parent})", columns=f"cluster after ({key})"
        ),
        width="stretch",
        key="taught_confusion",
    )
    st.caption("Rows: the clusters before; columns: after. Off-diagonal cells moved.")


if result.constraints is not None:
    taught_pairs = result.constraints["pairs"]
    st.caption(
        f"Taught with {len(result.constraints['selections'])} selections: "
        f"{int((taught_pairs['type'] == 'ml').sum()):,} must-link and "
        f"{int((taught_pairs['type'] == 'cl').sum()):,} cannot-link pairs."
    )

annotated = annotation_column(key) in adata.obs
batch_key = result.config.get("batch_key")  # the run's own batch column: is the embedding mixed?
options = (
    ["cluster"]
    + (["cell type (your names)"] if annotated else [])
    + ["confidence (max q)", "entropy of q"]
    + ([f"label: {ss.label_key}"] if ss.label_key else [])
    + ([f"batch: {batch_key}"] if batch_key in adata.obs else [])
    + ["other obs column", "gene"]
)
colour = st.radio("Colour by", options, horizontal=True, key="colour_by", persist_state=KEEP)
column, colour_title = None, ""
if colour == "cluster":
    column = f"{key}_cluster"
elif colour.startswith("cell type"):
    column = annotation_column(key)
elif colour.startswith("confidence"):
    values, colour_title = adata.obs[f"{key}_confidence"], "max q"
elif colour.startswith("entropy"):
    values, colour_title = adata.obs[f"{key}_entropy"], "entropy"
elif colour.startswith("label"):
    column = ss.label_key
elif colour.startswith("batch"):
    column = batch_key
elif colour == "other obs column":
    col = st.selectbox("column", list(adata.obs.columns), key="obs_col", persist_state=KEEP)
    values, colour_title = adata.obs[col], col
else:
    gene = st.selectbox("gene", list(adata.var_names), key="gene", persist_state=KEEP)
    x = adata.layers["counts"][:, adata.var_names.get_loc(gene)] if "counts" in adata.layers else adata[:, gene].X
    values = pd.Series(np.log1p(np.asarray(x.todense()).ravel() if hasattr(x, "todense") else np.asarray(x).ravel()))
    colour_title = f"{gene}<br>log(1 + count)"
if column is not None:
    values = adata.obs[column].astype("category")
fig = scatter(
    coords,
    values,
    title=f"UMAP of the {key} embedding" if has_umap else f"first two dimensions of the {key} embedding",
    hover=adata.obs_names,
    colour_title=colour_title,
    colours=colour_map(adata, column) if column is not None else None,
)
teach = ss.setdefault("teach", [])  # the constraint selections of this session's dataset (names of cells)
if teach:
    positions = pd.Series(np.arange(adata.n_obs), index=adata.obs_names)
    figures.add_selections(
        fig,
        coords,
        [(positions[t["cells"]].to_numpy(), f"selection {i + 1}: {t['kind']}", t["kind"]) for i, t in enumerate(teach)],
    )
event = st.plotly_chart(fig, width="stretch", on_select="rerun", selection_mode=("lasso", "box"), key="umap_chart")

points = event.selection.points if event and event.selection else []
rows = sorted({int(np.ravel(p["customdata"])[0]) for p in points if p.get("customdata") is not None})
if rows:
    sel = adata.obs.iloc[rows]
    selected = list(sel.index)
    st.markdown(
        f"**{len(selected):,} cells selected.** Clusters: "
        + ", ".join(f"{k}: {v:,}" for k, v in sel[f"{key}_cluster"].value_counts().items() if v)
    )
    confidence = sel[f"{key}_confidence"].dropna()
    if len(confidence):  # one line, not describe(): its mixed-type table made Streamlit log a traceback per rerun
        st.caption(
            f"Their confidence (largest soft assignment): median {confidence.median():.2f}, "
            f"lowest {confidence.min():.2f}, highest {confidence.max():.2f}."
        )
    st.download_button(
        "Download selected cell IDs", "\n".join(selected), file_name=f"{key}_selected_cells.txt", key="dl_sel"
    )
    if result.method == "scdcc":
        mark_selection(selected)
    else:
        st.caption("Marking cells as one type (constraints) needs an **scDCC** run: DESC has no pairwise loss.")
if result.method == "scdcc":
    teach_panel()
parent = ss.get("taught_from", {}).get(key)
if result.constraints is not None and parent in ss.runs and f"{parent}_cluster" in adata.obs:
    before_after(parent)

st.subheader("Confidence")
threshold = st.slider("low-confidence threshold (max q)", 0.0, 1.0, 0.5, 0.05, key="conf_threshold", persist_state=KEEP)
conf = adata.obs[f"{key}_confidence"].to_numpy()
st.plotly_chart(
    figures.confidence_by_cluster(
        adata.obs[f"{key}_cluster"], conf, threshold, colours=colour_map(adata, f"{key}_cluster")
    ),
    width="stretch",
)
low = np.nan_to_num(conf, nan=1.0) < threshold
st.markdown(f"**{int(low.sum()):,} cells** ({low.mean():.1%}) are below the threshold.")
if low.any():
    st.plotly_chart(
        scatter(
            coords,
            pd.Series(np.where(low, "low confidence", "confident")).astype("category"),
            title="low-confidence cells",
        ),
        width="stretch",
    )

if ss.label_key:
    st.subheader(f"Against the labels in `{ss.label_key}`")
    known = adata.obs[ss.label_key].notna().to_numpy() & adata.obs[f"{key}_cluster"].notna().to_numpy()
    if result.eval_mask is not None and len(result.cell_mask) == adata.n_obs:
        held_out = np.zeros(adata.n_obs, bool)
        held_out[result.cell_mask] = result.eval_mask
        if (~held_out & known).any():
            st.caption(
                f"Scored on the {int((held_out & known).sum()):,} labelled cells that were not used for constraints."
            )
        known &= held_out
    if not known.any():
        st.info("No held-out labelled cells to score this run against.")
    else:
        truth, pred = adata.obs[ss.label_key][known], adata.obs[f"{key}_cluster"][known]
        # Once per run and label column: a run's clusters never change (names go to another column).
        s, confusion = session_figure(
            "label_comparison",
            (key, ss.label_key),
            lambda: (metrics.scores(truth, pred), figures.confusion_heatmap(metrics.confusion(truth, pred))),
        )
        c1, c2, c3 = st.columns(3)
        c1.metric("ARI", f"{s['ari']:.3f}")
        c2.metric("NMI", f"{s['nmi']:.3f}")
        c3.metric("ACC", f"{s['acc']:.3f}")
        st.plotly_chart(confusion, width="stretch")

st.subheader("Against the standard scanpy pipeline")
st.caption(
    "Leiden (resolution 1, 15 neighbours) on 50 principal components of normalised, log-transformed, scaled "
    "highly variable genes: where most analyses start. Both are drawn on this run's UMAP."
)
AUTO_STANDARD_CELLS = 20_000  # seconds below this; above, on request
if "standard_labels" not in ss and (
    adata.n_obs <= AUTO_STANDARD_CELLS or st.button("Run the standard pipeline", key="standard_btn")
):
    with st.spinner("Running the standard pipeline (PCA, neighbours, Leiden)..."):
        ss.standard_labels = standard_clustering(adata)  # dropped with the dataset
if "standard_labels" in ss:
    standard = pd.Series(
        pd.Categorical(
            [f"L{i}" for i in ss.standard_labels], categories=[f"L{i}" for i in range(ss.standard_labels.max() + 1)]
        )
    )
    comparison = session_figure("standard_comparison", (key,), lambda: compare(adata.obs[f"{key}_cluster"], standard))
    c1, c2, c3 = st.columns(3)
    c1.metric(
        "agreement (ARI)",
        f"{comparison.ari:.3f}",
        help="1: the same partition of the cells; 0: no more alike than chance.",
    )
    c2.metric("standard clusters", f"{standard.cat.categories.size}")
    c3.metric(
        "cells placed alike",
        f"{comparison.agree.mean():.0%}",
        help="Cells whose run cluster lies mostly in their own standard cluster.",
    )
    c1, c2 = st.columns(2)
    c1.plotly_chart(
        scatter(
            coords, adata.obs[f"{key}_cluster"], title=f"{key} clusters", colours=colour_map(adata, f"{key}_cluster")
        ),
        width="stretch",
        key="std_run",
    )
    c2.plotly_chart(
        scatter(coords, standard, title="standard pipeline (Leiden) clusters"),
        width="stretch",
        key="std_leiden",
    )
    if not comparison.agree.all():
        disagree = pd.Series(
            pd.Categorical(
                np.where(comparison.agree, "placed alike", "placed differently"),
                categories=["placed alike", "placed differently"],
            )
        )
        st.plotly_chart(
            scatter(
                coords,
                disagree,
                title="where the two disagree",
                colours={"placed alike": "#d9d9d9", "placed differently": "#d62728"},
            ),
            width="stretch",
            key="std_disagree",
        )
    for sentence in comparison.sentences(f"{key}", "standard"):
        st.markdown(f"- {sentence}")

st.subheader("Marker genes")
n_markers = st.slider("genes per cluster", 1, 20, 5, key="n_markers", persist_state=KEEP)
if st.button("Find marker genes", key="markers_btn"):
    with st.spinner("Ranking genes (t-test, each cluster vs rest)..."):
        ss[f"markers_{key}"] = marker_genes(adata, f"{key}_cluster", n_genes=n_markers)
if f"markers_{key}" in ss:
    table = ss[f"markers_{key}"]
    st.dataframe(
        table,
        hide_index=True,
        height=300,
        column_config={
            "score": st.column_config.NumberColumn("score (t)", format="%.2f"),
            "logfoldchange": st.column_config.NumberColumn("log2 fold change", format="%.2f"),
            "pval_adj": st.column_config.NumberColumn("adjusted p-value", format="%.2e", help="Benjamini-Hochberg"),
        },
    )
    genes = list(dict.fromkeys(table[table["rank"] <= 3]["gene"]))[:40]
    frac, mean = dot_plot_tables(adata[adata.obs[f"{key}_cluster"].notna().to_numpy()], f"{key}_cluster", genes)
    st.plotly_chart(figures.dot_plot(frac, mean), width="stretch")

st.subheader("Name the clusters")
st.caption(
    "Give clusters cell-type names, merge clusters that are one type, split one that holds two. The run's own "
    f"clusters stay as they are; the names go to the `{annotation_column(key)}` column of the h5ad download."
)


def edit(action: str, version: int) -> None:
    """Apply the annotation edit the user asked for (read from the widgets' state as the button
    is pressed); an impossible one (a duplicate name, too few cells) is shown, not raised."""
    column = start_annotation(adata, key)
    w = lambda name: ss[f"{name}_{version}"]  # noqa: E731  (the widgets of the form as drawn)
    try:
        if action == "rename":
            rename(adata, column, w("rename_group"), w("rename_to"))
        elif action == "merge":
            merge(adata, column, list(w("merge_groups")), w("merge_to") or None)
        else:
            split(adata, column, w("split_group"), f"X_{key}", int(w("split_parts")))
        # New widget keys: the browser keeps a widget's value (a group that no longer exists)
        # until the widget itself is new; this also rebuilds the h5ad download.
        ss.annotation_edits = version + 1
        ss.colour_by = "cell type (your names)"
    except InputError as exc:
        ss.annotation_error = str(exc)


def reset_annotation() -> None:
    adata.obs.pop(annotation_column(key), None)
    adata.uns.pop(f"{annotation_column(key)}_colors", None)
    ss.annotation_edits = ss.get("annotation_edits", 0) + 1
    if ss.get("colour_by", "").startswith("cell type"):
        ss.colour_by = "cluster"


groups_column = annotation_column(key) if annotated else f"{key}_cluster"
groups = [str(g) for g in adata.obs[groups_column].cat.categories]
hints = {}
if f"markers_{key}" in ss:  # top genes of each cluster still named by its number
    table = ss[f"markers_{key}"]
    hints = {
        str(c): ", ".join(t.sort_values("rank")["gene"].head(3)) for c, t in table.groupby("cluster", observed=True)
    }
else:
    st.caption("Tip: **Find marker genes** above shows each cluster's top genes next to its number here.")
label = lambda g: f"{g}  ({hints[g]})" if g in hints else g  # noqa: E731
if "annotation_error" in ss:
    st.error(ss.pop("annotation_error"), icon=":material/error:")
version = ss.get("annotation_edits", 0)
c1, c2, c3 = st.columns(3)
with c1.container(border=True):
    st.markdown("**Rename**")
    st.selectbox("group", groups, format_func=label, key=f"rename_group_{version}")
    st.text_input("new name", placeholder="e.g. B cells", key=f"rename_to_{version}")
    st.button("Rename", key="rename_btn", on_click=edit, args=("rename", version))
with c2.container(border=True):
    st.markdown("**Merge**")
    st.multiselect("groups", groups, format_func=label, key=f"merge_groups_{version}")
    st.text_input("name of the merged group", placeholder="default: the first group's name", key=f"merge_to_{version}")
    st.button("Merge", key="merge_btn", on_click=edit, args=("merge", version))
with c3.container(border=True):
    st.markdown("**Split** (k-means on the embedding)")
    st.selectbox("group", groups, format_func=label, key=f"split_group_{version}")
    st.number_input("into how many parts", 2, 10, 2, key=f"split_parts_{version}")
    st.button("Split", key="split_btn", on_click=edit, args=("split", version))
counts = adata.obs[groups_column].value_counts().reindex(groups)
st.markdown("**Groups now:** " + ", ".join(f"{g} ({n:,})" for g, n in counts.items()))
if annotated:
    st.button("Start again from the clusters", key="annotation_reset", on_click=reset_annotation)

if len(ss.runs) >= 2:
    st.subheader("Two runs side by side")
    c1, c2 = st.columns(2)
    a_key = c1.selectbox("left", list(ss.runs), index=0, key="cmp_a")
    b_key = c2.selectbox("right", list(ss.runs), index=1, key="cmp_b")
    both = adata.obs[f"{a_key}_cluster"].notna() & adata.obs[f"{b_key}_cluster"].notna()
    st.metric(
        "ARI between the two runs",
        f"{metrics.ari(adata.obs[f'{a_key}_cluster'][both], adata.obs[f'{b_key}_cluster'][both]):.3f}",
    )
    for col, k in ((c1, a_key), (c2, b_key)):
        u = f"X_{k}_umap"
        if u in adata.obsm:
            col.plotly_chart(
                figures.embedding_scatter(np.asarray(adata.obsm[u]), adata.obs[f"{k}_cluster"], title=k),
                width="stretch",
                key=f"cmp_{k}",
            )

st.subheader("Downloads")


def h5ad_bytes(adata) -> bytes:
    """The session's dataset with every run's keys as h5ad bytes, cached in this session only
    (a server-wide cache keyed by names handed one user's results to another)."""
    token = (id(adata), key, tuple(ss.runs), tuple(adata.obs.columns), adata.n_obs, ss.get("annotation_edits", 0))
    cached = ss.get("_h5ad_download")
    if cached is None or cached[0] != token:
        fd, path = tempfile.mkstemp(suffix=".h5ad")
        os.close(fd)
        try:
            with st.spinner("Writing h5ad..."):
                for_viewers(adata, key).write_h5ad(path)  # opens on this run's UMAP in cellxgene
            with open(path, "rb") as fh:
                cached = (token, fh.read())
        finally:
            os.unlink(path)
        ss["_h5ad_download"] = cached
    return cached[1]


def q_table(adata, key: str, n_clusters: int) -> pd.DataFrame:
    """Each cell's soft assignment to every cluster."""
    return pd.DataFrame(
        np.asarray(adata.obsm[f"{key}_q"]), index=adata.obs_names, columns=[f"q_{j}" for j in range(n_clusters)]
    )


c1, c2, c3 = st.columns(3)
c1.download_button("Results (.h5ad)", h5ad_bytes(adata), file_name=f"scdeep_{key}.h5ad", key="dl_h5ad")
# The per-cell tables are written when their button is pressed, not on every rerun: at 100k+ cells
# writing them took most of each rerun (3 of 3.8 s at 100k cells).
c2.download_button(
    "Labels, confidence, embedding (.csv)",
    lambda adata=adata, key=key: labels_table(adata, key).to_csv(),
    file_name=f"{key}_labels.csv",
    key="dl_labels",
)
c3.download_button(
    "Soft assignments q (.csv)",
    lambda adata=adata, key=key, k=result.n_clusters: q_table(adata, key, k).to_csv(),
    file_name=f"{key}_q.csv",
    key="dl_q",
)
c1.download_button(
    "Loss history (.csv)",
    lambda history=result.history: history.to_csv(index=False),
    file_name=f"{key}_history.csv",
    key="dl_hist",
)
c2.download_button(
    "Config + versions (.json)",
    json.dumps({"config": result.config, "versions": result.versions, "scores": result.scores}, indent=2),
    file_name=f"{key}_config.json",
    key="dl_cfg",
)
snippet = reproduce_snippet(
    result, ss.get("dataset_recipe") or f"adata = sd.io.read_counts({ss.dataset_name!r})", label_key=ss.label_key
)
c3.download_button("Python snippet (.py)", snippet, file_name=f"reproduce_{key}.py", key="dl_py")
with st.expander("Reproduce this run in Python"):
    st.code(snippet, language="python")
