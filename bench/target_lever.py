"""Issue 8 lever: the clustering stage's target distribution, judged from the same pretrained models.

``python -m bench.target_lever [desc|scdcc]``: every dev set, seeds 0, 1, 2, true k. Each seed
pretrains once; the clustering stage then runs from the same weights with DEC's target
``p ∝ q² / f^power`` for each ``power`` (1 = DEC, the default; 0 = sharpening only, no pull
towards even cluster sizes). Prints the ARI of the initial KMeans and at the end of each stage.
"""

from __future__ import annotations

import sys
import time
import warnings

import anndata as ad
import pandas as pd
import torch

POWERS = (1.0, 0.5, 0.0)


def target_with_power(power: float):
    """DEC's target with the cluster frequency raised to ``power``."""

    def target(q: torch.Tensor, normalise_frequency: bool = True) -> torch.Tensor:
        q = q.detach()
        weight = q.pow(2) / q.sum(dim=0, keepdim=True).clamp_min(1e-12).pow(power)
        return weight / weight.sum(dim=1, keepdim=True).clamp_min(1e-12)

    return target


def main(method: str = "desc") -> None:
    from scdeep_core import api, metrics, train
    from scdeep_core.config import config_for

    from .common import DATASETS, SHARED

    warnings.filterwarnings("ignore")
    original = train.target_distribution
    rows = []
    for name, (file, key, k) in DATASETS.items():
        adata = ad.read_h5ad(SHARED / file)
        for seed in range(3):
            cfg = config_for(method, n_clusters=k, seed=seed)
            t0 = time.perf_counter()
            pre = api.pretrain(adata, cfg, label_key=key)
            t_pre = time.perf_counter() - t0
            for power in POWERS:
                train.target_distribution = target_with_power(power)
                try:
                    t0 = time.perf_counter()
                    res = api.recluster(adata, pre, copy=True)
                finally:
                    train.target_distribution = original
                truth = adata.obs[key].astype(str).to_numpy()[res.cell_mask]
                rows.append(
                    {
                        "dataset": name,
                        "seed": seed,
                        "power": power,
                        "init": res.init_scores.get("ari"),
                        "end": metrics.ari(truth, res.labels),
                        "epochs": int(res.history["epoch"].max()) if len(res.history) else 0,
                        "converged": res.converged,
                        "pretrain_s": round(t_pre, 1),
                        "stage_s": round(time.perf_counter() - t0, 1),
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print(df.groupby(["power", "dataset"])[["init", "end"]].mean().unstack(0).round(3))
    print(df.groupby("power")[["init", "end"]].mean().round(3))


if __name__ == "__main__":
    main(*sys.argv[1:])
