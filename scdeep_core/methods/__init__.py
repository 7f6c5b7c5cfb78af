"""DESC and scDCC as loss hooks for the shared training loop (``scdeep_core.train``).

``METHOD_HOOKS`` is the method registry beside the config registry
(:data:`scdeep_core.config.CONFIG_CLASSES`): a new method adds its config class there and its
hooks here, with the same name.
"""

from __future__ import annotations

import torch

from ..config import BaseConfig
from ..constraints import PairConstraints
from ..pp import PreparedData
from ..train import MethodHooks
from .desc import DESCHooks
from .scdcc import SCDCCHooks

METHOD_HOOKS: dict[str, type[MethodHooks]] = {"desc": DESCHooks, "scdcc": SCDCCHooks}


def hooks_for(
    cfg: BaseConfig,
    data: PreparedData,
    pairs: PairConstraints | None = None,
    device: torch.device | None = None,
) -> MethodHooks:
    """The loss hooks of ``cfg``'s method, for ``data`` (and scDCC's constraints) on ``device``."""
    return METHOD_HOOKS[cfg.method](cfg, data, pairs, device)


__all__ = ["METHOD_HOOKS", "DESCHooks", "SCDCCHooks", "hooks_for"]
