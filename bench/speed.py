"""Per-epoch time of both methods next to the floor (bare torch, same network, same data)."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch


def floor_epoch_seconds(model: torch.nn.Module, x: torch.Tensor, batch_size: int, repeats: int = 3) -> float:
    """Forward + backward + Adam step of ``model`` (encode + decode) over ``x``: nothing else."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    n = x.shape[0]

    def epoch() -> None:
        perm = torch.randperm(n)
        for i in range(0, n, batch_size):
            out = model.decode(model.encode(x[perm[i : i + batch_size]]))
            loss = out.square().mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    epoch()
    t = time.perf_counter()
    for _ in range(repeats):
        epoch()
    return (time.perf_counter() - t) / repeats


def measure(path: str, k: int, epochs: int = 5, fit_overrides: dict | None = None) -> dict:
    """Epoch times against the floor, then a full fit (default settings, or ``fit_overrides[method]``:
    the quick mode's shorter schedule)."""
    import anndata as ad

    import scdeep_core as sd
    from scdeep_core.api import centroids_of, initial_clusters
    from scdeep_core.methods import DESCHooks, SCDCCHooks
    from scdeep_core.pp import prepare
    from scdeep_core.progress import RunPlan
    from scdeep_core.train import Monitor, SnapshotMaker, cluster_stage, embed, pretrain

    adata = ad.read_h5ad(path) if not path.startswith("builtin:") else sd.datasets.load_builtin(path.split(":", 1)[1])
    out = {}
    for method in ("desc", "scdcc"):
        cfg = sd.config_for(method, n_clusters=k, max_cluster_epochs=epochs, tol=0.0, pretrain_patience=0)
        data = prepare(adata, method=method, n_top_genes=cfg.n_top_genes, max_value=cfg.scale_max_value)
        torch.manual_seed(0)
        hooks = DESCHooks(cfg) if method == "desc" else SCDCCHooks(cfg, data)
        model = hooks.build_model(data.n_genes)
        rng = np.random.default_rng(0)
        mon = Monitor(plan=RunPlan(method, data.n_cells, epochs + 1, epochs))
        pretrain(model, data, hooks, cfg, mon, rng, epochs + 1)
        pre = float(np.median(mon.time_left.pretrain_times[1:]))
        z = embed(model, data)
        model.set_centroids(torch.from_numpy(centroids_of(z, initial_clusters(z, cfg))))
        cluster_stage(model, data, hooks, cfg, mon, rng, SnapshotMaker(z, cfg.snapshot_cells, 0))
        clu = float(np.median(mon.time_left.cluster_times))
        x = torch.from_numpy(data.scaled_input(slice(None)))
        torch.manual_seed(0)
        floor = floor_epoch_seconds(hooks.build_model(data.n_genes), x, cfg.batch_size)
        t = time.perf_counter()
        res = sd.fit(
            adata.copy(),
            sd.config_for(method, n_clusters=k, **(fit_overrides or {}).get(method, {})),
            label_key="label" if "label" in adata.obs else None,
        )
        out[method] = {
            "pretrain_epoch_s": pre,
            "cluster_epoch_s": clu,
            "floor_epoch_s": floor,
            "ratio_pretrain": pre / floor,
            "ratio_cluster": clu / floor,
            "full_fit_s": time.perf_counter() - t,
            "full_fit_ari": res.scores.get("ari"),
            "n_cells": data.n_cells,
            "n_genes": data.n_genes,
            "pretrain_epochs": res.timings["pretrain_epochs"],
            "cluster_epochs": res.timings["cluster_epochs"],
        }
    return out


if __name__ == "__main__":
    p = json.loads(sys.argv[1])
    print(json.dumps(measure(p["path"], p["k"], p.get("epochs", 5), p.get("fit_overrides"))))
