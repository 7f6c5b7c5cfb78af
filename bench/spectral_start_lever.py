"""Issue 8 lever: spectral clustering as a third candidate of the start choice.

``python -m bench.spectral_start_lever [desc|scdcc] [seeds]``: every dev set, true k, seeds 0,1,2 unless
said (e.g. ``3,4,5``).
Section 7 measured spectral clustering of the kNN graph as the best start on bladder (0.645 against
KMeans's 0.544 on DESC's embedding) and the second best on cbmc, while it cut pbmc's largest type
as Leiden does. Section 19 found reproducibility on subsamples telling KMeans and Leiden apart
where each failed. Does it also tell when spectral clustering is the right start?

Each seed pretrains once. KMeans, Leiden at k and spectral clustering (on the same fuzzy kNN graph
as Leiden, with the run's ``n_neighbors``, labels by ``cluster_qr``; the measured run called
scikit-learn's ``SpectralClustering``, whose labels :func:`scdeep_core.graph.spectral_with_k`
reproduces, ``tests/test_starts.py``) each make a start on ``z`` and are scored by
:func:`scdeep_core.starts.reproducibility` on the same 4 subsets of 80 %. The stage runs from each.
``more stable (K/L)`` is section 19's rule; ``more stable (K/L/S)`` takes the most reproducible of
the three (ties keep the earlier), the rule shipped after this lever (BENCHMARKS.md 20).

Prints start and end ARI per variant, the stabilities, the picks per seed and the seed agreement;
rows go to ``bench/scratch/spectral_start_lever_<method>.csv``.
"""

from __future__ import annotations

import sys


def main(method: str = "desc", seeds: str = "0,1,2") -> None:
    import pandas as pd

    from scdeep_core import metrics
    from scdeep_core.starts import reproducibility

    from .levers import pretrained_per_seed, print_summary, save_rows, stage_from, start_makers

    rows, labels = [], {}
    for name, adata, k, seed, pre, truth in pretrained_per_seed(method, [int(s) for s in seeds.split(",")]):
        makers = start_makers(pre.cfg.n_neighbors)
        runs, stability = {}, {}
        for variant, make in makers.items():
            start = make(pre.z, k, seed)
            stability[variant] = reproducibility(make, pre.z, start, seed) if int(start.max()) + 1 == k else -1.0
            runs[variant] = (start, stability[variant], stage_from(adata, pre, start).labels)
        pick2 = max(["KMeans", "Leiden"], key=lambda m: stability[m])
        pick3 = max(makers, key=lambda m: stability[m])
        runs["more stable (K/L)"] = runs[pick2]
        runs["more stable (K/L/S)"] = runs[pick3]
        for variant, (start, score, end) in runs.items():
            labels[name, variant, seed] = end
            rows.append(
                {
                    "dataset": name,
                    "seed": seed,
                    "variant": variant,
                    "start": metrics.ari(truth, start),
                    "end": metrics.ari(truth, end),
                    "stability": score,
                    "chosen": pick3 if variant.endswith("S)") else pick2,
                }
            )
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print_summary(df, "variant", labels)
    print(df.groupby(["variant", "dataset"])["stability"].mean().unstack(1).round(3).to_string())
    picks = df[df["variant"] == "more stable (K/L/S)"].groupby("dataset")["chosen"].agg("/".join)
    print(picks.to_string())
    save_rows(df, f"spectral_start_lever_{method}" + ("" if seeds == "0,1,2" else f"_seeds{seeds.replace(',', '')}"))


if __name__ == "__main__":
    main(*sys.argv[1:])
