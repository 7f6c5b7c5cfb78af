"""Figure builders: what the browser is asked to draw (plotly for exploring, PNGs for pages that must draw fast)."""

import numpy as np
import pandas as pd

from scdeep_core import figures, static_figures, teaching


def test_small_scatters_are_svg_and_large_ones_webgl():
    """A WebGL context costs a browser more than it saves on a few thousand points (0.9 -> 0.5 s
    of the Data page's draw in headless Chromium), so only large scatters use it."""
    rng = np.random.default_rng(0)
    for n, kind in [(700, "scatter"), (figures.WEBGL_FROM, "scattergl")]:
        coords = rng.normal(size=(n, 2))
        labels = pd.Series(pd.Categorical(rng.integers(0, 3, n).astype(str)))
        fig = figures.embedding_scatter(coords, labels)
        assert {t.type for t in fig.data} == {kind}
    # every cell is still drawn (and can be lassoed back to its row) whichever the renderer
    assert sum(len(t.x) for t in fig.data) == figures.WEBGL_FROM


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_static_figures_are_pngs_whose_pixels_follow_the_data():
    """The Learn and Data pages show PNGs (a plotly chart cost the browser 0.2-0.3 s to draw each):
    real images of the right size, and a change in the data changes the picture."""
    z, _ = teaching.toy_data(seed=0)
    mu = np.array([[2.0, 0.8], [-0.8, 1.5], [-0.5, -1.8]])
    q = teaching.q_of(z, mu, 1.0)
    before = static_figures.toy_membership(z, q, mu, title="q")
    assert _png_size(before) == (440, 360)
    assert static_figures.toy_membership(z + 0.5, q, mu, title="q") != before
    # a point's colour is its clusters' colours mixed by q: certain points get their cluster's colour
    assert np.allclose(static_figures.blend(np.eye(3)), static_figures.TOY_COLOURS[:3])
    rng = np.random.default_rng(0)
    qc = pd.DataFrame(
        {
            "total_counts": rng.poisson(1000, 50_000),
            "n_genes_by_counts": rng.poisson(300, 50_000),
            "pct_counts_mt": rng.random(50_000) * 5,
        }
    )
    plain = static_figures.qc_histograms(qc, show_mito=True)
    assert (
        static_figures.qc_histograms(qc, show_mito=True, thresholds={"total_counts": 950}) != plain
    )  # the threshold line
    keep = qc["total_counts"].to_numpy() > 1000
    assert static_figures.counts_vs_genes(qc, keep) != static_figures.counts_vs_genes(qc, ~keep)


def test_confusion_matrix_lists_clusters_in_numeric_order():
    table = pd.DataFrame([[1, 2, 3]], columns=["0", "10", "2"], index=["B cell"])
    fig = figures.confusion_heatmap(table)
    assert list(fig.data[0].x) == ["0", "2", "10"] and fig.data[0].z.tolist() == [[1, 3, 2]]


def test_a_loss_curve_of_one_epoch_is_drawn():
    """A run stopped after its first epoch (a 100,000-cell run) has one point per loss: a marker, not
    an empty line."""
    import pandas as pd

    from scdeep_core.figures import loss_curves

    one = pd.DataFrame({"phase": ["pretrain"], "loss_recon": [0.8]})
    trace = loss_curves(one).data[0]
    assert trace.mode == "markers" and list(trace.y) == [0.8]
    two = pd.DataFrame({"phase": ["pretrain", "pretrain"], "loss_recon": [0.8, 0.6]})
    assert loss_curves(two).data[0].mode == "lines"
