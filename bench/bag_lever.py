"""Issue 8 lever: does the clustering stage keep a start made from a bag of three pretrainings?

``python -m bench.bag_lever [desc|scdcc]``: every dev set, true k, seeds 0, 1, 2. Section 15 found
KMeans on three pretrained embeddings side by side (seeds s, s + 3, s + 6, each scaled to unit
total variance) raising the seed-to-seed agreement of the start on every dev set (cbmc 0.63 ->
0.82) and its ARI by 0.013. Here each seed pretrains once; the stage then runs from the same
weights twice: initialised by KMeans on ``z`` (the default), and by KMeans on the bag (the
centroids are still the clusters' means in this seed's ``z``; the two extra models only vote on
the start). Prints the start and end ARI of each, and the agreement between seeds at the end.

``python -m bench.bag_lever desc --consensus``: the bag votes at the end too. All three models run
the stage from the bag's start (so cluster j means the same cells' centroid in each), and the
labels are the argmax of their mean soft assignment q. Compared with the default (one model, KMeans
on its z) and with the bag's start through one model's stage, from the same pretrainings.
``--auto``: the same without the true k, as the dashboard's default runs: the default chooses k on
one model's z. The consensus variants choose it on the three embeddings side by side
(``kselect.choose_k``; its Leiden clusters start all three stages), or on the first model as the
default does, starting all three stages from that model's Leiden clusters or from KMeans on the
bag with that k.
"""

from __future__ import annotations

import sys

import numpy as np

# The bag's pretrainings for seed s: s, s + 3, s + 6 (no two of seeds 0-2 share a model).
BAG_OFFSETS = (0, 3, 6)


def bag_start(embeddings: list[np.ndarray], k: int, seed: int) -> np.ndarray:
    """KMeans (20 starts) on the embeddings side by side, each scaled to unit total variance."""
    from sklearn.cluster import KMeans

    from scdeep_core.recipe import unit_variance

    x = np.hstack([unit_variance(e) for e in embeddings])
    return KMeans(n_clusters=k, n_init=20, random_state=seed).fit_predict(x)


def main(method: str = "desc") -> None:
    from scdeep_core import api, recipe
    from scdeep_core.config import config_for

    from .levers import print_summary, save_rows, stage_from_same_weights

    def starts(adata, pre, seed):
        others = [
            api.pretrain(adata, config_for(method, n_clusters=pre.cfg.n_clusters, seed=seed + offset)).z
            for offset in BAG_OFFSETS[1:]
        ]

        def bag(z, cfg, k_selection=None, groups=None):
            return bag_start([z, *others], cfg.n_clusters, cfg.seed)

        return {"z": None, "bag of 3": bag}

    df = stage_from_same_weights(method, recipe, "initial_clusters", starts)
    print_summary(df, "variant", df.attrs["labels"], extra=("stage_s",))
    save_rows(df, f"bag_lever_{method}")


def consensus(method: str = "desc", auto: bool = False) -> None:
    import pandas as pd

    from scdeep_core import api, metrics
    from scdeep_core.config import config_for
    from scdeep_core.kselect import choose_k
    from scdeep_core.recipe import unit_variance

    from .levers import dev_sets, print_k_per_seed, print_summary, save_rows, stage_from

    rows, labels = [], {}
    for name, adata, key, k in dev_sets():
        for seed in range(3):
            models = [
                api.pretrain(
                    adata, config_for(method, n_clusters="auto" if auto else k, seed=seed + offset), label_key=key
                )
                for offset in BAG_OFFSETS
            ]
            truth = adata.obs[key].astype(str).to_numpy()[models[0].data.cell_mask]
            default = api.recluster(adata, models[0], copy=True)

            def stages_from(start, _models=models, _adata=adata):
                return [stage_from(_adata, m, start) for m in _models]

            def vote(bagged):
                return np.mean([b.q for b in bagged], axis=0).argmax(axis=1)

            ends = {"z": (default.init_scores.get("ari"), default.labels)}
            if auto:
                # 17c: k and the start chosen on the bag; then two ways of choosing k on one model
                # (the default's own scan): its Leiden clusters start all three stages, or KMeans
                # on the bag with its k does.
                bag = np.hstack([unit_variance(m.z) for m in models])
                starts = {
                    "k on bag": choose_k(bag, n_neighbors=models[0].cfg.n_neighbors, seed=seed).chosen_labels,
                    "k on model 1, its start": models[0].select_k().chosen_labels,
                }
                starts["k on model 1, bag KMeans start"] = bag_start(
                    [m.z for m in models], models[0].select_k().n_clusters, seed
                )
                for variant, start in starts.items():
                    ends[variant] = (metrics.ari(truth, start), vote(stages_from(start)))
            else:
                start = bag_start([m.z for m in models], k, seed)
                bagged = stages_from(start)
                ends["bag of 3 start"] = (metrics.ari(truth, start), bagged[0].labels)
                ends["bag of 3 start and end"] = (metrics.ari(truth, start), vote(bagged))
            for variant, (ari_start, end) in ends.items():
                labels[name, variant, seed] = end
                score = metrics.ari(truth, end)
                rows.append(
                    {"dataset": name, "seed": seed, "variant": variant, "start": ari_start, "end": score}
                    | {"k": len(np.unique(end)), "true k": k}
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print_summary(df, "variant", labels)
    print_k_per_seed(df)
    save_rows(df, f"bag_lever_consensus_{method}{'_auto' if auto else ''}")


if __name__ == "__main__":
    if "--consensus" in sys.argv:
        consensus(*[a for a in sys.argv[1:] if not a.startswith("--")], auto="--auto" in sys.argv)
    else:
        main(*sys.argv[1:])
