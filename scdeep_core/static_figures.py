"""Static figures (PNG bytes) drawn with matplotlib, for pages that must draw fast.

Why not plotly here: in headless Chromium each plotly chart costs the browser 0.2-0.3 s of work
to draw (the Learn page's four charts were 1.4 s of its 1.9 s draw, profiled with the Chrome
DevTools protocol), and while five sessions train on 2 cores that work made the Learn and Data
pages the slow tail of the load test. A PNG costs the browser almost nothing, and these take
matplotlib 30-80 ms each. Plots people explore point by point (Explore's UMAPs, markers) stay plotly.

Uses matplotlib's object API (``Figure``), not ``pyplot``: no global state, so sessions can draw
at the same time from different threads.
"""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede any backend use
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from PIL import Image

# The toy's cluster colours; a point's colour is the q-weighted mix of them.
TOY_COLOURS = (
    np.array([[31, 119, 180], [214, 39, 40], [44, 160, 44], [148, 103, 189], [255, 127, 14], [140, 86, 75]]) / 255
)
KEPT, FILTERED = "#1f77b4", "#c8c8c8"


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes, rendered at its own size and dpi.

    Drawn on an Agg canvas and encoded by Pillow directly: ``savefig`` took twice as long here
    (it sets up a print canvas and renderer each call), zlib level 3 half the time of level 6.
    """
    canvas = fig.canvas if isinstance(fig.canvas, FigureCanvasAgg) else FigureCanvasAgg(fig)
    canvas.draw()
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(canvas.buffer_rgba())).convert("RGB").save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def _margins(
    width: float, height: float, left: float = 0.8, bottom: float = 0.55, right: float = 0.15, top: float = 0.35
) -> dict:
    """Fixed margins in inches as ``subplots_adjust`` fractions (matplotlib's automatic layouts
    draw the figure once more to measure it: 150-700 ms here)."""
    return dict(left=left / width, right=1 - right / width, bottom=bottom / height, top=1 - top / height)


def blend(q: np.ndarray) -> np.ndarray:
    """RGB colour of each point: its clusters' colours mixed by its soft assignment ``q``."""
    return np.clip(q @ TOY_COLOURS[: q.shape[1]], 0, 1)


class ToyPanel:
    """A toy scatter kept between redraws: points coloured by soft membership (colours mixed by
    ``q``), centroids as crosses, optional arrows (each point's displacement) and marker areas
    (e.g. each point's share of the loss).

    A gradient step only moves points, so :meth:`draw` updates the existing artists instead of
    building a figure (20 ms instead of 45 ms here: three panels per Step on the Learn page).
    ``limits`` (xmin, xmax, ymin, ymax) keep the view still while the points move.
    """

    def __init__(self, limits: tuple[float, float, float, float], n_centroids: int = 3) -> None:
        self.limits = limits
        self.figure = Figure(figsize=(4.4, 3.6))
        ax = self.figure.add_axes((0.01, 0.01, 0.98, 0.89))
        self.points = ax.scatter([], [], linewidths=0, alpha=0.8)
        self.arrows = LineCollection([], colors=[(0.1, 0.1, 0.1, 0.8)], linewidths=1.0)
        ax.add_collection(self.arrows)  # drawn over the points so that they stay visible
        self.centroids = ax.scatter(
            np.zeros(n_centroids), np.zeros(n_centroids), marker="x", c="black", s=120, linewidths=2.5
        )
        self.names = [
            ax.annotate(f"μ{j + 1}", (0, 0), xytext=(0, 9), textcoords="offset points", ha="center", fontsize=11)
            for j in range(n_centroids)
        ]
        ax.set_xlim(limits[0], limits[1])
        ax.set_ylim(limits[2], limits[3])
        ax.set_aspect("equal", adjustable="box")
        ax.set_xticks([])  # toy coordinates mean nothing: no ticks (they were also half the drawing time)
        ax.set_yticks([])
        self.title = ax.set_title("", fontsize=9)

    def draw(
        self,
        z: np.ndarray,
        q: np.ndarray,
        mu: np.ndarray,
        *,
        title: str = "",
        arrows: np.ndarray | None = None,
        sizes: np.ndarray | None = None,
    ) -> bytes:
        """The panel for points ``z`` with soft assignments ``q`` and centroids ``mu``, as PNG bytes."""
        self.points.set_offsets(z)
        self.points.set_facecolors(blend(q))
        self.points.set_sizes(np.full(len(z), 14.0) if sizes is None else np.asarray(sizes, float))
        self.arrows.set_segments([] if arrows is None else np.stack([z, z + arrows], axis=1))
        self.centroids.set_offsets(mu)
        for name, centre in zip(self.names, mu, strict=True):
            name.xy = tuple(centre)
        self.title.set_text(title)
        return to_png(self.figure)


def toy_membership(
    z: np.ndarray,
    q: np.ndarray,
    mu: np.ndarray,
    *,
    title: str = "",
    arrows: np.ndarray | None = None,
    sizes: np.ndarray | None = None,
    limits: tuple[float, float, float, float] | None = None,
) -> bytes:
    """One toy panel drawn from scratch (see :class:`ToyPanel`); ``limits`` default to the data's."""
    if limits is None:
        lo, hi = np.vstack([z, mu]).min(0) - 1.0, np.vstack([z, mu]).max(0) + 1.0
        limits = (lo[0], hi[0], lo[1], hi[1])
    return ToyPanel(limits, len(mu)).draw(z, q, mu, title=title, arrows=arrows, sizes=sizes)


def loss_trace(losses: list[float]) -> bytes:
    """The toy's KL loss over gradient steps."""
    fig = Figure(figsize=(13.2, 2.4))
    fig.subplots_adjust(**_margins(13.2, 2.4))
    ax = fig.add_subplot()
    ax.plot(np.arange(len(losses)), losses, marker="o", markersize=3)
    ax.set_xlabel("step")
    ax.set_ylabel("KL(P‖Q)")
    ax.set_title("loss over steps", fontsize=11)
    return to_png(fig)


def count_fit(counts: np.ndarray, zinb: np.ndarray, gauss_mean: float, gauss_sd: float, max_count: int) -> bytes:
    """Histogram of one gene's counts against a ZINB pmf and the Gaussian that MSE implies."""
    from scipy import stats

    x = np.arange(0, max_count + 1)
    freq = np.bincount(np.minimum(counts.astype(int), max_count), minlength=max_count + 1) / len(counts)
    fig = Figure(figsize=(9.6, 3.2))
    fig.subplots_adjust(**_margins(9.6, 3.2))
    ax = fig.add_subplot()
    ax.stairs(freq, np.arange(-0.5, max_count + 1.5), fill=True, color="lightgrey", label="observed")
    ax.plot(x, zinb[: max_count + 1], marker="o", markersize=4, color="#d62728", label="ZINB")
    ax.plot(x, stats.norm.pdf(x, gauss_mean, gauss_sd), linestyle="--", color="#1f77b4", label="Gaussian (MSE)")
    ax.set_xlabel("count (the last bar holds every larger count)")
    ax.set_ylabel("fraction of cells")
    ax.legend(frameon=False)
    return to_png(fig)


QC_PANELS = {
    "total_counts": "total counts per cell",
    "n_genes_by_counts": "genes detected per cell",
    "pct_counts_mt": "% counts from mitochondrial genes",
}


def qc_histograms(qc: pd.DataFrame, show_mito: bool = True, thresholds: dict[str, float] | None = None) -> bytes:
    """Distributions of total counts, genes per cell and (when any) % mitochondrial counts,
    each filter's threshold drawn as a dashed line (``thresholds`` maps a column to its value)."""
    cols = list(QC_PANELS)[: 3 if show_mito else 2]
    fig = Figure(figsize=(12.8, 2.8))
    fig.subplots_adjust(wspace=0.25, **_margins(12.8, 2.8, top=0.15))
    axes = fig.subplots(1, len(cols))
    for ax, col in zip(np.atleast_1d(axes), cols, strict=True):
        heights, edges = np.histogram(qc[col].to_numpy(), bins=60)
        ax.stairs(heights, edges, fill=True, color="#5b8db8")  # one polygon: 60 bar patches took 4x longer
        ax.set_xlabel(QC_PANELS[col])
        ax.set_ylabel("cells")
        value = (thresholds or {}).get(col)
        if value is not None:
            ax.axvline(value, color="#d62728", linestyle="--", linewidth=1.2)
    return to_png(fig)


def counts_vs_genes(qc: pd.DataFrame, keep: np.ndarray | None = None, max_points: int = 20_000, seed: int = 0) -> bytes:
    """Total counts against detected genes per cell, cells failing the filters in grey (at most
    ``max_points`` cells drawn, a random subset of larger data: the picture, not every dot)."""
    idx = np.arange(len(qc))
    if len(idx) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(qc), max_points, replace=False))
    kept = np.ones(len(idx), bool) if keep is None else np.asarray(keep)[idx]
    x, y = qc["total_counts"].to_numpy()[idx], qc["n_genes_by_counts"].to_numpy()[idx]
    fig = Figure(figsize=(12.8, 3.4))
    fig.subplots_adjust(**_margins(12.8, 3.4))
    ax = fig.add_subplot()
    ax.scatter(x[~kept], y[~kept], s=5, c=FILTERED, linewidths=0, label=f"filtered out ({int((~kept).sum()):,})")
    ax.scatter(x[kept], y[kept], s=5, c=KEPT, linewidths=0, alpha=0.6, label=f"kept ({int(kept.sum()):,})")
    ax.set_xlabel("total counts per cell")
    ax.set_ylabel("genes detected per cell")
    ax.legend(frameon=False, markerscale=3, loc="upper left")
    if len(idx) < len(qc):
        ax.set_title(f"a random {len(idx):,} of {len(qc):,} cells", fontsize=10)
    return to_png(fig)
