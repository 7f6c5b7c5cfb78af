"""Issue 8 lever: the size of the embedding, judged from the start to the end of the stage.

``python -m bench.latent_lever [desc|scdcc] [16,32,64]``: every dev set, true k, seeds 0, 1, 2. For each
embedding size the model pretrains and the clustering stage runs with the method's default config
otherwise. Prints the ARI of the KMeans start and at the end of the stage, and the seed-to-seed
agreement at the end. Sections 15b/15c found the 50 PCs keeping what the 16- or 32-dimensional
embedding loses on data with uneven types; a wider embedding is the pretraining-side test of that.
"""

from __future__ import annotations

import sys
import time
import warnings

import anndata as ad
import pandas as pd


def main(method: str = "desc", sizes: str = "16,32,64") -> None:
    from scdeep_core import api, metrics
    from scdeep_core.config import config_for

    from .common import DATASETS, SHARED
    from .levers import print_summary, save_rows

    warnings.filterwarnings("ignore")
    rows, labels = [], {}
    for name, (file, key, k) in DATASETS.items():
        adata = ad.read_h5ad(SHARED / file)
        for latent in map(int, sizes.split(",")):
            for seed in range(3):
                t0 = time.perf_counter()
                cfg = config_for(method, n_clusters=k, seed=seed, latent_dim=latent)
                pre = api.pretrain(adata, cfg, label_key=key)
                res = api.recluster(adata, pre, copy=True)
                truth = adata.obs[key].astype(str).to_numpy()[res.cell_mask]
                labels[name, latent, seed] = res.labels
                rows.append(
                    {
                        "dataset": name,
                        "latent": latent,
                        "seed": seed,
                        "start": res.init_scores.get("ari"),
                        "end": metrics.ari(truth, res.labels),
                        "converged": res.converged,
                        "fit_s": round(time.perf_counter() - t0, 1),
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print_summary(df, "latent", labels, extra=("fit_s",))
    save_rows(df, f"latent_lever_{method}")


if __name__ == "__main__":
    main(*sys.argv[1:])
