"""A run's result: the object, its AnnData keys, and saving/loading a run folder.

Keys (``key`` defaults to the method name), following ``shared/notes/style.md``:
``obs[f"{key}_cluster"]`` (categorical), ``obs[f"{key}_confidence"]`` (max q),
``obs[f"{key}_entropy"]`` (entropy of q), ``obsm[f"X_{key}"]`` (embedding),
``obsm[f"{key}_q"]`` (soft assignments), ``obsm[f"X_{key}_umap"]`` (UMAP of the
embedding, when computed), ``uns[f"{key}_cluster_colors"]`` (one colour per cluster, scanpy's
convention) and ``uns[key]`` (config JSON, versions, scores, history).
Cells the method could not use (all-zero) get NaN.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from .colours import store_colours
from .kselect import KSelection


def library_versions() -> dict[str, str]:
    """Versions of the libraries that decide a run's numbers."""
    out = {"python": platform.python_version()}
    for pkg in ("scdeep_core", "torch", "numpy", "scipy", "scikit-learn", "scanpy", "anndata", "igraph", "umap-learn"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            if pkg == "scdeep_core":
                from . import __version__

                out[pkg] = __version__
    return out


@dataclass
class ClusteringResult:
    """Everything a DESC or scDCC run produced.

    Arrays are over the *used* cells (``cell_mask`` of the input's cells).
    """

    method: str
    key: str
    config: dict[str, Any]
    labels: np.ndarray
    q: np.ndarray
    embedding: np.ndarray
    centroids: np.ndarray
    cell_mask: np.ndarray
    history: pd.DataFrame
    stage: str  # "pretrain" (stopped before clustering), "cluster" (stopped during it) or "done"
    converged: bool
    scores: dict[str, float] = field(default_factory=dict)
    eval_mask: np.ndarray | None = None
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    genes: list[str] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=library_versions)
    delta_label: float | None = None  # fraction of cells that changed cluster at the last check
    k_selection: KSelection | None = None  # the scan behind an automatic k
    init_scores: dict[str, float] = field(default_factory=dict)  # scores of the initial clustering
    batch_scores: dict[str, float] = field(default_factory=dict)  # batch mixing (ilisi, batch_asw) with a batch_key
    # Constraints given to recluster: {"pairs": DataFrame cell1, cell2, type; "selections": [Selection dicts]}
    constraints: dict[str, Any] | None = None
    # A consensus of several models (n_models > 1): n_models, seeds, agreement, cluster_epochs, converged
    consensus: dict[str, Any] | None = None
    # How the initial clusters with a given k were made: method, stability per candidate, reason
    start: dict[str, Any] | None = None
    pretrained: Any = field(default=None, repr=False, compare=False)  # api.Pretrained, kept in memory only
    adata: Any = field(default=None, repr=False, compare=False)  # the annotated copy when fit(..., copy=True)

    @property
    def n_clusters(self) -> int:
        return int(self.q.shape[1])

    @property
    def confidence(self) -> np.ndarray:
        """Max soft assignment per cell."""
        return self.q.max(axis=1)

    @property
    def entropy(self) -> np.ndarray:
        """Entropy of each cell's soft assignment (0 = certain)."""
        q = np.clip(self.q, 1e-12, 1.0)
        return -(q * np.log(q)).sum(axis=1)

    @property
    def tol(self) -> float | None:
        return self.config.get("tol")

    def convergence(self) -> str:
        """Plain words on how the clustering stage ended."""
        epochs = int(self.timings.get("cluster_epochs", 0))
        if self.stage == "pretrain":
            return "stopped during pretraining (labels from the initial clustering)"
        if self.stage == "cluster":
            return f"stopped by the user after {epochs} clustering epochs"
        if self.converged:
            shown = f"delta_label {self.delta_label:.4f} < tol {self.tol:g}, " if self.delta_label is not None else ""
            return f"converged ({shown}{epochs} clustering epochs)"
        shown = (
            f"delta_label {self.delta_label:.4f} >= tol {self.tol:g}" if self.delta_label is not None else "no check"
        )
        return f"NOT converged: hit the cap of {epochs} clustering epochs ({shown})"

    def score_parts(self) -> list[str]:
        """Each score as ``NAME=value``: against the labels (and on how many cells, when some were left
        out), then batch mixing (when it had batches)."""
        parts = [f"{name.upper()}={value:.3f}" for name, value in self.scores.items()]
        if parts and self.eval_mask is not None and not self.eval_mask.all():
            # Cells in constraints (or without a label) are left out of the scores: say how few remain.
            parts.append(f"scored on {int(self.eval_mask.sum()):,} of {len(self.eval_mask):,} cells")
        shown = {"ilisi": "iLISI", "batch_asw": "batch_ASW"}
        return parts + [f"{shown.get(n, n)}={v:.2f}" for n, v in self.batch_scores.items() if np.isfinite(v)]

    def summary(self) -> str:
        """One line: method, k (and how it was chosen), scores, wall time, convergence."""
        parts = [f"{self.method}: k={self.n_clusters}" + (" (automatic)" if self.k_selection is not None else "")]
        if self.consensus is not None:
            info = self.consensus
            parts.append(f"consensus of {info['n_models']} models (agreement {info['agreement']:.2f})")
        parts += self.score_parts()
        if "total_s" in self.timings:
            parts.append(f"time={self.timings['total_s']:.1f}s")
        parts.append(self.convergence())
        return ", ".join(parts)


def _full(values: np.ndarray, mask: np.ndarray, fill: float = np.nan) -> np.ndarray:
    out = np.full((len(mask), *values.shape[1:]), fill, dtype=np.float32)
    out[mask] = values
    return out


def write_to_adata(adata: ad.AnnData, result: ClusteringResult) -> None:
    """Write the result keys (module docstring) into ``adata`` in place."""
    key, mask = result.key, result.cell_mask
    names = [str(i) for i in range(result.n_clusters)]
    codes = np.full(len(mask), -1)
    codes[mask] = result.labels
    adata.obs[f"{key}_cluster"] = pd.Categorical.from_codes(codes, categories=names)
    store_colours(adata, f"{key}_cluster")  # scanpy's convention: every plot (and cellxgene) shows these
    adata.obs[f"{key}_confidence"] = _full(result.confidence, mask)
    adata.obs[f"{key}_entropy"] = _full(result.entropy, mask)
    adata.obsm[f"X_{key}"] = _full(result.embedding, mask)
    adata.obsm[f"{key}_q"] = _full(result.q, mask)
    adata.uns[key] = {
        "method": result.method,
        "config_json": json.dumps(result.config),
        "versions_json": json.dumps(result.versions),
        "scores": {k: float(v) for k, v in result.scores.items()},
        "timings": {k: float(v) for k, v in result.timings.items()},
        "stage": result.stage,
        "converged": bool(result.converged),
        "notes": list(result.notes) or [""],
        "genes": list(result.genes),
        "centroids": result.centroids.astype(np.float32),
        "history": result.history.astype({c: "float64" for c in result.history.columns if c != "phase"}),
        "convergence": {
            "converged": bool(result.converged),
            "stage": result.stage,
            "summary": result.convergence(),
            "delta_label": float("nan") if result.delta_label is None else float(result.delta_label),
            "tol": float(result.config.get("tol", float("nan"))),
            "cluster_epochs": int(result.timings.get("cluster_epochs", 0)),
            "max_cluster_epochs": int(result.config.get("max_cluster_epochs", 0)),
        },
        "init_scores": {k: float(v) for k, v in result.init_scores.items()},
        "batch_scores": {k: float(v) for k, v in result.batch_scores.items()},
    }
    if result.k_selection is not None:
        adata.uns[key]["k_selection"] = result.k_selection.to_uns()
    if result.consensus is not None:
        adata.uns[key]["consensus"] = {
            "n_models": int(result.consensus["n_models"]),
            "seeds": np.asarray(result.consensus["seeds"], dtype=np.int64),
            "agreement": float(result.consensus["agreement"]),
            "cluster_epochs": np.asarray(result.consensus["cluster_epochs"], dtype=np.int64),
            "converged": np.asarray(result.consensus["converged"], dtype=bool),
        }
    if result.start is not None:
        adata.uns[key]["start"] = {k: result.start[k] for k in ("method", "k", "reason")} | (
            {"stability": {m: float(v) for m, v in result.start["stability"].items()}}
            if result.start["stability"]
            else {}
        )
    if result.constraints is not None:
        adata.uns[key]["constraints"] = {
            "pairs": result.constraints["pairs"],
            "selections_json": json.dumps(result.constraints["selections"]),
        }


def result_columns(adata: ad.AnnData) -> set[str]:
    """The obs columns that scDeep runs wrote (clusters, names, confidence, entropy): not the
    data's own labels, even in a file exported from the app and loaded again."""
    keys = [k for k, v in adata.uns.items() if isinstance(v, dict) and "config_json" in v and "method" in v]
    return {f"{k}_{suffix}" for k in keys for suffix in ("cluster", "annotation", "confidence", "entropy")} & set(
        adata.obs.columns
    )


def for_viewers(adata: ad.AnnData, key: str) -> ad.AnnData:
    """``adata`` as it is downloaded: ready for the tools people open h5ad files in.

    cellxgene opens on a layout named ``umap`` (else the first ``X_`` key by name, here the
    16-D latent ``X_<key>``, drawing its first two dimensions): so the run's UMAP is also stored
    as ``obsm["X_umap"]`` (unless the data has one already) and named in
    ``uns["default_embedding"]``. The count matrix is stored column-compressed (CSC), which
    cellxgene reads without a conversion warning. Arrays are shared with ``adata``, not copied
    (only the CSC matrix is new).
    """
    import scipy.sparse as sp

    obsm = dict(adata.obsm)
    umap_key = f"X_{key}_umap"
    default = umap_key if umap_key in obsm else f"X_{key}"
    if umap_key in obsm and "X_umap" not in obsm:
        obsm["X_umap"] = obsm[umap_key]
        default = "X_umap"
    x = adata.X.tocsc() if sp.issparse(adata.X) and adata.X.format != "csc" else adata.X
    out = ad.AnnData(
        X=x,
        obs=adata.obs,
        var=adata.var,
        obsm=obsm,
        uns={**adata.uns, "default_embedding": default},
        layers=dict(adata.layers),
        varm=dict(adata.varm),
        obsp=dict(adata.obsp),
    )
    return out


def result_from_adata(adata: ad.AnnData, key: str) -> ClusteringResult:
    """Rebuild a :class:`ClusteringResult` from the keys written by :func:`write_to_adata`."""
    if key not in adata.uns or f"{key}_q" not in adata.obsm:
        raise KeyError(f"No scdeep result under key {key!r} in this AnnData.")
    info = adata.uns[key]
    q_full = np.asarray(adata.obsm[f"{key}_q"])
    mask = ~np.isnan(q_full).any(axis=1)
    q = q_full[mask]
    scores = dict(info.get("scores", {}))
    conv = info.get("convergence", {})
    delta = conv.get("delta_label")
    return ClusteringResult(
        method=str(info["method"]),
        key=key,
        config=json.loads(info["config_json"]),
        labels=q.argmax(axis=1),
        q=q,
        embedding=np.asarray(adata.obsm[f"X_{key}"])[mask],
        centroids=np.asarray(info["centroids"]),
        cell_mask=mask,
        history=pd.DataFrame(info["history"]),
        stage=str(info["stage"]),
        converged=bool(info["converged"]),
        scores=scores,
        timings=dict(info.get("timings", {})),
        notes=[n for n in info.get("notes", []) if n],
        genes=list(info.get("genes", [])),
        versions=json.loads(info["versions_json"]),
        delta_label=None if delta is None or np.isnan(delta) else float(delta),
        k_selection=KSelection.from_uns(info["k_selection"]) if "k_selection" in info else None,
        init_scores=dict(info.get("init_scores", {})),
        batch_scores=dict(info.get("batch_scores", {})),
        constraints=_constraints_from_uns(info.get("constraints")),
        consensus=_consensus_from_uns(info.get("consensus")),
        start=_start_from_uns(info.get("start")),
    )


def _start_from_uns(stored: dict | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    stability = {str(m): float(v) for m, v in dict(stored.get("stability", {})).items()}
    return {
        "method": str(stored["method"]),
        "k": int(stored["k"]),
        "stability": stability,
        "reason": str(stored.get("reason", "")),
    }


def _consensus_from_uns(stored: dict | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    return {
        "n_models": int(stored["n_models"]),
        "seeds": [int(s) for s in np.asarray(stored["seeds"])],
        "agreement": float(stored["agreement"]),
        "cluster_epochs": [int(e) for e in np.asarray(stored["cluster_epochs"])],
        "converged": [bool(c) for c in np.asarray(stored["converged"])],
    }


def _constraints_from_uns(stored: dict | None) -> dict[str, Any] | None:
    if stored is None:
        return None
    return {"pairs": pd.DataFrame(stored["pairs"]), "selections": json.loads(stored["selections_json"])}


def save_run(adata: ad.AnnData, result: ClusteringResult, folder: str | Path) -> dict[str, Path]:
    """Save a run: ``result.h5ad``, ``config.json`` (with versions, scores, timings),
    ``history.csv`` and ``labels.csv`` (cluster, confidence and embedding per cell); for a run
    re-clustered with constraints, also ``constraints.csv`` (the pairs, as the CLI's ``--pairs``
    reads them) and the selections in ``config.json``.

    Parameters
    ----------
    adata
        The AnnData the run was fitted on; its result keys are written first if missing.
    result
        From :func:`~scdeep_core.fit` or :func:`~scdeep_core.recluster`.
    folder
        Where the four files go (created if needed).

    Returns
    -------
    dict
        ``"h5ad"``, ``"config"``, ``"history"``, ``"labels"`` (and ``"constraints"``) -> the paths written.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if result.key not in adata.uns:
        write_to_adata(adata, result)
    paths = {
        "h5ad": folder / "result.h5ad",
        "config": folder / "config.json",
        "history": folder / "history.csv",
        "labels": folder / "labels.csv",
    }
    adata.write_h5ad(paths["h5ad"])
    meta = {
        "method": result.method,
        "key": result.key,
        "config": result.config,
        "versions": result.versions,
        "scores": result.scores,
        "timings": result.timings,
        "stage": result.stage,
        "converged": result.converged,
        "n_clusters": result.n_clusters,
        "notes": result.notes,
        "convergence": result.convergence(),
        "delta_label": result.delta_label,
        "init_scores": result.init_scores,
    }
    if result.k_selection is not None:
        meta["k_selection"] = {
            "chosen_k": result.k_selection.n_clusters,
            "rule": result.k_selection.rule,
            "table": result.k_selection.table.to_dict(orient="records"),
        }
    if result.consensus is not None:
        meta["consensus"] = result.consensus
    if result.start is not None:
        meta["start"] = result.start
    if result.constraints is not None:
        paths["constraints"] = folder / "constraints.csv"
        result.constraints["pairs"].to_csv(paths["constraints"], index=False)
        meta["constraints"] = {
            "n_pairs": len(result.constraints["pairs"]),
            "selections": result.constraints["selections"],
        }
    paths["config"].write_text(json.dumps(meta, indent=2))
    result.history.to_csv(paths["history"], index=False)
    labels_table(adata, result.key).to_csv(paths["labels"])
    return paths


def labels_table(adata: ad.AnnData, key: str) -> pd.DataFrame:
    """Per-cell cluster, cell-type name (when the clusters were named), confidence, entropy and
    embedding columns (for CSV export)."""
    named = [f"{key}_annotation"] if f"{key}_annotation" in adata.obs else []
    df = adata.obs[[f"{key}_cluster", *named, f"{key}_confidence", f"{key}_entropy"]].copy()
    emb = np.asarray(adata.obsm[f"X_{key}"])
    for j in range(emb.shape[1]):
        df[f"{key}_z{j}"] = emb[:, j]
    return df


def load_run(folder: str | Path) -> tuple[ad.AnnData, ClusteringResult]:
    """Load a folder written by :func:`save_run`.

    Parameters
    ----------
    folder
        The folder :func:`save_run` wrote.

    Returns
    -------
    tuple
        The AnnData with its result keys, and the :class:`ClusteringResult` rebuilt from them.
    """
    folder = Path(folder)
    meta = json.loads((folder / "config.json").read_text())
    adata = ad.read_h5ad(folder / "result.h5ad")
    return adata, result_from_adata(adata, meta["key"])


def label_fingerprint(labels: np.ndarray) -> str:
    """SHA-256 of a labelling (one integer per cell): equal fingerprints, identical labels."""
    return hashlib.sha256(np.asarray(labels, dtype=np.int64).tobytes()).hexdigest()


def _run_code(result: ClusteringResult, label_key: str | None) -> str:
    """The snippet's lines that run the method: a fit, or for constraints given at re-clustering,
    pretraining then the clustering stage with the same selections (or the saved pair file)."""
    if result.constraints is None:
        return f"result = sd.fit(adata, config, label_key={label_key!r}, key_added={result.key!r})\n"
    if result.constraints["selections"]:
        given = (
            f"selections = {result.constraints['selections']!r}\n"
            "constraints = [sd.constraints.Selection.from_dict(s) for s in selections]\n"
        )
    else:
        given = (
            "constraints = sd.constraints.read_pair_file('constraints.csv', adata.obs_names)  # from the run folder\n"
        )
    return (
        f"pretrained = sd.pretrain(adata, config, label_key={label_key!r})\n"
        f"{given}"
        f"result = sd.recluster(adata, pretrained, config, constraints=constraints, key_added={result.key!r})\n"
    )


def reproduce_snippet(
    result: ClusteringResult, load_code: str = "adata = sd.io.read_counts('counts.h5ad')", label_key: str | None = None
) -> str:
    """A Python script that reruns this configuration with ``scdeep_core`` and prints whether it
    got the same labels.

    ``load_code`` is Python that makes ``adata`` (with ``scdeep_core`` imported as ``sd``): how the
    data was read, e.g. ``adata = sd.datasets.load_builtin('pbmc68k_reduced')``. The run's labels are
    embedded so the script can compare (same config and seed give the same labels on CPU).
    """
    from .config import CONFIG_CLASSES

    cls = CONFIG_CLASSES[result.method].__name__
    cfg = {k: v for k, v in result.config.items() if k != "method"}
    labels = np.full(len(result.cell_mask), -1)
    labels[result.cell_mask] = result.labels
    return (
        "# Reproduces this scDeep run (same config and seed -> same labels on CPU).\n"
        "# Needs scdeep_core 0.2 or later: pip install -r requirements.txt in a checkout of scDeep.\n"
        "import hashlib\n\n"
        "import numpy as np\n"
        "import scdeep_core as sd\n"
        "from scdeep_core import pp  # noqa: F401  (used when the data was filtered)\n\n"
        f"{load_code}\n"
        f"config = sd.{cls}.from_dict({cfg!r})\n"
        f"{_run_code(result, label_key)}"
        "print(result.summary())\n\n"
        "# The original run's labels, as a fingerprint (cluster per cell, -1 for cells it could not use).\n"
        "got = np.full(len(result.cell_mask), -1, dtype=np.int64)\n"
        "got[result.cell_mask] = result.labels\n"
        "print('same labels as the original run:', hashlib.sha256(got.tobytes()).hexdigest() == "
        f"{label_fingerprint(labels)!r})\n"
        f"# versions used: {json.dumps({k: result.versions.get(k) for k in ('scdeep_core', 'torch', 'scanpy')})}\n"
    )
