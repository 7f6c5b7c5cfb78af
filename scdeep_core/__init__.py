"""scdeep_core: deep-learning clustering of single-cell RNA-seq counts (DESC and scDCC).

>>> import scdeep_core as sd
>>> adata = sd.read_counts("counts.h5ad")
>>> result = sd.fit(adata, method="scdcc", config=sd.SCDCCConfig(n_clusters=8), label_key="cell_type")
>>> adata.obs["scdcc_cluster"], adata.obs["scdcc_confidence"]
"""
__version__ = "0.1.0"

from . import datasets, io
from .api import fit
from .config import ConfigError, ConstraintConfig, DESCConfig, SCDCCConfig, config_for
from .errors import InputError
from .events import StopToken, TrainingEvent
from .results import ClusteringResult, load_run, save_run

__all__ = [
    "fit", "ConfigError", "ConstraintConfig", "DESCConfig", "SCDCCConfig", "config_for", "InputError",
    "StopToken", "TrainingEvent", "ClusteringResult", "load_run", "save_run",
]
