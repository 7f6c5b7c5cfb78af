"""Run the benchmarks and write a report: ``python -m bench [--quick] [--sections ...] [--out FILE]``.

Sections: 1 accuracy (all datasets, 3 seeds, baselines in the same run), 2 speed against
the floor, 3 scaling with cells, 4 cold start, 5 several browser sessions at once. ``--quick``
runs a small version of each on the built-in PBMC (no shared data needed) in well under 3
minutes. Only a full run (every section and variant, not quick) updates the committed
BENCHMARKS.md; quick or partial runs write to ``bench/scratch/`` unless ``--out`` says otherwise.
Each measurement is saved under ``bench/.cache/<code version>/``; ``--resume`` reuses them
after a killed run of the same code (``scdeep_core``, ``bench``, ``pages``, ``app.py``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from .common import APP_CODE, CORE_CODE, DATASETS, ROOT, SHARED, code_version, git_commit, machine, run_isolated

SECTIONS = ["accuracy", "speed", "scaling", "cold", "batch", "interactive", "load"]
REPORT = ROOT / "BENCHMARKS.md"  # the committed report: only a full run writes it
SCRATCH = ROOT / "bench" / "scratch"  # where quick and partial runs go (git-ignored)
VARIANTS = ["desc", "scdcc", "desc_auto", "scdcc_auto", "scdcc_constraints", "leiden_scanpy", "leiden_k", "kmeans_pca"]
# The "thorough" preset (a consensus of three models, about 3x the time): measured when asked for by name.
THOROUGH_VARIANTS = ["desc_thorough", "scdcc_thorough", "desc_thorough_auto", "scdcc_thorough_auto"]
BASELINES = ["leiden_scanpy", "leiden_k", "kmeans_pca"]
BATCH_VARIANTS = [f"{m}_{mode}" for m in ("desc", "scdcc") for mode in ("free", "without", "with")] + [
    "kmeans_pca",
    "combat_kmeans_pca",
]
INTERACTIVE_SETS = ["pbmc_10x_4271", "cbmc_citeseq_8617"]  # issue 12's simulated users
INTERACTIVE_SIZES = [10, 25, 50]  # labelled cells selected per type
# Six groups in three batches, each batch shifting every gene by exp(N(0, 0.5)).
BATCH_SIM = {"n_cells": 2000, "n_genes": 1000, "n_groups": 6, "n_batches": 3, "batch_effect": 0.5}


class Checkpoint:
    """Each finished measurement saved under ``bench/.cache/<code version>/`` so a killed run can ``--resume``.

    Results are reused only for the same measured code (a hash of the library and the measuring
    modules; the pages too for the load test) and the same payload, so a resumed report never
    mixes versions of the code it measures, while doc-only commits keep the saved results.
    """

    def __init__(self, resume: bool, suffix: str = ""):
        self.dirs = {
            "core": ROOT / "bench" / ".cache" / (code_version(CORE_CODE) + suffix),
            "app": ROOT / "bench" / ".cache" / (code_version(APP_CODE) + suffix),
        }
        self.resume = resume
        self.commits: set[str] = set()  # the commits whose measurements the report uses

    def run(self, name: str, module: str, payload: dict, timeout: float = 3600, code: str = "core") -> dict:
        """Run ``module`` isolated, or reuse its saved answer; ``code`` says what it depends on
        ("core": the library and the bench; "app": also the pages)."""
        self.dirs[code].mkdir(parents=True, exist_ok=True)
        path = self.dirs[code] / f"{name}.json"
        if self.resume and path.exists():
            saved = json.loads(path.read_text())
            if saved.get("payload") == payload:
                self.commits.add(saved.get("commit", "unknown"))
                return saved["result"]
        result = run_isolated(module, payload, timeout=timeout)
        commit = git_commit()
        self.commits.add(commit)
        path.write_text(json.dumps({"payload": payload, "result": result, "commit": commit}))
        return result


def accuracy(
    datasets: dict, seeds: list[int], overrides: dict, variants: list[str], log, checkpoint: Checkpoint
) -> pd.DataFrame:
    rows = []
    for name, (path, label_key, k) in datasets.items():
        for variant in variants:
            t = time.perf_counter()
            out = checkpoint.run(
                f"accuracy__{name}__{variant}",
                "bench.run_one",
                {
                    "path": str(path),
                    "label_key": label_key,
                    "k": k,
                    "variant": variant,
                    "seeds": seeds,
                    "overrides": overrides.get(variant.split("_")[0], {}),
                },
                timeout=7200,
            )
            for r in out["rows"]:
                rows.append(dict(r, dataset=name, variant=variant, peak_rss_mb=out["peak_rss_mb"]))
            log(
                f"{name} {variant}: ARI {np.mean([r['ari'] for r in out['rows']]):.3f} ({time.perf_counter() - t:.0f}s)"
            )
    return pd.DataFrame(rows)


def summarise_accuracy(df: pd.DataFrame) -> pd.DataFrame:
    g = df.groupby(["dataset", "variant"], sort=False)
    fmt = lambda col: g[col].mean().round(3).astype(str) + " ± " + g[col].std().fillna(0).round(3).astype(str)  # noqa: E731
    s = pd.DataFrame(
        {
            "ARI": fmt("ari"),
            "NMI": fmt("nmi"),
            "ACC": fmt("acc"),
            "seed agreement": g["seed_agreement"].mean().round(3) if "seed_agreement" in df else np.nan,
            "k found": g["k_found"].agg(lambda v: "/".join(str(int(x)) for x in v)),
            "wall s (mean)": g["seconds"].mean().round(1),
            "peak RSS MiB": g["peak_rss_mb"].max().round(0).astype(int),
        }
    )
    return s.reset_index()


def accuracy_stages(df: pd.DataFrame) -> pd.DataFrame:
    """Mean ARI after pretraining (KMeans with the true k on the embedding), of the initial clusters and at the end,
    with the clustering epochs and how many seeds converged."""
    deep = df[~df["variant"].isin(BASELINES)]
    if deep.empty or "ari_init" not in deep:
        return pd.DataFrame()
    g = deep.groupby(["dataset", "variant"], sort=False)
    return pd.DataFrame(
        {
            "ARI pretrained (KMeans, true k)": g["ari_pretrain_kmeans"].mean().round(3),
            "ARI initial clusters": g["ari_init"].mean().round(3),
            "ARI final": g["ari"].mean().round(3),
            "clustering epochs": g["cluster_epochs"].agg(lambda v: "/".join(str(int(x)) for x in v)),
            "converged": g["converged"].agg(lambda v: f"{int(sum(bool(x) for x in v))}/{len(v)}"),
        }
    ).reset_index()


def targets(df: pd.DataFrame) -> pd.DataFrame:
    """Issue 8's accuracy targets, per dataset: each method with the true k against the best baseline,
    and the automatic k against the number of labelled types and Leiden at resolution 1."""
    m = df.groupby(["dataset", "variant"], sort=False)["ari"].mean().unstack()
    agree = df.groupby(["dataset", "variant"], sort=False)["seed_agreement"].mean().unstack()
    k_found = df.groupby(["dataset", "variant"], sort=False)["k_found"].agg(list).unstack()
    rows = []
    for ds in m.index:
        base = m.loc[ds, [b for b in BASELINES if b in m.columns]].dropna()
        best = base.max() if len(base) else np.nan  # a run of deep variants alone has no baseline to compare with
        row = {"dataset": ds, "best baseline": f"{best:.3f} ({base.idxmax()})" if len(base) else "not run"}
        for method in ("desc", "scdcc", "desc_thorough", "scdcc_thorough"):
            if method in m.columns:
                versus = "" if not len(base) else " ≥" if m.loc[ds, method] >= best else " <"
                row[f"{method} (true k)"] = f"{m.loc[ds, method]:.3f}{versus}"
            auto = f"{method}_auto"
            if auto in m.columns and "leiden_scanpy" in m.columns:
                ks = k_found.loc[ds, auto]
                true_k = int(round(np.median(k_found.loc[ds, "kmeans_pca"]))) if "kmeans_pca" in m.columns else None
                in_range = true_k is not None and all(abs(k - true_k) <= 0.25 * true_k for k in ks)
                row[f"{auto} k (±25 %?)"] = "/".join(str(int(k)) for k in ks) + (" yes" if in_range else " no")
                row[f"{auto} ARI vs Leiden res 1"] = (
                    f"{m.loc[ds, auto]:.3f} {'>' if m.loc[ds, auto] > m.loc[ds, 'leiden_scanpy'] else '≤'} "
                    f"{m.loc[ds, 'leiden_scanpy']:.3f}"
                )
            if method in agree.columns:
                row[f"{method} seed agreement"] = f"{agree.loc[ds, method]:.3f}"
        rows.append(row)
    return pd.DataFrame(rows)


def plot_accuracy(df: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    m = df.groupby(["dataset", "variant"], sort=False)["ari"].agg(["mean", "std"]).unstack("variant")
    ax = m["mean"].plot.bar(yerr=m["std"], figsize=(11, 4.5), rot=15)
    ax.set_ylabel("ARI (mean ± sd over seeds)")
    ax.legend(fontsize=8, ncol=3)
    plt.tight_layout()
    plt.savefig(path, dpi=90)
    plt.close()


def plot_scaling(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = [r["n_cells"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for method in ("desc", "scdcc"):
        axes[0].plot(n, [r[method]["pretrain_epoch_s"] for r in rows], "o-", label=f"{method} pretrain epoch")
        axes[0].plot(n, [r[method]["cluster_epoch_s"] for r in rows], "s--", label=f"{method} cluster epoch")
        axes[1].plot(n, [r[method]["fit_s"] for r in rows], "o-", label=method)
    axes[2].plot(n, [r["peak_rss_mb"] / 1024 for r in rows], "o-")
    for ax, title in zip(axes, ["seconds per epoch", "fit seconds (fixed schedule)", "peak RSS (GiB)"], strict=True):
        ax.set_xscale("log")
        ax.set_yscale("log" if ax is not axes[2] else "linear")
        ax.set_xlabel("cells")
        ax.set_title(title)
    axes[0].legend(fontsize=7)
    axes[1].legend(fontsize=7)
    plt.tight_layout()
    plt.savefig(path, dpi=90)
    plt.close()


def write_report(
    out: Path,
    quick: bool,
    acc: pd.DataFrame,
    speed: dict,
    scaling: list[dict],
    cold: dict,
    seconds: float,
    load: dict | None = None,
    batch: list[dict] | None = None,
    interactive: list[dict] | None = None,
    commit: str | None = None,
    resumed: bool = False,
) -> None:
    # The committed report keeps its plots in bench/plots/; any other report beside itself in plots/.
    plots = out.parent / "bench" / "plots" if out.resolve() == REPORT.resolve() else out.parent / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    link = plots.relative_to(out.parent).as_posix()
    if not acc.empty:
        plot_accuracy(acc, plots / ("accuracy_quick.png" if quick else "accuracy.png"))
    if scaling:
        plot_scaling(scaling, plots / ("scaling_quick.png" if quick else "scaling.png"))
    lines = [
        "# Benchmarks" + (" (quick mode)" if quick else ""),
        "",
        f"Measured on commit `{commit or git_commit()}`, {dt.date.today()}, {machine()}. float32. "
        f"Whole run: {seconds / 60:.1f} min{' (last part; earlier parts resumed from bench/.cache)' if resumed else ''}"
        " "
        f"(`python -m bench{' --quick' if quick else ''}`).",
        "",
        "## 1. Accuracy",
        "",
        "Every method and baseline ran in the same benchmark run, each (dataset, method) in a fresh process "
        "(peak RSS is that process's). `scdcc_constraints` reveals 10 % of the labels (2,000 pairs) and is scored "
        "on the other 90 %. `*_auto` choose k themselves (Leiden stability on the pretrained embedding, "
        "`scdeep_core.kselect`); the others get the true k. Baselines: `leiden_scanpy` = normalise, log1p, "
        "2,000 HVGs, scale, PCA 50, 15 neighbours, Leiden res 1; `leiden_k` = the same with the resolution bisected "
        "to the true k; `kmeans_pca` = KMeans with the true k on the same PCA. Seed agreement = mean ARI between "
        "the labels of each pair of seeds.",
        "",
        summarise_accuracy(acc).to_markdown(index=False) if not acc.empty else "(not run)",
        "",
        "### Where accuracy is made or lost",
        "",
        accuracy_stages(acc).to_markdown(index=False) if not acc.empty else "(not run)",
        "",
        "### Targets (issue 8)",
        "",
        targets(acc).to_markdown(index=False) if not acc.empty else "(not run)",
        "",
        f"![accuracy]({link}/{'accuracy_quick.png' if quick else 'accuracy.png'})",
        "",
        "## 2. Speed against the floor",
        "",
        "Median epoch time of each phase next to the floor: a bare torch forward + backward + Adam step of the same "
        "network over the same (dense, preprocessed) data and batch size, measured in the same process. "
        "Full fit: default settings to converged labels.",
        "",
        pd.DataFrame(speed).T.round(3).to_markdown(),
        "",
    ]
    if scaling:
        tab = pd.DataFrame(
            [
                {
                    "cells": r["n_cells"],
                    **{
                        f"{m} {k}": round(r[m][k], 3)
                        for m in ("desc", "scdcc")
                        for k in ("pretrain_epoch_s", "cluster_epoch_s", "fit_s")
                    },
                    "peak RSS MiB": round(r["peak_rss_mb"]),
                }
                for r in scaling
            ]
        )
        lines += [
            "## 3. Scaling",
            "",
            "Cells resampled from `cbmc_citeseq_8617` with per-cell binomial thinning (seeded, labels "
            "carried over); fixed schedule (pretraining and clustering epochs as listed in the command); "
            "each size in a fresh process.",
            "",
            tab.to_markdown(index=False),
            "",
            f"![scaling]({link}/{'scaling_quick.png' if quick else 'scaling.png'})",
            "",
        ]
    if cold:
        lines += [
            "## 4. Cold start",
            "",
            "A fresh Python process: import, read, DESC fit, then umap-learn's numba compilation (timed on its "
            "own: the app pays it once per server process, in the background at start-up), umap-learn's layout "
            "of the embedding, and the NumPy fast preview of the same layout for comparison.",
            "",
            pd.DataFrame([cold]).round(2).to_markdown(index=False),
            "",
        ]
    if batch:
        lines += [
            "## 5. Batch correction (`batch_key`)",
            "",
            f"The simulator with batches ({', '.join(f'{k}={v}' for k, v in batch[0]['sim'].items())}), "
            f"{len({r['seed'] for r in batch})} seeds, each fit "
            "in a fresh process with the method's defaults and the true k. `*_free`: the same simulation without "
            "batches; `*_without`: batches, no `batch_key`; `*_with`: `batch_key='batch'`. Baselines: scanpy's path "
            "(KMeans on PCA) without and with `sc.pp.combat`. iLISI (0: batches apart, 1: mixed) and batch ASW "
            "within the true groups are measured on the embedding the clusters come from.",
            "",
            batch_table(batch),
            "",
        ]
    if interactive:
        lines += [
            "## 6. Interactive constraints (a simulated user, issue 12)",
            "",
            "One unconstrained scDCC fit (defaults, true k) per seed; then the user selects n labelled cells of "
            "every type (a 'same type' selection each) and marks the two types the unconstrained run mixes most as "
            "'different types'; the clustering stage re-runs from the same pretrained autoencoder with those "
            "constraints (`recluster(..., constraints=selections)`), its initial clusters anchored on the selections. "
            "ARI on the cells no selection touched, for both runs and for the taught run's initial clustering "
            "(`ari_taught_init`); time to re-cluster (2 cores).",
            "",
            interactive_table(interactive),
            "",
        ]
    if load:
        lines += ["## 7. Several users at once", "", load_table(load), ""]
    out.write_text("\n".join(lines))


def batch_table(rows: list[dict]) -> str:
    """Mean ± SD over seeds of each batch variant's ARI and batch mixing."""
    df = pd.DataFrame(rows)
    cols = [c for c in ("ari", "ilisi", "batch_asw", "wall_s") if c in df]
    stats = df.groupby("variant", sort=False)[cols].agg(["mean", "std"])
    table = pd.DataFrame(
        {
            c: [
                "-" if pd.isna(m) else f"{m:.3f} ± {0 if pd.isna(s) else s:.3f}"
                for m, s in zip(stats[(c, "mean")], stats[(c, "std")], strict=True)
            ]
            for c in cols
        },
        index=stats.index,
    )
    return table.reset_index().to_markdown(index=False)


def interactive_table(rows: list[dict]) -> str:
    """Mean ± SD over seeds, per dataset and selection size, of the ARI on the cells no selection
    touched (taught vs unconstrained) and of the re-clustering time."""
    flat = pd.DataFrame(
        [
            {"dataset": r["dataset"], "cells per type": int(n), **v}
            for r in rows
            for n, v in r["result"]["sizes"].items()
        ]
    )
    flat["gain"] = flat["ari_taught"] - flat["ari_unconstrained"]
    cols = ["ari_unconstrained", "ari_taught_init", "ari_taught", "gain", "recluster_s", "n_must_link", "n_cannot_link"]
    stats = flat.groupby(["dataset", "cells per type"])[cols].agg(["mean", "std"])
    table = pd.DataFrame(
        {c: [f"{m:.3f} ± {s:.3f}" for m, s in zip(stats[(c, "mean")], stats[(c, "std")], strict=True)] for c in cols},
        index=stats.index,
    )
    return table.reset_index().to_markdown(index=False)


def load_table(load: dict) -> str:
    """The load test (bench/load.py) as text: what was run, then draw times per page."""
    head = (
        f"{load['sessions']} sessions in real Chromium each load the built-in PBMC and press Start (DESC, default "
        f"settings, automatic k) at the same moment; runs beyond one at a time wait in the queue. "
        f"{load['repeats']} rounds, each on a fresh server: {load['finished']} of "
        f"{load['sessions'] * load['repeats']} runs "
        f"finished, each round's within {load['all_finished_s']} s. Meanwhile a "
        "further browser keeps switching pages (Learn, Data, Explore, Train, looking at each for a second): "
        "*first paint* is the time from the click to the page's heading, *complete* to its script finished and "
        f"painted. {load['page_draws']} draws pooled over the rounds, {len(load.get('failed_draws', []))} that never "
        "came. The measuring browser has visited each page once before the runs start (a returning user); the idle "
        "rows repeat the walk with nobody training (what the pages cost by themselves), the last rows in a "
        "browser that has never opened the app (its scripts and fonts load on the first visits)."
    )
    rows = []
    for when, run in [
        ("while training", load),
        ("idle (nobody training)", load.get("idle")),
        ("idle, browser's first visits", load.get("cold")),
    ]:
        if not run:
            continue
        for page, st in [
            ("all", {"first_paint": run["first_paint"], "complete": run["complete"]}),
            *run.get("by_page", {}).items(),
        ]:
            rows.append(
                {
                    "page": page,
                    "server": when,
                    **{f"first paint {k[:-2]}": v for k, v in st["first_paint"].items()},
                    **{f"complete {k[:-2]}": v for k, v in st["complete"].items()},
                }
            )
    text = head + "\n\nSeconds:\n\n" + pd.DataFrame(rows).to_markdown(index=False)
    step = load.get("learn_step")
    if step and "step" in step:
        text += (
            "\n\nThe Learn page answering, idle (bench/learn_step.py, timed inside the page from the press to "
            "the frame "
            f"that shows the three redrawn panels): a Step {step['step']['median_s']} s median "
            f"(90th percentile {step['step']['p90_s']} s, {step['step']['n']} presses), a move of the alpha slider "
            f"{step['slider']['median_s']} s median ({step['slider']['p90_s']} s, {step['slider']['n']} moves)."
        )
    return text


def report_path(args: argparse.Namespace) -> Path:
    """Where the report goes: ``--out``; else BENCHMARKS.md for a full run and the scratch folder for any other."""
    full = (
        not args.quick
        and set(args.sections.split(",")) == set(SECTIONS)
        and not args.extra
        and (not args.variants or set(args.variants.split(",")) == set(VARIANTS))
    )
    out = args.out if args.out is not None else REPORT if full else SCRATCH / "BENCHMARKS.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument(
        "--quick", action="store_true", help="Small version of every section on the built-in PBMC (< 3 min)."
    )
    ap.add_argument(
        "--out",
        type=Path,
        help=f"Report file. Default: {REPORT.name} for a full run, {SCRATCH.relative_to(ROOT)}/BENCHMARKS.md "
        "otherwise.",
    )
    ap.add_argument("--extra", action="append", default=[], help="More data as PATH:LABEL_KEY:K (repeatable).")
    ap.add_argument("--sections", default=",".join(SECTIONS), help=f"Comma-separated subset of {','.join(SECTIONS)}.")
    ap.add_argument(
        "--variants",
        help=f"Comma-separated accuracy variants (default: all of {','.join(VARIANTS)}; also "
        f"{','.join(THOROUGH_VARIANTS)}, the 'thorough' preset).",
    )
    ap.add_argument(
        "--resume",
        action="store_true",
        help="Reuse measurements a killed run of the same commit saved in bench/.cache/.",
    )
    args = ap.parse_args(argv)
    choices = (("--sections", args.sections, SECTIONS), ("--variants", args.variants, VARIANTS + THOROUGH_VARIANTS))
    for option, given, known in choices:
        unknown = sorted(set(given.split(",")) - set(known)) if given else []
        if unknown:
            ap.error(f"unknown {option} {', '.join(unknown)}: choose from {', '.join(known)}")
    args.out = report_path(args)
    checkpoint = Checkpoint(args.resume, "-quick" if args.quick else "")
    log = lambda msg: print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)  # noqa: E731
    t0 = time.perf_counter()
    sections = set(args.sections.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        if args.quick:
            import scdeep_core as sd

            demo = sd.datasets.pbmc_demo()
            demo.obs["label"] = demo.obs["bulk_labels"]
            demo_path = Path(tmp) / "pbmc68k_reduced.h5ad"
            demo.write_h5ad(demo_path)
            datasets = {"pbmc68k_reduced": (demo_path, "label", 10)}
            seeds = [0]
            variants = (
                args.variants.split(",")
                if args.variants
                else ["desc", "scdcc", "desc_auto", "leiden_scanpy", "leiden_k", "kmeans_pca"]
            )
            overrides = {"desc": {"pretrain_epochs": 20}, "scdcc": {"pretrain_epochs": 20, "max_cluster_epochs": 10}}
            speed_input, sizes, epochs = (str(demo_path), 10), [], 2
        else:
            datasets = {n: (SHARED / f, key, k) for n, (f, key, k) in DATASETS.items() if (SHARED / f).exists()}
            seeds, variants, overrides = [0, 1, 2], args.variants.split(",") if args.variants else VARIANTS, {}
            speed_input, sizes, epochs = (str(SHARED / "pbmc_10x_4271.h5ad"), 8), [1000, 5000, 10000, 50000, 100000], 3
        for extra in args.extra:
            path, key, k = extra.rsplit(":", 2)
            datasets[Path(path).stem] = (Path(path), key, int(k))
        saved = args.out.with_suffix(".accuracy.csv")
        if "accuracy" in sections:
            acc = accuracy(datasets, seeds, overrides, variants, log, checkpoint)
        elif saved.exists():  # re-render with the accuracy table of an earlier run (its commit is in that run's report)
            acc = pd.read_csv(saved)
            log(f"accuracy: reusing {saved}")
        else:
            acc = pd.DataFrame()
        speed = (
            checkpoint.run(
                "speed",
                "bench.speed",
                {"path": speed_input[0], "k": speed_input[1], "epochs": epochs, "fit_overrides": overrides},
            )
            if "speed" in sections
            else {}
        )
        log(f"speed: {json.dumps(speed)}")
        scaling = []
        cbmc = SHARED / "cbmc_citeseq_8617.h5ad"
        if "scaling" in sections and sizes and cbmc.exists():
            for n in sizes:
                scaling.append(
                    checkpoint.run(
                        f"scaling__{n}", "bench.scaling", {"path": str(cbmc), "n_cells": n, "epochs": epochs}
                    )
                )
                log(f"scaling {n}: {json.dumps(scaling[-1])}")
        cold = {}
        if "cold" in sections:
            import anndata as ad

            from .scaling import resample

            if cbmc.exists() and not args.quick:
                data10k = resample(ad.read_h5ad(cbmc), 10_000)
                k = 15
            else:
                import scdeep_core as sd

                data10k, k = (
                    sd.datasets.simulate_counts(n_cells=2000 if args.quick else 10_000, n_genes=1000, n_groups=5),
                    5,
                )
            p = Path(tmp) / "cold.h5ad"
            data10k.write_h5ad(p)
            cold = checkpoint.run("cold", "bench.coldstart", {"path": str(p), "k": k})
            log(f"cold start: {json.dumps(cold)}")
        batch = []
        if "batch" in sections:
            sim = {**BATCH_SIM, "n_cells": 600, "n_genes": 400} if args.quick else BATCH_SIM
            for variant in BATCH_VARIANTS:
                for seed in seeds:
                    answer = checkpoint.run(
                        f"batch__{variant}__{seed}", "bench.batch", {"variant": variant, "seed": seed, "sim": sim}
                    )
                    batch.append({"variant": variant, "seed": seed, "sim": sim, **answer})
                    log(f"batch {variant} seed {seed}: {json.dumps(answer)}")
        interactive = []
        if "interactive" in sections:
            for name in INTERACTIVE_SETS if not args.quick else []:
                if name not in datasets:
                    continue
                path, key, k = datasets[name]
                for seed in seeds:
                    payload = {"path": str(path), "label_key": key, "k": k, "seed": seed, "sizes": INTERACTIVE_SIZES}
                    answer = checkpoint.run(f"interactive__{name}__{seed}", "bench.interactive", payload)
                    interactive.append({"dataset": name, "seed": seed, "result": answer})
                    log(f"interactive {name} seed {seed}: {json.dumps(answer)}")
    load = {}
    if "load" in sections and not args.quick:
        load = checkpoint.run("load", "bench.load", {"sessions": 5}, code="app")
        log(f"load: {json.dumps(load)}")
        # The same browser walk with nobody training: what the pages cost by themselves.
        load["idle"] = checkpoint.run("load_idle", "bench.load", {"sessions": 0, "min_s": 45}, code="app")
        # ...and a browser's very first visits (scripts and fonts not loaded yet), nobody training.
        load["cold"] = checkpoint.run(
            "load_cold", "bench.load", {"sessions": 0, "min_s": 10, "warm": False}, code="app"
        )
        log(f"load, idle: {json.dumps(load['idle'])}; first visits: {json.dumps(load['cold'])}")
        load["learn_step"] = checkpoint.run("learn_step", "bench.learn_step", {"steps": 15}, code="app")
        log(f"Learn page answering: {json.dumps(load['learn_step'])}")
    if not acc.empty:
        acc.to_csv(args.out.with_suffix(".accuracy.csv"), index=False)
    write_report(
        args.out,
        args.quick,
        acc,
        speed,
        scaling,
        cold,
        time.perf_counter() - t0,
        load,
        batch,
        interactive,
        ", ".join(sorted(checkpoint.commits)) or git_commit(),
        args.resume,
    )
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
