"""Issue 8 lever: how long the clustering stage may run, judged from the same pretrained models.

``python -m bench.stage_length_lever [desc|scdcc]``: every dev set, true k, seeds 0, 1, 2. Each seed
pretrains once; the stage then runs from the same weights with at most 100, 20 (the default since
sections 15e/15f) or 10 epochs (``max_cluster_epochs``, set explicitly for every variant; the tol
check still stops it earlier, after ``min_cluster_epochs``).
Section 15d found the default DESC stage on cbmc drifting below its own start for 100 epochs
without converging: a shorter stage is the simplest way not to drift far.
"""

from __future__ import annotations

import dataclasses
import sys

CAPS = (100, 20, 10)


def main(method: str = "desc") -> None:
    from scdeep_core import api

    from .levers import print_summary, save_rows, stage_from_same_weights

    engine_recluster = api.recluster

    def capped(cap: int):
        def recluster(adata, pretrained, config=None, **kwargs):
            cfg = dataclasses.replace(config or pretrained.cfg, max_cluster_epochs=cap)
            return engine_recluster(adata, pretrained, cfg, **kwargs)

        return recluster

    df = stage_from_same_weights(method, api, "recluster", lambda *_: {cap: capped(cap) for cap in CAPS})
    df = df.rename(columns={"variant": "most epochs"})
    print_summary(df, "most epochs", df.attrs["labels"], extra=("stage_s",))
    save_rows(df, f"stage_length_lever_{method}")


if __name__ == "__main__":
    main(*sys.argv[1:])
