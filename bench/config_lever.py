"""Issue 8 lever: one setting of the method's config, judged from the start to the end of the stage.

``python -m bench.config_lever <desc|scdcc> <setting> <v1,v2,...> [seeds]``, e.g.
``python -m bench.config_lever scdcc noise_sigma 2.5,1,0 0,1,2``: every dev set, true k, seeds 0, 1,
2 unless given. For each value the model pretrains and the clustering stage runs with the method's
default config otherwise. Prints the ARI of the start and at the end of the stage, the seed-to-seed
agreement at the end and the fit time; the per-seed rows go to
``bench/scratch/config_lever_<method>_<setting>_<values>.csv``. For settings that act on pretraining (the
embedding's size, the input noise), where :mod:`bench.levers`' same-weights harness cannot be used.

``python -m bench.config_lever --same-weights <desc|scdcc> <setting> <v1,v2,...> [seeds]`` is for
settings of the clustering stage alone (its learning rate, length, KL weight): each dev set and seed
pretrains once, and the stage runs from those same weights once per value, so the differences are
the setting's alone. Its CSV is ``bench/scratch/stage_lever_<method>_<setting>_<values>.csv``. With
``variants`` as the setting, several settings share the pretrainings:
``python -m bench.config_lever --same-weights scdcc variants default,cluster_lr=0.0003,gamma=0.3``. A fifth
argument changes every pretraining the same way: ``... scdcc variants default,alpha=0.5 0,1,2 hidden_dims=128``.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from typing import Any

import pandas as pd


def parse_values(method: str, setting: str, values: str) -> list[Any]:
    """The comma-separated ``values`` as the type of the setting's default (an unknown setting is an error);
    a tuple's items are joined by ``-`` (``hidden_dims`` ``128,256-64``)."""
    from scdeep_core.config import CONFIG_CLASSES

    fields = {f.name: f for f in dataclasses.fields(CONFIG_CLASSES[method])}
    if setting not in fields:
        raise SystemExit(f"{method} has no setting {setting!r}; known: {', '.join(sorted(fields))}")
    field = fields[setting]
    kind = type(field.default if field.default is not dataclasses.MISSING else field.default_factory())
    if kind is tuple:  # layer widths, e.g. 256-64
        return [tuple(int(width) for width in v.split("-")) for v in values.split(",")]
    return [kind(float(v)) if kind in (int, float) else v for v in values.split(",")]


def main(method: str, setting: str, values: str, seeds: str = "0,1,2") -> None:
    from scdeep_core import api, metrics
    from scdeep_core.config import config_for

    from .levers import dev_sets, print_summary, save_rows

    rows, labels = [], {}
    for name, adata, key, k in dev_sets():
        for value in parse_values(method, setting, values):
            for seed in map(int, seeds.split(",")):
                t0 = time.perf_counter()
                cfg = config_for(method, n_clusters=k, seed=seed, **{setting: value})
                pre = api.pretrain(adata, cfg, label_key=key)
                res = api.recluster(adata, pre, copy=True)
                truth = adata.obs[key].astype(str).to_numpy()[res.cell_mask]
                labels[name, value, seed] = res.labels
                rows.append(
                    {
                        "dataset": name,
                        setting: value,
                        "seed": seed,
                        "start_method": (res.start or {}).get("method"),
                        "start": res.init_scores.get("ari"),
                        "end": metrics.ari(truth, res.labels),
                        "converged": res.converged,
                        "fit_s": round(time.perf_counter() - t0, 1),
                    }
                )
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    print_summary(df, setting, labels, extra=("fit_s",))
    save_rows(df, f"config_lever_{method}_{setting}_{values.replace(',', '_')}")


def parse_variants(method: str, setting: str, values: str) -> dict[Any, dict[str, Any]]:
    """``{label: changes}`` for each value: ``{setting: value}``, or with ``setting`` ``variants`` the
    values are ``name=value`` pairs of any stage settings (``default`` for none), e.g.
    ``default,cluster_lr=0.0003,gamma=0.3``, so one pretraining per set and seed serves them all."""
    if setting != "variants":
        return {v: {setting: v} for v in parse_values(method, setting, values)}
    variants = {}
    for item in values.split(","):
        if item == "default":
            variants[item] = {}
            continue
        name, _, value = item.partition("=")
        variants[item] = {name: parse_values(method, name, value)[0]}
    return variants


def same_weights(method: str, setting: str, values: str, seeds: str = "0,1,2", pretraining: str = "") -> None:
    """The clustering stage with each value of a stage setting, from the same pretrained weights;
    ``pretraining`` (``name=value`` pairs joined by ``,``) changes the pretrainings' config."""
    from scdeep_core import api

    from .levers import print_summary, save_rows, stage_from_same_weights

    engine_recluster = api.recluster

    def with_changes(changes: dict[str, Any]):
        def recluster(adata, pretrained, config=None, **kwargs):
            cfg = dataclasses.replace(config or pretrained.cfg, **changes)
            return engine_recluster(adata, pretrained, cfg, **kwargs)

        return recluster

    variants = parse_variants(method, setting, values)
    # The pretraining's changes, parsed as variants (one per name=value) and merged into one config change.
    pretrained_variants = parse_variants(method, "variants", pretraining).values() if pretraining else []
    pretrained_changes = {name: value for changes in pretrained_variants for name, value in changes.items()}
    df = stage_from_same_weights(
        method,
        api,
        "recluster",
        lambda *_: {label: with_changes(changes) for label, changes in variants.items()},
        seeds=list(map(int, seeds.split(","))),
        pretraining=pretrained_changes,
    )
    df = df.rename(columns={"variant": setting})
    print_summary(df, setting, df.attrs["labels"], extra=("stage_s",))
    name = f"{method}_{setting}_{values}" + (f"_pretrained_{pretraining}" if pretraining else "")
    save_rows(df, "stage_lever_" + name.replace(",", "_").replace("=", ""))


if __name__ == "__main__":
    args = sys.argv[1:]
    run = same_weights if args[:1] == ["--same-weights"] else main
    args = args[1:] if run is same_weights else args
    if len(args) < 3:
        raise SystemExit(__doc__)
    run(*args)
