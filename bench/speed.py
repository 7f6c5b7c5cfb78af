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


def _median_epoch(history, phase: str, skip: int = 0) -> float:
    """Median duration of a phase's epochs in a result's history (the loop's own ``epoch_s``)."""
    seconds = history.loc[history["phase"] == phase, "epoch_s"].to_numpy(dtype=float)
    return float(np.median(seconds[skip:]))


def measure(path: str, k: int, epochs: int = 5, fit_overrides: dict | None = None) -> dict:
    """Epoch times against the floor, then a full fit (default settings, or ``fit_overrides[method]``:
    the quick mode's shorter schedule). Both go through ``scdeep_core.fit``: what is timed is what
    a user runs."""
    import anndata as ad

    import scdeep_core as sd

    adata = ad.read_h5ad(path) if not path.startswith("builtin:") else sd.datasets.load_builtin(path.split(":", 1)[1])
    label_key = "label" if "label" in adata.obs else None
    out = {}
    for method in ("desc", "scdcc"):
        # A fixed schedule: pretraining without early stopping, a clustering stage that never converges.
        timed = sd.config_for(
            method, n_clusters=k, pretrain_epochs=epochs + 1, pretrain_patience=0, max_cluster_epochs=epochs, tol=0.0
        )
        schedule = sd.fit(adata, timed, copy=True)
        pre = _median_epoch(schedule.history, "pretrain", skip=1)  # the first epoch warms up allocations
        clu = _median_epoch(schedule.history, "cluster")
        pretrained = schedule.pretrained
        x = torch.from_numpy(pretrained.data.scaled_input(slice(None)))
        torch.manual_seed(0)
        floor = floor_epoch_seconds(pretrained.hooks.build_model(pretrained.data.n_genes), x, timed.batch_size)
        del schedule, pretrained, x
        t = time.perf_counter()
        res = sd.fit(
            adata,
            sd.config_for(method, n_clusters=k, **(fit_overrides or {}).get(method, {})),
            label_key=label_key,
            copy=True,
        )
        out[method] = {
            "pretrain_epoch_s": pre,
            "cluster_epoch_s": clu,
            "floor_epoch_s": floor,
            "ratio_pretrain": pre / floor,
            "ratio_cluster": clu / floor,
            "full_fit_s": time.perf_counter() - t,
            "full_fit_ari": res.scores.get("ari"),
            "n_cells": res.pretrained.data.n_cells,
            "n_genes": res.pretrained.data.n_genes,
            "pretrain_epochs": res.timings["pretrain_epochs"],
            "cluster_epochs": res.timings["cluster_epochs"],
        }
    return out


if __name__ == "__main__":
    p = json.loads(sys.argv[1])
    print(json.dumps(measure(p["path"], p["k"], p.get("epochs", 5), p.get("fit_overrides"))))
