"""DESC and scDCC as loss hooks for the shared training loop (``scdeep_core.train``)."""

from .desc import DESCHooks
from .scdcc import SCDCCHooks

__all__ = ["DESCHooks", "SCDCCHooks"]
