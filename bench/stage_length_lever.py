"""Issue 8 lever: how long the clustering stage may run, judged from the same pretrained models.

``python -m bench.stage_length_lever [desc|scdcc]`` is ``python -m bench.config_lever --same-weights
<method> max_cluster_epochs 100,20,10``: every dev set, true k, seeds 0, 1, 2. Each seed
pretrains once; the stage then runs from the same weights with at most 100, 20 (the default since
sections 15e/15f) or 10 epochs (``max_cluster_epochs``, set explicitly for every variant; the tol
check still stops it earlier, after ``min_cluster_epochs``).
Section 15d found the default DESC stage on cbmc drifting below its own start for 100 epochs
without converging: a shorter stage is the simplest way not to drift far.
"""

from __future__ import annotations

import sys

from .config_lever import same_weights

CAPS = "100,20,10"


def main(method: str = "desc") -> None:
    same_weights(method, "max_cluster_epochs", CAPS)


if __name__ == "__main__":
    main(*sys.argv[1:])
