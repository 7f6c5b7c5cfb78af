"""Issue 8 lever: with an automatic k, start from the scan's Leiden clusters or from the start choice at that k?

``python -m bench.auto_start_lever [desc|scdcc] [seeds]``: every dev set, k chosen automatically,
seeds 0,1,2 unless said. Today an automatic k starts the clustering stage from the Leiden clusters
of the chosen resolution, after the BIC merges (:func:`scdeep_core.kselect.choose_k`). With a given
k the stage starts from the most reproducible of KMeans, Leiden at k and spectral clustering
(:func:`scdeep_core.starts.choose_start`, §19-§20), which gained most on the uneven sets (bladder,
cbmc). Does the same choice, made at the chosen k, help the automatic path?

Each seed pretrains once and chooses k once; the stage then runs from the scan's clusters and from
``choose_start(z, k)``. Rows go to ``bench/scratch/auto_start_lever_<method>.csv``.
"""

from __future__ import annotations

import sys


def main(method: str = "desc", seeds: str = "0,1,2") -> None:
    import pandas as pd

    from scdeep_core import api, metrics
    from scdeep_core.config import config_for
    from scdeep_core.starts import choose_start

    from .levers import dev_sets, print_summary, save_rows, stage_from

    rows, labels = [], {}
    for name, adata, key, _ in dev_sets():
        for seed in [int(s) for s in seeds.split(",")]:
            pre = api.pretrain(adata, config_for(method, n_clusters="auto", seed=seed), label_key=key)
            truth = adata.obs[key].astype(str).to_numpy()[pre.data.cell_mask]
            selection = pre.select_k()
            k = selection.n_clusters
            choice = choose_start(pre.z, k, seed=seed, n_neighbors=pre.cfg.n_neighbors)
            starts = {
                "scan's Leiden clusters (default)": selection.chosen_labels,
                "start choice at that k": choice.labels,
            }
            for variant, start in starts.items():
                end = stage_from(adata, pre, start).labels
                labels[name, variant, seed] = end
                rows.append(
                    {
                        "dataset": name,
                        "seed": seed,
                        "variant": variant,
                        "k": k,
                        "chosen": choice.method if variant.startswith("start choice") else "scan",
                        "start": metrics.ari(truth, start),
                        "end": metrics.ari(truth, end),
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print_summary(df, "variant", labels)
    picks = df[df["variant"].str.startswith("start choice")].groupby("dataset")["chosen"].agg("/".join)
    print(picks.to_string())
    save_rows(df, f"auto_start_lever_{method}" + ("" if seeds == "0,1,2" else f"_seeds{seeds.replace(',', '')}"))


if __name__ == "__main__":
    main(*sys.argv[1:])
