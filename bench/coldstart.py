"""Cold start: from a fresh Python process to a clustering result and to a UMAP.

umap-learn's numba compilation is timed on its own (the app pays it once per server process, in
the background at start-up: ``scdeep_core.umap_compile``), then its layout, then the NumPy fast
preview for comparison.
"""

from __future__ import annotations

import json
import sys
import time

T0 = time.perf_counter()


def main() -> None:
    p = json.loads(sys.argv[1])
    import scdeep_core as sd
    from scdeep_core.embedding import add_umap

    t_import = time.perf_counter() - T0
    adata = sd.io.read_counts(p["path"])
    res = sd.fit(adata, sd.DESCConfig(n_clusters=p["k"]))
    t_result = time.perf_counter() - T0
    import scdeep_core.umap_compile  # noqa: F401  (importing it compiles umap-learn's numba functions)

    t_compiled = time.perf_counter() - T0
    add_umap(adata, "desc")
    t_umap = time.perf_counter() - T0
    add_umap(adata, "desc", engine="preview")
    t_preview = time.perf_counter() - T0 - t_umap
    print(
        json.dumps(
            {
                "import_s": t_import,
                "fit_s": res.timings["total_s"],
                "to_result_s": t_result,
                "umap_compile_s": t_compiled - t_result,
                "umap_s": t_umap - t_compiled,
                "to_umap_s": t_umap,
                "preview_umap_s": t_preview,
                "n_cells": adata.n_obs,
            }
        )
    )


if __name__ == "__main__":
    main()
