"""Issue 8 lever: the clustering stage's target distribution, judged from the same pretrained models.

``python -m bench.target_lever [desc|scdcc]``: every dev set, seeds 0, 1, 2, true k. Each seed
pretrains once; the clustering stage then runs from the same weights with DEC's target
``p ∝ q² / f^power`` for each ``power`` (1 = DEC, the default; 0 = sharpening only, no pull
towards even cluster sizes). Prints the ARI of the initial KMeans and at the end of each stage.
"""

from __future__ import annotations

import sys

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
    from scdeep_core import train

    from .levers import stage_from_same_weights

    df = stage_from_same_weights(
        method, train, "target_distribution", lambda *_: {p: target_with_power(p) for p in POWERS}
    )
    df = df.rename(columns={"variant": "power", "start": "init"})
    print(df.groupby(["power", "dataset"])[["init", "end"]].mean().unstack(0).round(3))
    print(df.groupby("power")[["init", "end"]].mean().round(3))


if __name__ == "__main__":
    main(*sys.argv[1:])
