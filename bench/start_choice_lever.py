"""Issue 8 lever: with the true k, start from KMeans or from Leiden, whichever is more reproducible.

``python -m bench.start_choice_lever [desc|scdcc]``: every dev set, true k, seeds 0, 1, 2. Section 7
found KMeans and Leiden (resolution bisected to k) on the pretrained embedding failing on opposite
sets: KMeans cuts cbmc's two largest types, Leiden cuts pbmc's largest. None of silhouette,
modularity, Calinski-Harabasz, Davies-Bouldin, the final KL or the mean confidence picked the better
one on every set. Not tried there: reproducibility. A partition that cuts a homogeneous group cuts
it in a different place on each subsample; one that follows real types does not.

Each seed pretrains once. Both starts are made on ``z``, and each is scored by its stability: the
cells are subsampled 4 times (80 %), the same method with the same k clusters each subsample, and
the ARI with the full partition on those cells is averaged (:func:`scdeep_core.starts.choose_start`,
which this lever's first version, commit ``11a0745``, copied). Leiden's graph has the run's
``n_neighbors``, as in the engine (DESC 10, scDCC 15); the first version used 15 for both
(BENCHMARKS.md 19 and 19c). The stage then runs from each start;
``more stable`` takes the stage of the start with the higher stability.

Prints start and end ARI per variant, the stabilities, which start was chosen per seed, and the
seed agreement; rows go to ``bench/scratch/start_choice_lever_<method>.csv``.
"""

from __future__ import annotations

import sys


def main(method: str = "desc") -> None:
    import pandas as pd

    from scdeep_core import api, metrics
    from scdeep_core.config import config_for
    from scdeep_core.starts import choose_start

    from .levers import dev_sets, print_summary, save_rows, stage_from

    rows, labels = [], {}
    for name, adata, key, k in dev_sets():
        for seed in range(3):
            pre = api.pretrain(adata, config_for(method, n_clusters=k, seed=seed), label_key=key)
            truth = adata.obs[key].astype(str).to_numpy()[pre.data.cell_mask]
            choice = choose_start(pre.z, k, method="auto", seed=seed, n_neighbors=pre.cfg.n_neighbors)
            runs = {}
            for variant, how in {"KMeans": "kmeans", "Leiden": "leiden"}.items():
                start = choose_start(pre.z, k, method=how, seed=seed, n_neighbors=pre.cfg.n_neighbors).labels
                res = stage_from(adata, pre, start)
                runs[variant] = (start, choice.stability.get(how), res.labels)
            chosen = {"kmeans": "KMeans", "leiden": "Leiden"}[choice.method]
            runs["more stable"] = runs[chosen]
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
                        "chosen": chosen,
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print_summary(df, "variant", labels)
    print(df.groupby(["variant", "dataset"])["stability"].mean().unstack(1).round(3).to_string())
    picks = df[df["variant"] == "more stable"].groupby("dataset")["chosen"].agg("/".join)
    print(picks.to_string())
    save_rows(df, f"start_choice_lever_{method}")


if __name__ == "__main__":
    main(*sys.argv[1:])
