"""Data-parallel training over several processes with ``torch.distributed`` (launched by ``torchrun``).

One process per GPU (NCCL) or per group of CPU cores (gloo), the same code. Every rank prepares
the same data; the cells are split into shards (cell ``i`` belongs to rank ``i % world``):

- **Minibatches** come from the rank's own shard, as PyTorch's ``DistributedSampler`` does, and
  every rank takes the same number of steps per epoch (a collective must never wait on a rank
  that has stopped).
- **Gradients** are averaged across ranks after each backward pass (:meth:`Ranks.average_gradients`),
  so the model replicas stay identical.
- **The clustering stage's global quantities** are computed with collectives: the cluster
  frequencies ``f_j = sum_i q_ij`` of the target distribution are summed over shards
  (:meth:`Ranks.target_distribution`); the embedding of every cell is computed shard by shard
  and gathered (:meth:`Ranks.gather_cells`), so ``delta_label`` and the initial centroids are
  those of all cells; the centroids are broadcast from rank 0.

Why not ``DistributedDataParallel``: the methods' losses call several parts of the network
(encoder, decoder heads, centroids) rather than one ``forward``, which DDP's reducer hooks into;
averaging the gradients explicitly is what DDP does, without that restructuring.

Without ``torchrun`` (one process, the dashboard, the tests) :func:`current` is a single rank and
every helper is the identity, so single-process results are unchanged bit for bit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist

from .config import ConfigError
from .losses import target_distribution


@dataclass(frozen=True)
class Ranks:
    """Where this process stands among the training processes."""

    rank: int = 0
    world: int = 1

    @property
    def active(self) -> bool:
        """More than one process trains."""
        return self.world > 1

    @property
    def backend(self) -> str:
        """The process group's backend (``"gloo"``, ``"nccl"``), or ``"none"`` for one process."""
        return dist.get_backend() if self.active else "none"

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that prints and writes results."""
        return self.rank == 0

    def shard(self, n_cells: int) -> np.ndarray:
        """Indices of this rank's cells (every ``world``-th cell from ``rank``)."""
        return np.arange(self.rank, n_cells, self.world)

    def epoch_batches(
        self, n_cells: int, batch_size: int, rng: np.random.Generator | None, order=None
    ) -> list[np.ndarray]:
        """This rank's minibatches for one epoch (shuffled when ``rng`` is given).

        One process: the cells split into ``batch_size`` chunks, in the order ``order(rng)``
        gives (the block shuffle of data read from disk) or a random permutation. Several:
        ``batch_size`` stays the global batch; each rank splits its shuffled shard into the same
        number of chunks (``ceil(n_cells / batch_size)``), so all ranks step together.
        """
        if not self.active:
            if rng is None:
                order = np.arange(n_cells)
            else:
                order = order(rng) if order is not None else rng.permutation(n_cells)
            return [order[i : i + batch_size] for i in range(0, n_cells, batch_size)]
        own = self.shard(n_cells)
        if rng is not None:
            own = own[rng.permutation(len(own))]
        # The smallest shard has n_cells // world cells: no rank may get an empty step.
        n_steps = max(1, min(-(-n_cells // batch_size), n_cells // self.world))
        return list(np.array_split(own, n_steps))

    def average_gradients(self, params) -> None:
        """Replace every parameter's gradient by its mean over ranks (what DDP's reducer does)."""
        if not self.active:
            return
        grads = [p.grad for p in params if p.grad is not None]
        if not grads:
            return
        flat = torch.cat([g.reshape(-1) for g in grads])  # one collective per step, not one per tensor
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= self.world
        offset = 0
        for g in grads:
            g.copy_(flat[offset : offset + g.numel()].view_as(g))
            offset += g.numel()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Element-wise sum of ``values`` over ranks (a new tensor)."""
        out = values.clone()
        if self.active:
            dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    def mean_losses(self, means: dict[str, float], n_seen: int) -> dict[str, float]:
        """Epoch loss means over all ranks' cells (each rank's mean weighted by its cell count)."""
        if not self.active:
            return means
        names = sorted(means)
        t = torch.tensor([means[k] * n_seen for k in names] + [float(n_seen)], dtype=torch.float64)
        t = self.sum(t)
        return {k: float(t[i] / t[-1]) for i, k in enumerate(names)}

    def gather_cells(self, shard_values: np.ndarray, n_cells: int) -> np.ndarray:
        """Every cell's rows from each rank's shard rows (:meth:`shard` order), on every rank."""
        if not self.active:
            return shard_values
        shard_values = np.ascontiguousarray(shard_values)
        size = -(-n_cells // self.world)  # all_gather needs equal shapes: pad the shorter shards
        padded = np.zeros((size, *shard_values.shape[1:]), dtype=shard_values.dtype)
        padded[: len(shard_values)] = shard_values
        parts = [torch.empty_like(torch.from_numpy(padded)) for _ in range(self.world)]
        dist.all_gather(parts, torch.from_numpy(padded))
        out = np.empty((n_cells, *shard_values.shape[1:]), dtype=shard_values.dtype)
        for r, part in enumerate(parts):
            rows = np.arange(r, n_cells, self.world)
            out[rows] = part.numpy()[: len(rows)]
        return out

    def broadcast(self, tensor: torch.Tensor) -> torch.Tensor:
        """Rank 0's ``tensor`` on every rank (in place)."""
        if self.active:
            dist.broadcast(tensor, src=0)
        return tensor

    def broadcast_array(self, values: np.ndarray) -> np.ndarray:
        """Rank 0's array (same shape and dtype on every rank)."""
        if not self.active:
            return values
        tensor = torch.from_numpy(np.ascontiguousarray(values).copy())
        dist.broadcast(tensor, src=0)
        return tensor.numpy()

    def sync_parameters(self, model: torch.nn.Module) -> None:
        """Copy rank 0's weights to every rank (after steps each rank took on its own, e.g. scDCC's pairs)."""
        if self.active:
            for param in model.parameters():
                dist.broadcast(param.data, src=0)

    def target_distribution(self, q_shard: torch.Tensor) -> torch.Tensor:
        """DEC's target ``p_ij ∝ q_ij² / f_j`` for this rank's cells, with ``f_j`` summed over all ranks.

        Equal to :func:`scdeep_core.losses.target_distribution` on all cells' ``q`` (the row
        normalisation is per cell; only ``f_j`` needs every shard).
        """
        return target_distribution(q_shard, frequency=self.sum(q_shard.detach().sum(dim=0, keepdim=True)))


def current() -> Ranks:
    """This process's place: from the initialised process group, else a single rank."""
    if dist.is_available() and dist.is_initialized():
        return Ranks(dist.get_rank(), dist.get_world_size())
    return Ranks()


def launched_by_torchrun() -> bool:
    """``torchrun`` (or another launcher) set the environment of a multi-process run."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def setup(backend: str = "auto") -> Ranks:
    """Join the process group that ``torchrun`` describes in the environment.

    Parameters
    ----------
    backend
        ``"gloo"`` (CPU), ``"nccl"`` (CUDA GPUs) or ``"auto"``: NCCL when CUDA is available, else gloo.

    Returns
    -------
    Ranks
        This process's rank and the number of processes (a single rank without ``torchrun``).

    Raises
    ------
    ConfigError
        The backend is unknown or unavailable here.
    """
    if not launched_by_torchrun():
        return Ranks()
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("gloo", "nccl"):
        raise ConfigError(f"Unknown distributed backend {backend!r}: use 'gloo' (CPU), 'nccl' (GPUs) or 'auto'.")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ConfigError("The nccl backend needs CUDA GPUs; on CPUs use --dist-backend gloo.")
    if not dist.is_initialized():
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend=backend)
    return current()


def local_device(ranks: Ranks, device: str) -> str:
    """The device setting for this rank: one GPU per local rank on CUDA, else the setting as given."""
    if not ranks.active or not device.startswith(("cuda", "auto")):
        return device
    if device == "auto" and not torch.cuda.is_available():
        return device
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"


def teardown() -> None:
    """Leave the process group (after the last collective)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
