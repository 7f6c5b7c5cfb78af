"""Plotly figure builders for the dashboard (no Streamlit here).

Cells are drawn with WebGL (``Scattergl``) from ``WEBGL_FROM`` points on, as SVG below that (a
WebGL context costs a browser more than SVG saves on a few thousand points: 0.3 s of a page's
draw in headless Chromium); very large datasets are subsampled for display only (``max_points``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .colours import categories, palette

WEBGL_FROM = 5_000
# Cells drawn in one scatter at most: a random sample above it, the same one for every view of a
# dataset (seeded), for display only (BENCHMARKS.md section 14: Explore at 200k cells).
DISPLAY_MAX_POINTS = 100_000


def _points(n: int) -> type:
    """The scatter trace type for ``n`` points (see the module docstring)."""
    return go.Scattergl if n >= WEBGL_FROM else go.Scatter


PALETTE = px.colors.qualitative.Dark24 + px.colors.qualitative.Light24
LOSS_LABELS = {
    "total": "total",
    "mse": "MSE reconstruction",
    "zinb": "ZINB reconstruction",
    "kl": "KL(P||Q) clustering",
    "ml": "must-link",
    "cl": "cannot-link",
}


def _layout(fig: go.Figure, title: str | None = None, height: int = 360) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=dict(itemsizing="constant"),
    )
    return fig


def loss_curves(history: pd.DataFrame, tol: float | None = None) -> go.Figure:
    """Every loss term against epoch, pretraining then clustering, with the phase change
    marked; ``delta_label`` (against ``tol``) and ARI/NMI in a second panel when present."""
    has_second = not history.empty and (
        history.get("delta_label", pd.Series(dtype=float)).notna().any()
        or history.get("ari", pd.Series(dtype=float)).notna().any()
    )
    fig = make_subplots(
        rows=2 if has_second else 1,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.08,
        row_heights=[0.6, 0.4] if has_second else [1.0],
    )
    if history.empty:
        return _layout(fig, "Waiting for the first epoch...")
    h = history.reset_index(drop=True).copy()
    h["step"] = np.arange(1, len(h) + 1)
    # A consensus trains its models one after the other: one line per model and phase (a line
    # joining one model's last epoch to the next one's first would draw a jump that never happened),
    # each loss term in one colour, in the legend once.
    models = sorted(h["model"].dropna().unique()) if "model" in h and h["model"].notna().any() else [None]
    for i, col in enumerate([c for c in h.columns if c.startswith("loss_") and c != "loss_total"]):
        name = col[5:]
        for phase in ("pretrain", "cluster"):
            for model in models:
                part = h[(h["phase"] == phase) & ((h["model"] == model) if model is not None else True)]
                if part[col].notna().any():
                    fig.add_trace(
                        go.Scatter(
                            x=part["step"],
                            y=part[col],
                            mode="lines" if len(part) > 1 else "markers",  # a one-point line draws nothing
                            name=f"{LOSS_LABELS.get(name, name)} ({phase})",
                            legendgroup=f"{col}-{phase}",
                            showlegend=bool(model == models[0]),
                            line=dict(color=PALETTE[2 * i + (phase == "cluster")]),
                        ),
                        row=1,
                        col=1,
                    )
    if len(models) > 1:
        for model in models[1:]:
            first = h.loc[(h["phase"] == "pretrain") & (h["model"] == model), "step"]
            if len(first):
                fig.add_vline(x=first.min() - 0.5, line_dash="dot", line_color="lightgrey")
                fig.add_annotation(
                    x=first.min() - 0.5, y=1, yref="paper", text=f"model {int(model) + 1}", showarrow=False
                )
    pre = h[h["phase"] == "pretrain"]
    if len(pre) and (h["phase"] == "cluster").any():
        fig.add_vline(x=pre["step"].max() + 0.5, line_dash="dash", line_color="grey")
        fig.add_annotation(
            x=pre["step"].max() + 0.5, y=1, yref="paper", text="clustering starts", showarrow=False, xanchor="left"
        )
    if has_second:
        if h["delta_label"].notna().any():
            fig.add_trace(
                go.Scatter(x=h["step"], y=h["delta_label"], mode="lines+markers", name="delta_label"), row=2, col=1
            )
            if tol is not None:
                fig.add_hline(y=tol, line_dash="dot", line_color="red", annotation_text="tol", row=2, col=1)
        for s in ("ari", "nmi"):
            if s in h and h[s].notna().any():
                fig.add_trace(go.Scatter(x=h["step"], y=h[s], mode="lines", name=s.upper()), row=2, col=1)
    fig.update_xaxes(title_text="epoch (pretraining, then clustering)", row=2 if has_second else 1, col=1)
    # plain numbers on the log axis (plotly's default labels minor ticks with bare digits: 1 9 8 7...)
    fig.update_yaxes(title_text="loss (log scale)", type="log", tickformat=".2g", row=1, col=1)
    if has_second:
        fig.update_yaxes(title_text="share / score", row=2, col=1)
    return _layout(fig, height=480 if has_second else 340)


def snapshot_scatter(snapshot, title: str = "Embedding during clustering") -> go.Figure:
    """A live snapshot: cells (coloured by current cluster, opacity by confidence) and centroids."""
    fig = go.Figure()
    colours = palette(int(snapshot.labels.max()) + 1)  # cluster j has the colour it gets in the result
    for j in np.unique(snapshot.labels):
        m = snapshot.labels == j
        fig.add_trace(
            _points(len(snapshot.coords))(
                x=snapshot.coords[m, 0],
                y=snapshot.coords[m, 1],
                mode="markers",
                name=f"cluster {j}",
                marker=dict(size=4, color=colours[j], opacity=0.8),
            )
        )
    fig.add_trace(
        go.Scatter(
            x=snapshot.centroids[:, 0],
            y=snapshot.centroids[:, 1],
            mode="markers",
            name="centroids",
            marker=dict(symbol="x", size=14, color="black", line=dict(width=2)),
        )
    )
    fig.update_xaxes(title="PC1 of the initial embedding")
    fig.update_yaxes(title="PC2")
    return _layout(fig, f"{title} (update {snapshot.update})", height=420)


def _subsample(n: int, max_points: int, seed: int = 0) -> np.ndarray:
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))


def embedding_scatter(
    coords: np.ndarray,
    values: pd.Series | np.ndarray,
    *,
    title: str = "",
    max_points: int | None = None,
    hover: pd.Index | None = None,
    colorscale: str = "Viridis",
    colour_title: str = "",
    colours: dict[str, str] | None = None,
    axis_names: tuple[str, str] = ("UMAP1", "UMAP2"),
) -> go.Figure:
    """UMAP (or any 2-D) scatter coloured by a categorical or continuous value.

    ``axis_names`` titles the axes (another 2-D layout than a UMAP names its own).

    Categories are drawn in their order (:func:`scdeep_core.colours.categories`) with ``colours``
    (category -> colour; scanpy's palette when not given); a continuous value gets a colour bar
    titled ``colour_title``. Each point's ``customdata`` is its row in ``coords``, so a lasso
    selection maps back to cells.
    """
    values = pd.Series(np.asarray(values)) if not isinstance(values, pd.Series) else values.reset_index(drop=True)
    idx = _subsample(len(coords), DISPLAY_MAX_POINTS if max_points is None else max_points)
    if len(idx) < len(coords):  # say so: a sample is drawn, every cell stays in the results
        title = f"{title} ({len(idx):,} of {len(coords):,} cells drawn)"
    ok = idx[~np.isnan(coords[idx]).any(axis=1)]
    x, y = coords[ok, 0], coords[ok, 1]
    text = np.asarray(hover)[ok] if hover is not None else None
    fig = go.Figure()
    v = values.iloc[ok]
    if isinstance(values.dtype, pd.CategoricalDtype) or values.dtype == object or values.dtype == bool:
        order = categories(values)
        colours = colours or dict(zip(order, palette(len(order)), strict=True))
        cats = v.astype(str)
        for c in order:
            m = (cats == c).to_numpy()
            if m.any():
                fig.add_trace(
                    _points(len(x))(
                        x=x[m],
                        y=y[m],
                        mode="markers",
                        name=c,
                        text=None if text is None else text[m],
                        customdata=ok[m],
                        marker=dict(size=4, color=colours.get(c, "grey")),
                    )
                )
    else:
        fig.add_trace(
            _points(len(x))(
                x=x,
                y=y,
                mode="markers",
                text=text,
                showlegend=False,
                customdata=ok,
                marker=dict(
                    size=4, color=v.to_numpy(dtype=float), colorscale=colorscale, colorbar=dict(title=colour_title)
                ),
            )
        )
    fig.update_layout(dragmode="lasso")
    fig.update_xaxes(showticklabels=False, title=axis_names[0])
    fig.update_yaxes(showticklabels=False, title=axis_names[1])
    return _layout(fig, title, height=480)


def hvg_plot(means: np.ndarray, dispersions: np.ndarray, highly_variable: np.ndarray) -> go.Figure:
    """Normalised dispersion against mean expression, highly variable genes highlighted."""
    fig = go.Figure()
    for flag, name, color in ((False, "other genes", "lightgrey"), (True, "highly variable", PALETTE[1])):
        m = highly_variable == flag
        fig.add_trace(
            _points(len(means))(
                x=means[m], y=dispersions[m], mode="markers", name=name, marker=dict(size=3, color=color)
            )
        )
    fig.update_xaxes(title="mean expression (log)")
    fig.update_yaxes(title="normalised dispersion")
    return _layout(fig, "highly variable genes", height=320)


def confidence_by_cluster(
    clusters: pd.Series, confidence: np.ndarray, threshold: float, colours: dict[str, str] | None = None
) -> go.Figure:
    """Box plots of confidence (max q) per cluster, in category order and with the UMAP's
    ``colours``, and the low-confidence threshold."""
    order = categories(clusters)
    colours = colours or dict(zip(order, palette(len(order)), strict=True))
    df = pd.DataFrame({"cluster": clusters.astype(str).to_numpy(), "confidence": confidence}).dropna()
    fig = px.box(
        df,
        x="cluster",
        y="confidence",
        points=False,
        color="cluster",
        color_discrete_map=colours,
        category_orders={"cluster": order},
    )
    fig.add_hline(y=threshold, line_dash="dot", line_color="red", annotation_text="low-confidence threshold")
    fig.update_layout(showlegend=False)
    return _layout(fig, "confidence per cluster", height=320)


def confusion_heatmap(table: pd.DataFrame, rows: str = "known label", columns: str = "cluster") -> go.Figure:
    """Cells per (label, cluster) as a heatmap with counts; clusters in numeric order (2 before 10).
    ``rows`` and ``columns`` name the two groupings (e.g. a run's clusters before and after)."""
    table = table.set_axis(table.columns.astype(str), axis=1)
    table = table[categories(pd.Series(table.columns))]
    fig = go.Figure(
        go.Heatmap(
            z=table.to_numpy(),
            x=[str(c) for c in table.columns],
            y=[str(r) for r in table.index],
            colorscale="Blues",
            text=table.to_numpy(),
            texttemplate="%{text}",
        )
    )
    fig.update_xaxes(title=columns, type="category", dtick=1)  # every row and column labelled
    fig.update_yaxes(title=rows, type="category", dtick=1)
    return _layout(fig, f"cells per {rows} and {columns}", height=max(300, 28 * len(table) + 120))


def dot_plot(frac: pd.DataFrame, mean: pd.DataFrame) -> go.Figure:
    """Marker dot plot: size = fraction of cells expressing, colour = mean expression."""
    long = frac.stack().rename("fraction").to_frame().join(mean.stack().rename("mean")).reset_index()
    long.columns = ["cluster", "gene", "fraction", "mean"]
    long["expressing"] = long["fraction"].map("{:.0%}".format)
    fig = px.scatter(
        long,
        x="gene",
        y="cluster",
        size="fraction",
        color="mean",
        color_continuous_scale="Reds",
        hover_data={"expressing": True, "fraction": False},
        labels={"mean": "mean log expression"},
    )
    fig.update_traces(
        marker_sizeref=2.0 / 16**2, marker_sizemode="area"
    )  # a full-size dot is 100 % of cells, whatever the data's max
    fig.update_yaxes(type="category", dtick=1, title="cluster")
    fig.update_xaxes(title="gene")
    fig.update_layout(coloraxis_colorbar_title="mean log<br>expression")
    return _layout(
        fig,
        "marker genes: dot size = share of the cluster's cells expressing the gene (full size = 100 %)",
        height=max(300, 30 * frac.shape[0] + 140),
    )


def confidence_trace(history: pd.DataFrame) -> go.Figure:
    """Mean and 10-90 % band of every cell's confidence (max q) at each target update, from a run's
    history (the ``confidence_*`` columns the training loop writes)."""
    fig = go.Figure()
    trace = history[history["confidence_mean"].notna()] if "confidence_mean" in history else history.iloc[:0]
    if not trace.empty:
        x = trace["epoch"]
        fig.add_trace(go.Scatter(x=x, y=trace["confidence_q90"], line=dict(width=0), showlegend=False))
        fig.add_trace(
            go.Scatter(x=x, y=trace["confidence_q10"], fill="tonexty", line=dict(width=0), name="10-90 % of cells")
        )
        fig.add_trace(go.Scatter(x=x, y=trace["confidence_mean"], mode="lines+markers", name="mean confidence"))
    fig.update_xaxes(title="clustering epoch")
    fig.update_yaxes(title="max q", range=[0, 1.02])
    return _layout(fig, "confidence during clustering", height=300)


def k_selection_chart(table: pd.DataFrame, chosen_k: int | None = None, chosen_row: int | None = None) -> go.Figure:
    """Why this k: stability of the Leiden clustering against its number of clusters.

    ``table`` is :attr:`scdeep_core.kselect.KSelection.table` (one row per resolution);
    the chosen resolution (``chosen_row``, a star) and the chosen k after merging
    neighbours (``chosen_k``, a dashed line) are marked. Both scores are on a 0-1 scale:
    higher is more reproducible.
    """
    t = table.sort_values(["n_clusters", "resolution"])
    fig = go.Figure()
    hover = [f"resolution {r:g}<br>{k} clusters" for r, k in zip(t["resolution"], t["n_clusters"], strict=True)]
    fig.add_trace(
        go.Scatter(
            x=t["n_clusters"],
            y=t["stability"],
            mode="lines+markers",
            name="stability (ARI with 80 % subsamples)",
            error_y=dict(type="data", array=t.get("stability_sd"), visible=True, thickness=1),
            hovertext=hover,
            hoverinfo="text+y",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=t["n_clusters"],
            y=t["stable_cells"],
            mode="lines+markers",
            line=dict(dash="dot"),
            name="cells in stable clusters (Jaccard >= 0.75)",
            hovertext=hover,
            hoverinfo="text+y",
        )
    )
    if chosen_row is not None:
        row = table.loc[chosen_row]
        fig.add_trace(
            go.Scatter(
                x=[row["n_clusters"]],
                y=[row["stability"]],
                mode="markers",
                name="chosen resolution",
                marker=dict(symbol="star", size=16, color="red"),
            )
        )
    if chosen_k is not None:
        fig.add_vline(x=chosen_k, line_dash="dash", line_color="red")
        fig.add_annotation(
            x=chosen_k, y=1.04, yref="y", text=f"chosen k = {chosen_k}", showarrow=False, font=dict(color="red")
        )
    fig.update_xaxes(
        title_text="number of clusters (Leiden, one point per resolution)",
        dtick=1 if t["n_clusters"].max() <= 25 else None,
    )
    fig.update_yaxes(title_text="score (1 = fully reproducible)", range=[0, 1.1])
    _layout(fig, "Choosing k: how reproducible is each clustering?", height=340)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=-0.45, x=0))
    return fig


# Dark outlines, none of them in scanpy's cluster palettes, so a selection never reads as a cluster.
SELECTION_COLOURS = ["#000000", "#5a5a5a", "#7f3b08", "#08306b", "#00441b", "#3f007d"]
SELECTION_SYMBOLS = {"same": "circle-open", "different": "x-thin-open"}


def add_selections(fig: go.Figure, coords: np.ndarray, selections: list[tuple[np.ndarray, str, str]]) -> go.Figure:
    """Outline the cells of each constraint selection (rows of ``coords``, a legend name, and its
    kind: ``"same"`` circles, ``"different"`` crosses) on an embedding scatter; the outlines carry
    no ``customdata``, so a lasso over them selects the cells underneath, not the outlines."""
    for i, (rows, name, kind) in enumerate(selections):
        rows = np.asarray(rows, dtype=np.int64)
        fig.add_trace(
            _points(len(rows))(
                x=coords[rows, 0],
                y=coords[rows, 1],
                mode="markers",
                name=name,
                hoverinfo="skip",
                opacity=0.7,
                marker=dict(
                    symbol=SELECTION_SYMBOLS.get(kind, "circle-open"),
                    size=8,
                    line=dict(width=1.2, color=SELECTION_COLOURS[i % len(SELECTION_COLOURS)]),
                    color=SELECTION_COLOURS[i % len(SELECTION_COLOURS)],
                ),
            )
        )
    return fig
