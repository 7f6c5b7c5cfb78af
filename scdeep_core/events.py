"""What a training run tells its listeners, and how a listener asks it to stop."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class EmbeddingSnapshot:
    """A 2-D view of (a subsample of) the embedding at one moment of training.

    Coordinates come from one fixed linear projection chosen at the start of the
    clustering stage, so successive snapshots are comparable: cells visibly move.
    """

    coords: np.ndarray  # (m, 2)
    labels: np.ndarray  # (m,)
    confidence: np.ndarray  # (m,) max q
    centroids: np.ndarray  # (k, 2)
    update: int  # target-update count


@dataclass
class TrainingEvent:
    """One progress record, emitted at the end of every epoch (and at phase changes).

    ``phase`` is ``"prepare"`` (normalising, selecting genes), ``"pretrain"``, ``"init"``
    (clusters initialised), ``"cluster"``, ``"done"`` or ``"stopped"``. ``losses`` maps each
    loss term to its epoch mean. ``confidence`` (clustering epochs that follow a target update)
    summarises every cell's max q: its ``mean``, ``q10`` and ``q90``. ``eta`` is the expected
    time left in seconds, ``eta_max`` the time left if every phase runs to its cap, ``progress``
    the share of the run done by time (see :mod:`scdeep_core.progress`). ``epoch_s`` is the
    epoch's own duration. ``history_row`` is set by the training loop's monitor when it records
    the event in the run's history (pretraining and clustering epochs): the one row a live view
    appends, so the loop alone decides what the history holds. ``model`` is the model's index
    (0-based) in a consensus of several (``n_models``), ``None`` with one.
    """

    phase: str
    epoch: int
    max_epochs: int
    losses: dict[str, float] = field(default_factory=dict)
    delta_label: float | None = None
    ari: float | None = None
    nmi: float | None = None
    n_clusters: int | None = None
    elapsed: float = 0.0
    eta: float | None = None
    eta_max: float | None = None
    progress: float = 0.0
    snapshot: EmbeddingSnapshot | None = None
    confidence: dict[str, float] | None = None
    message: str = ""
    epoch_s: float | None = None
    history_row: dict[str, float | int | str | None] | None = None
    model: int | None = None

    def as_row(self) -> dict[str, float | int | str | None]:
        """Flat record for a loss-history table (no snapshot)."""
        row: dict[str, float | int | str | None] = {
            "phase": self.phase,
            "epoch": self.epoch,
            "delta_label": self.delta_label,
            "ari": self.ari,
            "nmi": self.nmi,
            "n_clusters": self.n_clusters,
            "elapsed": self.elapsed,
            "epoch_s": self.epoch_s,
        }
        if self.model is not None:
            row["model"] = self.model
        row.update({f"loss_{k}": v for k, v in self.losses.items()})
        if self.confidence is not None:
            row.update({f"confidence_{k}": v for k, v in self.confidence.items()})
        return row


Callback = Callable[[TrainingEvent], None]


class StopToken:
    """Cooperative stop: the training loop checks it between minibatches."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def stop(self) -> None:
        """Ask the run to stop at the next minibatch boundary."""
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()
