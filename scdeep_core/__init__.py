"""scdeep_core: deep-learning clustering of single-cell RNA-seq counts (DESC and scDCC).

>>> import scdeep_core as sd
>>> adata = sd.read_counts("counts.h5ad")
>>> result = sd.fit(adata, "scdcc", label_key="cell_type")     # scDCC's defaults, k chosen automatically
>>> print(result.k_selection.summary())
>>> again = sd.recluster(adata, result.pretrained, sd.SCDCCConfig(n_clusters=8), key_added="scdcc_k8")
>>> adata.obs["scdcc_cluster"], adata.obs["scdcc_confidence"]
"""

__version__ = "0.2.0"

import os as _os

# OpenMP threads that spin while waiting make training 5x slower as soon as anything else
# wants a core (the app's UI thread, a browser, a second process: measured 56 s vs 9.5 s on
# 2 cores). Must be set before torch loads its OpenMP runtime; a user's own setting wins.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import constraints, datasets, io, kselect, metrics
from .api import Pretrained, fit, fit_resolutions, pretrain, recluster
from .config import ConfigError, ConstraintConfig, DESCConfig, SCDCCConfig, config_for
from .errors import InputError
from .events import StopToken, TrainingEvent
from .io import read_counts
from .results import ClusteringResult, load_run, save_run

__all__ = [
    "constraints",
    "datasets",
    "io",
    "read_counts",
    "fit",
    "fit_resolutions",
    "pretrain",
    "recluster",
    "Pretrained",
    "kselect",
    "metrics",
    "ConfigError",
    "ConstraintConfig",
    "DESCConfig",
    "SCDCCConfig",
    "config_for",
    "InputError",
    "StopToken",
    "TrainingEvent",
    "ClusteringResult",
    "load_run",
    "save_run",
]
