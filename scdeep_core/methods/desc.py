"""DESC: MSE autoencoder (tanh bottleneck, dropout), then KL(P||Q) on the encoder alone."""

from __future__ import annotations

import torch

from ..config import DESCConfig
from ..constraints import PairConstraints
from ..losses import kl_clustering, mse
from ..nets import ClusteringAutoencoder
from ..pp import PreparedData
from ..train import Batch, MethodHooks


class DESCHooks(MethodHooks):
    """Losses and optimiser choices of DESC (Li et al., Nat Commun 2020)."""

    name = "desc"
    uses_counts = False

    def __init__(
        self,
        cfg: DESCConfig,
        data: PreparedData | None = None,
        pairs: PairConstraints | None = None,
        device: torch.device | None = None,
    ) -> None:
        # The same signature as every method's hooks (see ``hooks_for``); DESC needs only its config.
        self.cfg = cfg

    def build_model(self, n_genes: int) -> ClusteringAutoencoder:
        return ClusteringAutoencoder(
            n_genes,
            self.cfg.hidden_dims,
            self.cfg.latent_dim,
            output="mse",
            latent_activation="tanh",
            dropout=self.cfg.dropout,
        )

    def pretrain_losses(self, model: ClusteringAutoencoder, batch: Batch) -> dict[str, torch.Tensor]:
        loss = mse(batch.x, model.decode(model.encode(batch.x)))
        return {"total": loss, "mse": loss.detach()}

    def cluster_optimizer(self, model: ClusteringAutoencoder) -> torch.optim.Optimizer:
        # The decoder is dropped: only the encoder and the centroids move.
        return torch.optim.SGD([*model.encoder_parameters(), model.centroids], lr=self.cfg.cluster_lr, momentum=0.9)

    def cluster_losses(self, model: ClusteringAutoencoder, batch: Batch, p: torch.Tensor) -> dict[str, torch.Tensor]:
        q = model.soft_assign(model.encode(batch.x), self.cfg.alpha)
        kl = kl_clustering(p, q)
        return {"total": kl, "kl": kl.detach()}
