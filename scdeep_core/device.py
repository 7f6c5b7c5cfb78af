"""Where the tensors live: ``device="auto"`` trains on a CUDA GPU when one is present, else on the CPU.

Every tensor the engine makes from NumPy goes through :func:`to_device` and every result comes
back through :func:`to_numpy`, so one setting moves the whole run. On the CPU both are free
(``torch.from_numpy`` shares memory), which keeps CPU results bit-identical to the CPU-only code.
"""

from __future__ import annotations

import numpy as np
import torch

from .config import ConfigError


def resolve_device(name: str) -> torch.device:
    """The torch device for a config's ``device`` setting.

    Parameters
    ----------
    name
        ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Returns
    -------
    torch.device

    Raises
    ------
    ConfigError
        A CUDA device was asked for on a machine without one (or without that index).
    """
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} but this machine has no usable CUDA GPU: use device='auto' or 'cpu'.")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device={name!r} but this machine has {torch.cuda.device_count()} GPU(s), numbered from 0."
            )
    return device


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's parameters."""
    return next(model.parameters()).device


def to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A NumPy array as a tensor on ``device``.

    On the CPU this shares the array's memory; for a GPU the copy goes through pinned (page-locked)
    memory so it can run asynchronously with the work already queued on the GPU.
    """
    tensor = torch.from_numpy(array)
    if device.type == "cpu":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """A tensor's values as a NumPy array on the CPU (no copy when it is already there)."""
    return tensor.detach().cpu().numpy()
