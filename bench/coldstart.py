"""Cold start: from a fresh Python process to a clustering result and to a UMAP."""

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
    add_umap(adata, "desc")
    t_umap = time.perf_counter() - T0
    print(
        json.dumps(
            {
                "import_s": t_import,
                "to_result_s": t_result,
                "to_umap_s": t_umap,
                "umap_only_s": t_umap - t_result,
                "fit_s": res.timings["total_s"],
                "n_cells": adata.n_obs,
            }
        )
    )


if __name__ == "__main__":
    main()
