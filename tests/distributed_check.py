"""Run under ``torchrun --nproc_per_node 2``: the collectives of :mod:`scdeep_core.distributed`
against the single-process computation, on data every rank draws from the same seed.

Rank 0 writes ``{"target_max_diff", "gather_ok", "batches_cover_once", "equal_steps"}`` as JSON
to the path in ``argv[1]``; ``tests/test_distributed.py`` reads it.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import torch
import torch.distributed as dist

from scdeep_core import distributed
from scdeep_core.losses import target_distribution


def main(out: str) -> None:
    ranks = distributed.setup("gloo")
    assert ranks.world == 2, ranks
    n_cells, k = 1001, 7  # odd: the shards differ in size
    rng = np.random.default_rng(0)
    # Uneven clusters, so the frequency normalisation matters.
    logits = rng.normal(size=(n_cells, k)) + np.log(rng.dirichlet(np.full(k, 0.5)))
    q = torch.softmax(torch.from_numpy(logits), dim=1)
    own = torch.from_numpy(ranks.shard(n_cells))
    p_own = ranks.target_distribution(q[own]).numpy()
    p_all = ranks.gather_cells(p_own, n_cells)
    single = target_distribution(q).numpy()
    gathered_ids = ranks.gather_cells(ranks.shard(n_cells), n_cells)
    seen, steps = [], []
    for epoch in range(3):
        batches = ranks.epoch_batches(n_cells, 64, np.random.default_rng([0, epoch]))
        steps.append(len(batches))
        local = np.concatenate(batches)
        seen.append(np.sort(np.concatenate([t.numpy() for t in _all_gather_1d(local)])))
    steps_all = _all_gather_1d(np.asarray(steps))
    if ranks.is_main:
        result = {
            "target_max_diff": float(np.abs(p_all - single).max()),
            "gather_ok": bool(np.array_equal(gathered_ids, np.arange(n_cells))),
            "batches_cover_once": all(np.array_equal(s, np.arange(n_cells)) for s in seen),
            "equal_steps": bool(torch.equal(steps_all[0], steps_all[1])),
        }
        with open(out, "w") as fh:
            json.dump(result, fh)
    distributed.teardown()


def _all_gather_1d(values: np.ndarray) -> list[torch.Tensor]:
    """Every rank's 1-d array, padded to the longest (gloo's all_gather needs equal sizes)."""
    size = torch.tensor([len(values)])
    sizes = [torch.zeros_like(size) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, size)
    longest = int(max(sizes))
    padded = torch.full((longest,), -1, dtype=torch.int64)
    padded[: len(values)] = torch.from_numpy(np.asarray(values, dtype=np.int64))
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return [part[: int(n)] for part, n in zip(parts, sizes, strict=True)]


if __name__ == "__main__":
    main(sys.argv[1])
