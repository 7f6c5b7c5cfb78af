"""Issue 8 lever: other label-free scores for choosing the start, against reproducibility on subsamples.

``python -m bench.start_score_lever [desc|scdcc] [seeds]``: every dev set, true k, seeds 0-5 unless
said. Section 20c found the shipped rule (the most reproducible of KMeans, Leiden at k and spectral
clustering on 80 % subsamples, :func:`scdeep_core.starts.choose_start`) taking spectral clustering's
wrong cut on pbmc: a deterministic cut can be reproducible without being real. Two scores that might
tell such a cut apart:

- ``graph perturbed``: reproducibility again, but each subsample's re-run builds its kNN graph with
  another number of neighbours (10, 30, 20, 40), so a cut that only one graph makes should move;
- ``medoid``: the candidate that agrees most (mean ARI) with the other two, the usual consensus pick;
- and their combinations with today's score (``stability + medoid``, ``min(stability, perturbed)``).

Each seed pretrains once and the three starts are made on ``z`` exactly as
``bench.spectral_start_lever`` makes them (same weights: their ARI against the labels matches that
lever's rows to 1e-15), so each rule's pick is scored by the end ARI that lever measured from that
start (``bench/scratch/spectral_start_lever_<method>[_seeds345].csv``, which must exist: run that
lever first for the same seeds). ``oracle`` is the best of the three per run. Rows go to
``bench/scratch/start_score_lever_<method>.csv``.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pandas as pd

CANDIDATES = ("KMeans", "Leiden", "Spectral")
#: Neighbour counts of the graph-perturbed re-runs, one per subsample.
PERTURBED_NEIGHBOURS = (10, 30, 20, 40)


def scores_per_run(method: str, seeds: list[int]) -> pd.DataFrame:
    """Start ARI, the scores and the pairwise ARI of the three starts, per dev set and seed."""
    from scdeep_core import metrics
    from scdeep_core.starts import reproducibility

    from .levers import pretrained_per_seed, start_makers

    # the graph-perturbed re-run with seed s builds its graph with PERTURBED_NEIGHBOURS[s % 4] neighbours
    graphs = [start_makers(n) for n in PERTURBED_NEIGHBOURS]

    def perturbed_maker(variant):
        return lambda x, k, s: graphs[s % len(graphs)][variant](x, k, s)

    perturbed = {v: perturbed_maker(v) for v in CANDIDATES}
    rows = []
    for name, _, k, seed, pre, truth in pretrained_per_seed(method, seeds):
        makers = start_makers(pre.cfg.n_neighbors)
        starts = {v: makers[v](pre.z, k, seed) for v in CANDIDATES}
        row = {"dataset": name, "seed": seed}
        for v, labels in starts.items():
            found_k = int(labels.max()) + 1 == k
            row[f"start_{v}"] = metrics.ari(truth, labels)
            row[f"stability_{v}"] = reproducibility(makers[v], pre.z, labels, seed) if found_k else -1.0
            row[f"perturbed_{v}"] = reproducibility(perturbed[v], pre.z, labels, seed) if found_k else -1.0
        for a, b in itertools.combinations(CANDIDATES, 2):
            row[f"pair_{a}_{b}"] = row[f"pair_{b}_{a}"] = metrics.ari(starts[a], starts[b])
        print({key: round(v, 3) if isinstance(v, float) else v for key, v in row.items()}, flush=True)
        rows.append(row)
    return pd.DataFrame(rows)


def rules(row: pd.Series) -> dict[str, dict[str, float]]:
    """Each rule's score of each candidate (the highest is picked; a candidate without k scores -inf)."""
    ok = {v: row[f"stability_{v}"] >= 0 for v in CANDIDATES}
    medoid = {v: sum(row[f"pair_{v}_{w}"] for w in CANDIDATES if w != v) / 2 for v in CANDIDATES}

    def only_valid(score):
        return {v: score(v) if ok[v] else float("-inf") for v in CANDIDATES}

    return {
        "stability (shipped)": only_valid(lambda v: row[f"stability_{v}"]),
        "stability, K/L only (§19)": only_valid(lambda v: row[f"stability_{v}"] if v != "Spectral" else -1.0),
        "graph perturbed": only_valid(lambda v: row[f"perturbed_{v}"]),
        "medoid": only_valid(lambda v: medoid[v]),
        "stability + medoid": only_valid(lambda v: row[f"stability_{v}"] + medoid[v]),
        "min(stability, perturbed)": only_valid(lambda v: min(row[f"stability_{v}"], row[f"perturbed_{v}"])),
    }


def main(method: str = "desc", seeds: str = "0,1,2,3,4,5") -> None:
    from .levers import save_rows

    seed_list = [int(s) for s in seeds.split(",")]
    runs = scores_per_run(method, seed_list)
    scratch = Path("bench/scratch")
    measured = pd.concat(
        [pd.read_csv(f) for f in sorted(scratch.glob(f"spectral_start_lever_{method}*.csv"))], ignore_index=True
    )
    measured = measured[measured["variant"].isin(CANDIDATES)]
    end = measured.pivot_table(index=["dataset", "seed"], columns="variant", values="end")
    start = measured.pivot_table(index=["dataset", "seed"], columns="variant", values="start")
    picks = []
    for _, row in runs.iterrows():
        key = (row["dataset"], row["seed"])
        if key not in end.index:
            print(f"no end ARI measured for {key}: run bench.spectral_start_lever {method} for that seed")
            continue
        mismatch = max(abs(row[f"start_{v}"] - start.loc[key, v]) for v in CANDIDATES)
        assert mismatch < 1e-9, f"{key}: the starts differ from the spectral lever's ({mismatch:.3g})"
        for rule, score in rules(row).items():
            pick = max(CANDIDATES, key=lambda v: score[v])
            picks.append({"dataset": key[0], "seed": key[1], "rule": rule, "pick": pick, "end": end.loc[key, pick]})
        picks.append({"dataset": key[0], "seed": key[1], "rule": "oracle", "pick": "", "end": end.loc[key].max()})
    df = pd.DataFrame(picks)
    table = df.groupby(["rule", "dataset"])["end"].mean().unstack(1)
    table["mean"] = table.mean(axis=1)
    print(table.round(3).to_string())
    picked = df[df["rule"] != "oracle"].groupby(["rule", "dataset"])["pick"]
    print(picked.agg(lambda p: "".join(v[0] for v in p)).unstack(1).to_string())
    save_rows(runs, f"start_score_lever_{method}")


if __name__ == "__main__":
    main(*sys.argv[1:])
