"""Validated hyperparameters of DESC and scDCC.

The dataclasses also drive the dashboard's form: every field carries a one-line ``help``
in its metadata, and ``bounds`` where the value has a range.
"""

from __future__ import annotations

import dataclasses
import re
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

#: How the initial clusters with a given k may be made (scdeep_core.starts.choose_start).
INIT_METHODS = ("auto", "kmeans", "leiden", "spectral")


class ConfigError(ValueError):
    """A hyperparameter is out of range; the message says which and what is allowed."""


def _f(
    default: Any,
    help: str,
    bounds: tuple[float | None, float | None] | None = None,
    *,
    label: str | None = None,
    advanced: bool = False,
    choices: tuple[str, ...] | None = None,
    **kw: Any,
) -> Any:
    """A config field with what the interfaces show: ``help``, ``bounds`` (inclusive), a plain-words
    ``label`` for the form, ``advanced`` (shown under "Advanced settings") and ``choices``."""
    metadata = {"help": help, "bounds": bounds, "label": label, "advanced": advanced, "choices": choices}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda: tuple(default), metadata=metadata, **kw)
    return field(default=default, metadata=metadata, **kw)


@dataclass
class ConstraintConfig:
    """Where scDCC's pairwise must-link / cannot-link constraints come from.

    ``source`` is one of ``"none"``, ``"labels"`` (a random ``fraction`` of cells whose
    ``label_key`` is known; ``n_pairs`` random pairs among them), ``"pairs"`` (a CSV of
    cell names or indices, see :func:`scdeep_core.constraints.read_pair_file`) or
    ``"obsm"`` (a numeric matrix such as protein levels: pairs closer than the
    ``ml_percentile``-th distance percentile must link, farther than ``cl_percentile`` cannot).
    """

    source: str = _f(
        "none", "Constraint source: none, labels, pairs or obsm.", choices=("none", "labels", "pairs", "obsm")
    )
    label_key: str | None = _f(None, "obs column whose known labels give constraints (source=labels).")
    fraction: float = _f(0.1, "Fraction of cells whose labels are revealed (source=labels).", (0.0, 1.0))
    n_pairs: int = _f(2000, "Number of random pairs to draw (labels / obsm).", (1, None))
    error_rate: float = _f(0.0, "Fraction of label pairs flipped to simulate annotation errors.", (0.0, 1.0))
    pairs_path: str | None = _f(None, "CSV file of pairs: columns cell1, cell2, type (ml/cl) (source=pairs).")
    obsm_key: str | None = _f(None, "obsm matrix (e.g. protein levels) used for constraints (source=obsm).")
    ml_percentile: float = _f(0.5, "Pairs below this distance percentile must link (source=obsm).", (0.0, 100.0))
    cl_percentile: float = _f(95.0, "Pairs above this distance percentile cannot link (source=obsm).", (0.0, 100.0))
    ml_weight: float = _f(1.0, "Weight of the must-link loss.", (0.0, None))
    cl_weight: float = _f(1.0, "Weight of the cannot-link loss.", (0.0, None))

    def validate(self) -> None:
        """Raise :class:`ConfigError` if a value is out of range."""
        _check_bounds(self)
        sources = _metadata(ConstraintConfig, "source")["choices"]
        if self.source not in sources:
            raise ConfigError(f"constraints.source must be one of {sources}, got {self.source!r}.")
        if self.source == "labels" and not self.label_key:
            raise ConfigError("constraints.source='labels' needs constraints.label_key (an obs column).")
        if self.source == "pairs" and not self.pairs_path:
            raise ConfigError("constraints.source='pairs' needs constraints.pairs_path (a CSV of pairs).")
        if self.source == "obsm" and not self.obsm_key:
            raise ConfigError("constraints.source='obsm' needs constraints.obsm_key (e.g. 'protein').")
        if self.ml_percentile >= self.cl_percentile:
            raise ConfigError("constraints.ml_percentile must be below constraints.cl_percentile.")


@dataclass
class BaseConfig:
    """Settings shared by both methods (see the subclasses for their defaults)."""

    n_clusters: int | Literal["auto"] | None = _f(
        "auto",
        "Number of clusters k; 'auto' chooses k by Leiden stability on the pretrained embedding; empty (None) uses "
        "Leiden at the given resolution.",
        (2, None),
    )
    init_method: str = _f(
        "auto",
        "How the initial clusters are made when k is given: 'auto' runs KMeans, Leiden (its resolution set to give "
        "k) and spectral clustering of the kNN graph, and keeps the one that 80 % subsamples of the cells reproduce "
        "best (BENCHMARKS.md 19, 20); 'kmeans' is DEC's classic start; 'leiden' and 'spectral' the graph "
        "clusterings. With an automatic k or a resolution the start is Leiden's.",
        label="initial clusters with a given k",
        advanced=True,
        choices=INIT_METHODS,
    )
    resolution: float = _f(
        1.0, "Leiden resolution used when n_clusters is None: higher gives more clusters.", (0.01, 10.0)
    )
    n_neighbors: int = _f(
        15, "Neighbours in the kNN graph used by Leiden.", (2, 200), label="neighbours in the kNN graph", advanced=True
    )
    n_top_genes: int = _f(
        2000,
        "Highly variable genes kept as input (all genes if fewer).",
        (10, None),
        label="genes used (most variable)",
    )
    batch_key: str | None = _f(
        None,
        "obs column naming each cell's batch (sample, donor, sequencing run) to correct for: genes are chosen and "
        "scaled within each batch, and scDCC also gives the batch to its encoder and decoder. Not set: no batch "
        "correction.",
        label="batch column",
    )
    scale_max_value: float = _f(
        10.0,
        "Clip scaled values at +/- this many standard deviations.",
        (1.0, None),
        label="clip scaled values at (SDs)",
        advanced=True,
    )
    hidden_dims: tuple[int, ...] = _f((256, 64), "Encoder hidden layer widths (decoder mirrors them).")
    latent_dim: int = _f(32, "Size of the embedding z.", (2, 1024), label="embedding size")
    pretrain_epochs: int | None = _f(
        None,
        "Maximum pretraining epochs; not set (None) = auto: about 1,000 minibatch steps, 10-300 epochs.",
        (0, 100000),
    )
    pretrain_patience: int = _f(
        10,
        "Stop pretraining after this many epochs without improvement (0: never).",
        (0, None),
        label="pretraining patience (epochs)",
        advanced=True,
    )
    pretrain_min_delta: float = _f(
        1e-3,
        "Relative loss improvement that counts as progress in pretraining.",
        (0.0, 1.0),
        label="pretraining: least relative improvement",
        advanced=True,
    )
    lr: float = _f(1e-3, "Learning rate of pretraining (Adam).", (1e-7, 10.0), label="learning rate, pretraining")
    cluster_lr: float = _f(
        1e-4, "Learning rate of the clustering stage.", (1e-7, 10.0), label="learning rate, clustering"
    )
    # 20, not 100: from the same pretrained weights a 20-epoch stage ends level or higher on all five
    # dev sets (3 seeds each). DESC's 100-epoch stage drifted below its start on cbmc (-0.07); scDCC's
    # mostly converges within 20 and ends within 0.005 on every run (BENCHMARKS.md 15e and 15f).
    max_cluster_epochs: int = _f(
        20, "Maximum epochs of the clustering stage.", (0, 100000), label="most clustering epochs"
    )
    min_cluster_epochs: int = _f(
        5,
        "Epochs of the clustering stage before the tol check may stop it (the first checks follow the initial "
        "clusters, which barely change at first).",
        (0, 100000),
        label="fewest clustering epochs",
        advanced=True,
    )
    batch_size: int = _f(256, "Cells per minibatch.", (2, 100000), label="cells per batch")
    alpha: float = _f(
        1.0,
        "Degrees of freedom of the Student's t soft assignment.",
        (0.01, 100.0),
        label="Student's t degrees of freedom",
    )
    tol: float = _f(
        0.001,
        "Stop clustering when fewer than this fraction of cells change cluster.",
        (0.0, 1.0),
        label="stop when this share of cells changes cluster",
    )
    update_interval: int = _f(
        1, "Epochs between updates of the target distribution P.", (1, 1000), label="epochs between target updates"
    )
    seed: int = _f(0, "Random seed (same seed + config = same labels on CPU).", (0, 2**32 - 1), label="random seed")
    n_models: int = _f(
        1,
        "Models in a consensus: each pretrains from its own seed (model_seeds), all start from one clustering of "
        "their embeddings side by side, and the labels are the argmax of their mean soft assignment. 1 is the "
        "'fast' preset; 3 the 'thorough' one: about 3x the time and more repeatable from seed to seed; as "
        "accurate as one model on the mean since the start choice of BENCHMARKS.md 20 (18, 20b).",
        (1, 9),
        label="models in the consensus",
    )
    shuffle_block: int = _f(
        64,
        "Out of core only: contiguous cells read from the file as one block when minibatches are shuffled "
        "(fewer, longer reads). 1 shuffles cell by cell: the in-memory order, slower reads.",
        (1, 100000),
        label="cells per read block (out of core)",
        advanced=True,
    )
    device: str = _f(
        "auto",
        "Where to train: 'auto' (a CUDA GPU when present, else the CPU), 'cpu', 'cuda' or 'cuda:N'.",
        label="device",
        advanced=True,
    )
    snapshot_cells: int = _f(
        1500,
        "Cells shown in the live embedding snapshots.",
        (10, 100000),
        label="cells in the live embedding",
        advanced=True,
    )

    method = "base"

    def __post_init__(self) -> None:
        self.hidden_dims = tuple(int(h) for h in self.hidden_dims)
        k = self.n_clusters
        if isinstance(k, (np.integer, float, np.floating)) and not isinstance(k, bool) and float(k).is_integer():
            self.n_clusters = int(k)  # numpy ints and 8.0 from JSON/UI widgets
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` with a clear message if a value is out of range."""
        _check_bounds(self)
        if any(h < 1 for h in self.hidden_dims):
            raise ConfigError(f"hidden_dims must be positive integers, got {self.hidden_dims}.")
        if self.batch_key is not None and (not isinstance(self.batch_key, str) or not self.batch_key.strip()):
            raise ConfigError(f"batch_key must be an obs column name or None, got {self.batch_key!r}.")
        if self.init_method not in INIT_METHODS:
            raise ConfigError(f"init_method must be one of {', '.join(INIT_METHODS)}, got {self.init_method!r}.")
        if not isinstance(self.device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", self.device):
            raise ConfigError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {self.device!r}.")

    def model_seeds(self) -> list[int]:
        """The pretraining seed of each model in the consensus: ``seed``, ``seed + 3``, ``seed + 6``...

        Steps of 3 so that runs with seeds 0, 1 and 2 (the benchmark's) share no model."""
        return [self.seed + MODEL_SEED_STEP * i for i in range(self.n_models)]

    def resolved_pretrain_epochs(self, n_cells: int) -> int:
        """Pretraining epochs for ``n_cells`` cells: the set value, or about 1,000 steps."""
        if self.pretrain_epochs is not None:
            return self.pretrain_epochs
        return int(np.clip(round(1000 * self.batch_size / max(n_cells, 1)), 10, 300))

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form of the configuration (with the method name)."""
        d = dataclasses.asdict(self)
        d["hidden_dims"] = list(self.hidden_dims)
        d["method"] = self.method
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BaseConfig:
        """Build a config from :meth:`to_dict` output (unknown keys are an error)."""
        d = dict(d)
        d.pop("method", None)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ConfigError(f"Unknown {cls.__name__} settings: {sorted(unknown)}. Known: {sorted(names)}.")
        if isinstance(d.get("constraints"), dict):
            d["constraints"] = ConstraintConfig(**d["constraints"])
        return cls(**d)


def _like(name: str, default: Any, **changes: Any) -> Any:
    """:class:`BaseConfig`'s field ``name`` with a method's own default: its help, bounds and label
    are kept unless ``changes`` says otherwise (so they are written once)."""
    metadata = {**next(f.metadata for f in dataclasses.fields(BaseConfig) if f.name == name), **changes}
    help, bounds = metadata.pop("help"), metadata.pop("bounds")
    return _f(default, help, bounds, **metadata)


@dataclass
class DESCConfig(BaseConfig):
    """DESC (Li et al. 2020): MSE autoencoder with tanh bottleneck, then KL on the encoder only."""

    hidden_dims: tuple[int, ...] = _like("hidden_dims", (128,))
    latent_dim: int = _like("latent_dim", 16)
    dropout: float = _f(0.2, "Dropout in pretraining.", (0.0, 0.9), label="dropout")
    n_neighbors: int = _like("n_neighbors", 10, help="Neighbours in the kNN graph used by Leiden (DESC uses 10).")
    cluster_lr: float = _like("cluster_lr", 0.01, help="Learning rate of the clustering stage (SGD, momentum 0.9).")
    tol: float = _like("tol", 0.005)

    method = "desc"


@dataclass
class SCDCCConfig(BaseConfig):
    """scDCC (Tian et al. 2021): ZINB autoencoder, then gamma * KL + ZINB (+ pairwise constraints)."""

    # One hidden layer of 128 (DESC's), not the reference's 256 -> 64: ARI 0.664 against 0.656 over the
    # five dev sets (bladder 0.555 -> 0.618 on every seed, the others within 0.02), seed agreement up on
    # bladder and cbmc, and pretraining 10-40 % shorter; a smaller network also gave DESC the better
    # embedding (BENCHMARKS.md 7 and 23b).
    hidden_dims: tuple[int, ...] = _like("hidden_dims", (128,))
    # 1.5, not the reference's 2.5: on cbmc (15 types of uneven size) the ARI rises 0.525 -> 0.634 on
    # every seed, the other four dev sets move by 0.013 or less; 1.0 gains as much on cbmc but loses
    # more on cellbench and pbmc, 0 loses everywhere (BENCHMARKS.md 21).
    noise_sigma: float = _f(
        1.5,
        "Std of Gaussian noise added to the (scaled) input while training: a denoising autoencoder. Less keeps "
        "more of small cell types apart; none at all gives a worse embedding.",
        (0.0, 100.0),
        label="noise added to the input",
    )
    gamma: float = _f(
        1.0,
        "Weight of the clustering (KL) loss against ZINB reconstruction.",
        (0.0, 1000.0),
        label="weight of the clustering loss",
    )
    ridge: float = _f(
        0.0, "Ridge penalty on the dropout probability pi.", (0.0, None), label="ridge penalty on pi", advanced=True
    )
    constraints: ConstraintConfig = field(
        default_factory=ConstraintConfig, metadata={"help": "Pairwise constraints.", "bounds": None}
    )

    method = "scdcc"

    def validate(self) -> None:  # noqa: D102 - documented on the base class
        super().validate()
        if isinstance(self.constraints, dict):
            self.constraints = ConstraintConfig(**self.constraints)
        self.constraints.validate()


CONFIG_CLASSES: dict[str, type[BaseConfig]] = {"desc": DESCConfig, "scdcc": SCDCCConfig}

#: How each method is written for people (the papers' spelling), in the CLI and the app.
METHOD_NAMES = {"desc": "DESC", "scdcc": "scDCC"}


def method_name(method: str) -> str:
    """``method``'s name as its paper writes it (``scdcc`` -> ``scDCC``)."""
    return METHOD_NAMES.get(method, method.upper())


#: Settings that make the pretrained model (its genes, input, network, training and pretraining pairs):
#: a re-cluster cannot change them, only pretraining again can (``batch_key`` and ``n_models`` too).
PRETRAINING_SETTINGS = (
    "n_top_genes",
    "scale_max_value",
    "hidden_dims",
    "latent_dim",
    "pretrain_epochs",
    "pretrain_patience",
    "pretrain_min_delta",
    "lr",
    "dropout",
    "constraints",
)

MODEL_SEED_STEP = 3
# The accuracy/time trade-off offered to the user (issue 8): settings a preset changes from the defaults.
# "thorough" is a consensus of three models, for about 3x the time. Over five dev sets x 3 seeds it
# raised the seed-to-seed agreement on every set for both methods; with the true k, DESC's ARI rose
# on every set (mean 0.637 -> 0.654), scDCC's stayed level (0.635 both); without k it is level
# (BENCHMARKS.md 17b, 17d, 18, 18b).
PRESETS: dict[str, dict[str, Any]] = {"fast": {"n_models": 1}, "thorough": {"n_models": 3}}
PRESET_HELP = {
    "fast": "one model (the default; within the time budget)",
    "thorough": "a consensus of three models (about 3x the time; the labels change less from seed to seed)",
}


def preset_of(cfg: BaseConfig) -> str | None:
    """The preset whose settings ``cfg`` has, or ``None`` when it matches none."""
    matches = [name for name, values in PRESETS.items() if all(getattr(cfg, k) == v for k, v in values.items())]
    return matches[0] if matches else None


def config_for(method: str, *, preset: str = "fast", **overrides: Any) -> BaseConfig:
    """Default config of a method with some settings changed.

    Parameters
    ----------
    method
        ``"desc"`` or ``"scdcc"``.
    preset
        ``"fast"`` (the defaults) or ``"thorough"`` (see :data:`PRESETS`); ``overrides`` win over it.
    **overrides
        Settings to change, by field name (e.g. ``n_clusters=8``); each is validated.

    Returns
    -------
    BaseConfig
        A :class:`DESCConfig` or :class:`SCDCCConfig`.
    """
    try:
        cls = CONFIG_CLASSES[method.lower()]
    except KeyError:
        raise ConfigError(f"Unknown method {method!r}: choose 'desc' or 'scdcc'.") from None
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}: choose one of {sorted(PRESETS)}.")
    return cls(**{**PRESETS[preset], **overrides})


def _check_bounds(cfg: Any) -> None:
    for f in dataclasses.fields(cfg):
        bounds = f.metadata.get("bounds")
        value = getattr(cfg, f.name)
        if bounds is None or value is None:
            continue
        if f.name == "n_clusters" and isinstance(value, str):
            if value != "auto":
                raise ConfigError(f"n_clusters must be a number of clusters, 'auto' or None, got {value!r}.")
            continue
        if isinstance(value, (np.integer, np.floating)):
            value = value.item()
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{f.name} must be a number, got {value!r}.")
        lo, hi = bounds
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            rng = f"[{lo if lo is not None else '-inf'}, {hi if hi is not None else 'inf'}]"
            raise ConfigError(f"{f.name} = {value} is out of range {rng}: {f.metadata['help']}")


def _metadata(cls: type, name: str) -> dict[str, Any]:
    return next(f.metadata for f in dataclasses.fields(cls) if f.name == name)


@dataclass(frozen=True)
class Setting:
    """One config field as an interface presents it: the CLI's options and the Train page's form
    are made from these, so a field is described once, here.

    ``kind`` is ``int``, ``float``, ``str``, ``tuple`` (of ints) or ``object`` (anything else, e.g.
    ``n_clusters``); ``defaults`` maps each method that has the setting to its default.
    """

    name: str
    kind: type
    help: str
    label: str
    bounds: tuple[float | None, float | None] | None
    choices: tuple[str, ...] | None
    advanced: bool
    defaults: dict[str, Any]


def _kind(hint: Any) -> type:
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return _kind(args[0]) if len(args) == 1 else object
    base = origin or hint
    return base if base in (int, float, str, tuple) else object


def settings(classes: Sequence[type] | None = None) -> list[Setting]:
    """The fields of ``classes`` (default: every method's config) as :class:`Setting`, in field order,
    each once with its default per method.

    Parameters
    ----------
    classes
        Config classes, e.g. ``[DESCConfig]`` for one method's form, or ``[ConstraintConfig]``.

    Returns
    -------
    list of Setting
    """
    classes = list(classes or CONFIG_CLASSES.values())
    found: dict[str, Setting] = {}
    for cls in classes:
        hints = typing.get_type_hints(cls)
        method = getattr(cls, "method", cls.__name__)
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            if f.name in found:
                found[f.name].defaults[method] = default
                continue
            md = f.metadata
            found[f.name] = Setting(
                name=f.name,
                kind=_kind(hints[f.name]),
                help=md.get("help", ""),
                label=md.get("label") or f.name.replace("_", " "),
                bounds=md.get("bounds"),
                choices=md.get("choices"),
                advanced=bool(md.get("advanced")),
                defaults={method: default},
            )
    return list(found.values())
