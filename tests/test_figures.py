"""Figure builders: what the browser is asked to draw."""
import numpy as np
import pandas as pd

from scdeep_core import figures


def test_small_scatters_are_svg_and_large_ones_webgl():
    """A WebGL context costs a browser more than it saves on a few thousand points (0.9 -> 0.5 s
    of the Data page's draw in headless Chromium), so only large scatters use it."""
    rng = np.random.default_rng(0)
    for n, kind in [(700, "scatter"), (figures.WEBGL_FROM, "scattergl")]:
        coords = rng.normal(size=(n, 2))
        labels = pd.Series(pd.Categorical(rng.integers(0, 3, n).astype(str)))
        fig = figures.embedding_scatter(coords, labels)
        assert {t.type for t in fig.data} == {kind}
        qc = pd.DataFrame({"total_counts": rng.poisson(1000, n), "n_genes_by_counts": rng.poisson(300, n)})
        assert {t.type for t in figures.counts_vs_genes(qc, np.ones(n, bool)).data} == {kind}
    # every cell is still drawn (and can be lassoed back to its row) whichever the renderer
    assert sum(len(t.x) for t in fig.data) == figures.WEBGL_FROM
