"""Command line: ``python -m scdeep_core fit INPUT --method desc|scdcc ...``."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import re
import sys
import time
from pathlib import Path

from .config import (
    CONFIG_CLASSES,
    METHOD_NAMES,
    PRESET_HELP,
    PRESETS,
    ConfigError,
    ConstraintConfig,
    Setting,
    settings,
)
from .errors import InputError

# Config fields with options of their own above (k, resolution) or a group of their own (constraints).
SET_ELSEWHERE = {"n_clusters", "resolution", "constraints"}
# Constraint fields whose option names differ from the field (clearer, and no clash with --label-key).
CONSTRAINT_OPTIONS = {"source": "--constraints", "label_key": "--constraint-label-key", "pairs_path": "--pairs"}

EPILOG = """examples:
  python -m scdeep_core fit counts.h5ad --method scdcc --n-clusters 8 --label-key cell_type
  python -m scdeep_core fit filtered_feature_bc_matrix.h5 --method desc --resolution 0.8 --out run1
  python -m scdeep_core fit data.h5ad --method scdcc --n-clusters 8 --constraints labels \\
      --constraint-label-key cell_type --fraction 0.1
  python -m scdeep_core fit builtin:pbmc68k_reduced --method desc --label-key bulk_labels
  python -m scdeep_core fit data.h5ad --method desc --n-clusters 8 --preset thorough
"""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (also used to render ``--help``)."""
    parser = argparse.ArgumentParser(
        prog="python -m scdeep_core", description="Deep-learning clustering of single-cell counts (DESC, scDCC)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    fit = sub.add_parser(
        "fit",
        help="Cluster a counts file.",
        description="Cluster the cells of a counts file with DESC or scDCC.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fit.add_argument(
        "input",
        help="h5ad, 10x .h5, 10x folder/.zip/.tar.gz, CSV/TSV(.gz), .loom, scDCC .h5 (X/Y), or "
        "builtin:pbmc68k_reduced / builtin:simulated",
    )
    fit.add_argument(
        "--method",
        choices=sorted(CONFIG_CLASSES),
        default="scdcc",
        help="desc: MSE autoencoder + KL; scdcc: ZINB autoencoder + KL (+ constraints). Default: scdcc.",
    )
    k = fit.add_mutually_exclusive_group()
    k.add_argument(
        "--n-clusters",
        type=_k_arg,
        default="auto",
        help="Number of clusters k (KMeans initialisation), or 'auto' (default): chosen by Leiden stability on "
        "the pretrained embedding; the candidates and the choice are printed.",
    )
    k.add_argument(
        "--resolution",
        type=lambda v: [float(x) for x in v.split(",")],
        help="Leiden resolution when k is unknown (default 1.0); several, comma separated, reuse one pretrained "
        "autoencoder.",
    )
    fit.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="fast",
        help="; ".join(f"{name}: {text}" for name, text in PRESET_HELP.items())
        + ". Default: fast. Options given as well (e.g. --n-models) win over the preset.",
    )
    fit.add_argument("--label-key", help="obs column of known labels, used only to report ARI/NMI/ACC.")
    fit.add_argument(
        "--out",
        type=Path,
        help="Folder for result.h5ad, config.json, history.csv, labels.csv (default: <input stem>_<method>).",
    )
    fit.add_argument("--key", help="Prefix of the result keys in the AnnData (default: the method name).")
    fit.add_argument(
        "--force", action="store_true", help="Write into --out even if it already holds files (they are overwritten)."
    )
    fit.add_argument(
        "--orientation",
        choices=["auto", "cells_x_genes", "genes_x_cells"],
        default="auto",
        help="Orientation of a CSV/TSV input.",
    )
    fit.add_argument("--max-gb", type=float, default=8.0, help="Refuse input files larger than this (GiB).")
    fit.add_argument(
        "--backed",
        action="store_true",
        help="h5ad input: train out of core, reading minibatches from the file (memory follows the minibatch, not "
        "the cells; --max-gb does not apply). result.h5ad then holds the result keys and genes, not the counts.",
    )
    fit.add_argument(
        "--umap",
        choices=["umap-learn", "preview"],
        default="umap-learn",
        help="UMAP of the embedding: umap-learn (default; its first layout in a process compiles for ~25 s) or "
        "preview (a NumPy fast preview of UMAP's objective, no compilation).",
    )
    fit.add_argument("--no-umap", action="store_true", help="Skip the UMAP of the embedding.")
    fit.add_argument("--quiet", action="store_true", help="No progress bar.")
    fit.add_argument(
        "--dist-backend",
        choices=["auto", "gloo", "nccl"],
        default="auto",
        help="Under torchrun (several processes): the torch.distributed backend; auto = nccl with CUDA GPUs, "
        "else gloo. Each process trains on its shard of the cells; rank 0 prints and writes the results.",
    )
    hp = fit.add_argument_group("hyperparameters (from the method's config; defaults depend on the method)")
    for setting in settings():
        if setting.name not in SET_ELSEWHERE:
            _add_setting(hp, setting, f"--{setting.name.replace('_', '-')}")
    c = fit.add_argument_group("scDCC pairwise constraints")
    for setting in settings([ConstraintConfig]):
        _add_setting(c, setting, CONSTRAINT_OPTIONS.get(setting.name, f"--{setting.name.replace('_', '-')}"))
    return parser


def _k_arg(value: str) -> int | str:
    if value.strip().lower() == "auto":
        return "auto"
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of clusters or 'auto', got {value!r}") from None


def _add_setting(group, setting: Setting, option: str) -> None:
    """One option made from a config field: its type, help, choices and each method's default."""
    where = ""
    if len(setting.defaults) == 1:
        method, default = next(iter(setting.defaults.items()))
        if method in CONFIG_CLASSES:  # a method's own setting (constraint settings are scDCC's by their group)
            where = f" {METHOD_NAMES[method]} only."
        shown = _shown(default)
    else:
        values = {_shown(v) for v in setting.defaults.values()}
        shown = (
            values.pop() if len(values) == 1 else ", ".join(f"{_shown(v)} ({m})" for m, v in setting.defaults.items())
        )
    types = {int: int, float: float, str: str, tuple: _int_list}
    group.add_argument(
        option,
        dest=f"cfg_{setting.name}",
        type=types[setting.kind],
        choices=setting.choices,
        metavar=None if setting.choices else setting.name.upper(),
        help=f"{setting.help}{where} Default: {shown}.".replace("%", "%%"),  # argparse formats help with %
    )


def _shown(value) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return "not set" if value is None else str(value)


def _int_list(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected whole numbers separated by commas, e.g. 256,64, got {value!r}"
        ) from None


def _config_from_args(args: argparse.Namespace):
    """The config the options describe; a setting the chosen method does not have is an error, not ignored."""
    cls = CONFIG_CLASSES[args.method]
    given = {
        s.name: getattr(args, f"cfg_{s.name}") for s in settings() if getattr(args, f"cfg_{s.name}", None) is not None
    }
    foreign = sorted(set(given) - set(cls.__dataclass_fields__))
    if foreign:
        options = ", ".join(f"--{n.replace('_', '-')}" for n in foreign)
        raise ConfigError(
            f"{options}: not a setting of {METHOD_NAMES[args.method]} (--method {args.method}); "
            "drop it or change --method."
        )
    overrides = {**PRESETS[getattr(args, "preset", "fast")], **given}
    if args.resolution:
        overrides["resolution"] = args.resolution[0]
        overrides["n_clusters"] = None
    else:
        overrides["n_clusters"] = args.n_clusters
    constraint = {s.name: getattr(args, f"cfg_{s.name}") for s in settings([ConstraintConfig])}
    constraint = {k: v for k, v in constraint.items() if v is not None}
    if args.method == "scdcc":
        overrides["constraints"] = ConstraintConfig(**constraint)
    elif constraint and constraint != {"source": "none"}:
        raise ConfigError("Pairwise constraints are an scDCC feature: use --method scdcc.")
    return cls(**overrides)


class _Progress:
    """A tqdm bar of the run's progress by time (see :mod:`scdeep_core.progress`)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.bar = None

    def __call__(self, event) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=100, unit="%", file=sys.stderr, bar_format="{l_bar}{bar}| {postfix}")
        self.bar.n = int(event.progress * 100)
        post = [event.phase, f"epoch {event.epoch}"]
        post += [f"{k}={v:.4f}" for k, v in event.losses.items() if k != "total"]
        if event.delta_label is not None:
            post.append(f"delta={event.delta_label:.4f}")
        if event.ari is not None:
            post.append(f"ARI={event.ari:.3f}")
        if event.eta is not None and event.phase not in ("done", "stopped"):
            post.append(f"~{event.eta:.0f}s left")
        self.bar.set_postfix_str(" ".join(post), refresh=True)
        if event.phase in ("done", "stopped"):
            self.bar.close()


class _NoteFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{'warning' if record.levelno >= logging.WARNING else 'note'}: {record.getMessage()}"


def show_notes() -> logging.Handler:
    """Print the library's notes (``note: ...``) and warnings (``warning: ...``) on stderr as they happen."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_NoteFormatter())
    logger = logging.getLogger("scdeep_core")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    return handler


def run_fit(args: argparse.Namespace) -> int:
    from . import distributed

    ranks = distributed.setup(args.dist_backend)
    try:
        return _run_fit(args, ranks)
    finally:
        distributed.teardown()


def _run_fit(args: argparse.Namespace, ranks) -> int:
    import anndata

    from . import api, datasets, distributed, io, results

    t0 = time.perf_counter()
    cfg = _config_from_args(args)
    api.check_processes(cfg)  # before --out is made: a refused run leaves nothing behind
    if ranks.active:
        cfg = dataclasses.replace(cfg, device=distributed.local_device(ranks, cfg.device))
        args.quiet = args.quiet or not ranks.is_main
        if not ranks.is_main:  # rank 0 prints the notes; the others would repeat them
            logging.getLogger("scdeep_core").setLevel(logging.ERROR)
    if not args.max_gb > 0:
        raise ConfigError(f"--max-gb must be above 0 (GiB), got {args.max_gb:g}.")
    builtin = args.input.startswith("builtin:")
    stem = args.input.split(":", 1)[1] if builtin else Path(args.input).name.split(".")[0]
    # Check where results go before any work: a bad --out or --key must not cost a training run.
    check_key(args.key)
    out = args.out or Path(f"{stem}_{args.method}")
    if ranks.is_main:
        out = check_out(out, force=args.force)
    if args.backed:
        adata = _open_backed(args.input)
    elif builtin:
        adata = datasets.load_builtin(args.input.split(":", 1)[1])
    else:
        adata = io.read_counts(args.input, orientation=args.orientation, max_bytes=int(args.max_gb * 1024**3))
    if args.resolution and len(args.resolution) > 1:
        runs = list(
            api.fit_resolutions(
                adata,
                args.resolution,
                cfg,
                label_key=args.label_key,
                callbacks=[_Progress(args.quiet)],
                key_added=args.key,
            ).values()
        )
    else:
        runs = [api.fit(adata, cfg, label_key=args.label_key, callbacks=[_Progress(args.quiet)], key_added=args.key)]
    if not ranks.is_main:  # every rank holds the same labels; one writes them
        return 0
    for result in runs:
        if result.k_selection is not None:
            print(format_k_selection(result.k_selection))
    for result in runs:
        if not args.no_umap:
            from .embedding import add_umap

            add_umap(adata, result.key, seed=cfg.seed, engine=args.umap)
    if args.backed:  # the counts stay in the input file; the results are written without them
        adata = anndata.AnnData(obs=adata.obs, var=adata.var, obsm=dict(adata.obsm), uns=dict(adata.uns))
    for result in runs:
        paths = results.save_run(adata, result, out if len(runs) == 1 else out / result.key)
        scores = " ".join(result.score_parts())
        how = " (automatic)" if result.k_selection is not None else ""
        if result.consensus is not None:
            info = result.consensus
            how += f" consensus of {info['n_models']} models (agreement {info['agreement']:.2f})"
        start = f" start={result.start['method']}" if result.start is not None else ""  # what made the start
        print(
            f"{result.key}: k={result.n_clusters}{how} {scores}{start} wall={time.perf_counter() - t0:.1f}s "
            f"{result.convergence()} "
            f"-> {', '.join(str(p) for p in paths.values())}"
        )
    return 0


def _open_backed(path: str):
    """The h5ad at ``path`` opened with ``backed="r"`` (its matrix stays on disk)."""
    import anndata

    if path.startswith("builtin:") or not path.endswith(".h5ad"):
        raise ConfigError(f"--backed reads an .h5ad file out of core; {path} is not one. Drop --backed to load it.")
    if not Path(path).is_file():
        raise InputError(f"{path} does not exist or is not a file.")
    try:
        return anndata.read_h5ad(path, backed="r")
    except OSError as exc:
        raise InputError(f"{path} could not be opened as an h5ad file ({exc}).") from exc


def check_key(key: str | None) -> None:
    """A result key must be a plain name: it becomes obs/obsm/uns keys and folder names."""
    if key is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,63}", key):
        raise ConfigError(
            f"--key {key!r} is not a plain name: use letters, digits, '_', '-' or '.', starting with a letter "
            "(no '/' or '..')."
        )


def check_out(out: Path, force: bool) -> Path:
    """The output folder: creatable and writable, and not already holding results unless ``force``."""
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out} is a file, not a folder: give a folder name.")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise InputError(f"--out {out} already holds files: choose a new folder, or add --force to overwrite them.")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".scdeep_write_test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"--out {out} cannot be written ({exc.strerror or exc}): choose a folder you can write to."
        ) from None
    return out


def format_k_selection(selection) -> str:
    """The candidates of an automatic k as a small text table, the choice marked."""
    lines = [
        "choosing k: Leiden on the pretrained embedding, stability over 80 % subsamples",
        "  resolution  clusters  stability  cells in stable clusters",
    ]
    for i, row in selection.table.iterrows():
        mark = "  <- chosen" if i == selection.chosen else ""
        lines.append(
            f"  {row['resolution']:>10g}  {int(row['n_clusters']):>8d}  {row['stability']:>9.2f}  "
            f"{row['stable_cells']:>24.0%}{mark}"
        )
    lines.append(f"chose {selection.summary()}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (2 for bad input or settings)."""
    args = build_parser().parse_args(argv)
    handler = show_notes()
    try:
        if args.command == "fit":
            return run_fit(args)
    except (InputError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        logging.getLogger("scdeep_core").removeHandler(handler)  # main() may run again in this process
    return 1
