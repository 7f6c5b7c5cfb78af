"""Explore page render time at many cells (issue 13 item 3).

``python -m bench.explore_scale 200000 20 200000,50000``: cells resampled from cbmc (``bench/out_of_core.py``'s
file), a real DESC fit read out of core (1 pretraining and 1 clustering epoch: the page's cost does
not depend on how well it clustered), the fast-preview UMAP; then the app in Streamlit's AppTest
with that dataset and run in the session, the Explore page opened and rerun ``--reruns`` times,
changing what the UMAP is coloured by as a user does. Prints the wall time of every rerun, the
median and the p95 (the page's server-side work: figures built and serialised), once per cap on
the cells drawn in a scatter (``scdeep_core.figures.DISPLAY_MAX_POINTS``).
"""

from __future__ import annotations

import sys
import time
import warnings

import numpy as np


def main(n_cells: int, reruns: int = 20, max_points: tuple[int, ...] = (200_000,)) -> None:
    import anndata as ad
    from streamlit.testing.v1 import AppTest

    import scdeep_core as sd
    from scdeep_core.embedding import add_umap

    from .common import ROOT
    from .out_of_core import write_file

    warnings.filterwarnings("ignore")
    path = write_file(n_cells)
    t = time.perf_counter()
    on_disk = ad.read_h5ad(path, backed="r")
    cfg = sd.config_for("desc", n_clusters=15, pretrain_epochs=1, pretrain_patience=0, max_cluster_epochs=1, tol=0.0)
    result = sd.fit(on_disk, cfg, label_key="label")
    adata = on_disk.to_memory()  # the app holds its dataset in memory (the result keys come along)
    add_umap(adata, "desc", engine="preview")
    print(f"fit + UMAP of {n_cells:,} cells: {time.perf_counter() - t:.0f} s", flush=True)

    from scdeep_core import figures

    for cap in max_points:
        figures.DISPLAY_MAX_POINTS = cap  # the page runs in this process: its scatters read the cap
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.run()
        at.session_state["adata"] = adata
        at.session_state["dataset_name"] = f"cbmc x{n_cells}"
        at.session_state["label_key"] = "label"
        at.session_state["runs"] = {"desc": result}
        t = time.perf_counter()
        at.switch_page("pages/explore.py").run()
        assert not at.exception, at.exception
        first = time.perf_counter() - t
        colours = ["cluster", "confidence (max q)", "label: label", "entropy of q"]
        times = []
        for i in range(reruns):
            t = time.perf_counter()
            at.radio(key="colour_by").set_value(colours[i % len(colours)]).run()
            times.append(time.perf_counter() - t)
            assert not at.exception, at.exception
        times = np.asarray(times)
        print(f"cap {cap:,} cells drawn: first render {first:.2f} s; reruns: {', '.join(f'{v:.2f}' for v in times)}")
        print(
            f"cap {cap:,}: median {np.median(times):.2f} s, p95 {np.quantile(times, 0.95):.2f} s over {reruns} reruns"
        )


if __name__ == "__main__":
    caps = tuple(int(v) for v in sys.argv[3].split(",")) if len(sys.argv) > 3 else (200_000,)
    main(int(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 20, caps)
