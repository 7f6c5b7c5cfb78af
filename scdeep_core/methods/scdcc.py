"""scDCC: ZINB autoencoder with input noise, then gamma * KL + ZINB, plus pairwise constraints."""

from __future__ import annotations

import numpy as np
import torch

from ..config import SCDCCConfig
from ..constraints import PairConstraints
from ..device import to_device
from ..losses import cannot_link_loss, kl_clustering, must_link_loss, zinb_nll_fused
from ..nets import ClusteringAutoencoder
from ..pp import PreparedData
from ..train import Batch, MethodHooks, iterate_batches


class SCDCCHooks(MethodHooks):
    """Losses and optimiser choices of scDCC (Tian et al., Nat Commun 2021).

    Without constraints this is scDeepCluster (Tian et al., Nat Mach Intell 2019).
    """

    name = "scdcc"
    uses_counts = True

    def __init__(
        self,
        cfg: SCDCCConfig,
        data: PreparedData,
        pairs: PairConstraints | None = None,
        device: torch.device | None = None,
    ) -> None:
        self.cfg = cfg
        self.data = data
        self.pairs = pairs
        self.device = device or torch.device("cpu")
        # A private generator (on the training device) keeps the input noise reproducible even when
        # other runs share the process.
        self.noise_gen = torch.Generator(device=self.device).manual_seed(cfg.seed)

    def reseed(self, seed: int) -> None:
        # The clustering stage draws the same noise however long pretraining ran or how often we re-cluster.
        self.noise_gen.manual_seed(seed)

    def build_model(self, n_genes: int) -> ClusteringAutoencoder:
        return ClusteringAutoencoder(
            n_genes,
            self.cfg.hidden_dims,
            self.cfg.latent_dim,
            output="zinb",
            latent_activation="linear",
            n_batches=self.data.n_batches,  # batch-conditional with a batch column (scDeepCluster's batch variant)
        )

    def _noisy(self, x: torch.Tensor) -> torch.Tensor:
        if self.cfg.noise_sigma <= 0:
            return x
        return x + self.cfg.noise_sigma * torch.randn(x.shape, generator=self.noise_gen, device=x.device)

    def _zinb(self, model: ClusteringAutoencoder, batch: Batch, z: torch.Tensor) -> torch.Tensor:
        return zinb_nll_fused(
            model.decode(z, batch.b),
            batch.size_factors,
            batch.nz_flat_index,
            batch.nz_counts,
            batch.nz_lgamma,
            self.cfg.ridge,
        )

    def pretrain_losses(self, model: ClusteringAutoencoder, batch: Batch) -> dict[str, torch.Tensor]:
        loss = self._zinb(model, batch, model.encode(self._noisy(batch.x), batch.b))
        return {"total": loss, "zinb": loss.detach()}

    def cluster_optimizer(self, model: ClusteringAutoencoder) -> torch.optim.Optimizer:
        return torch.optim.Adam(model.parameters(), lr=self.cfg.cluster_lr)

    def cluster_losses(self, model: ClusteringAutoencoder, batch: Batch, p: torch.Tensor) -> dict[str, torch.Tensor]:
        # Reconstruction from the noisy input; soft assignment from the clean one.
        zinb = self._zinb(model, batch, model.encode(self._noisy(batch.x), batch.b))
        q = model.soft_assign(model.encode(batch.x, batch.b), self.cfg.alpha)
        kl = kl_clustering(p, q)
        total = self.cfg.gamma * kl + zinb
        return {"total": total, "kl": kl.detach(), "zinb": zinb.detach()}

    def extra_cluster_steps(
        self, model: ClusteringAutoencoder, optimizer: torch.optim.Optimizer, rng: np.random.Generator
    ) -> dict[str, float]:
        """One pass over the must-link, then the cannot-link pairs (as in the reference)."""
        if self.pairs is None or self.pairs.n_pairs == 0:
            return {}
        out: dict[str, float] = {}
        for kind, pairs, weight, loss_fn in (
            ("ml", self.pairs.must_link, self.cfg.constraints.ml_weight, must_link_loss),
            ("cl", self.pairs.cannot_link, self.cfg.constraints.cl_weight, cannot_link_loss),
        ):
            if len(pairs) == 0 or weight == 0:
                continue
            total, n = 0.0, 0
            for idx in iterate_batches(len(pairs), self.cfg.batch_size, rng):
                a, b = pairs[idx, 0], pairs[idx, 1]
                cells = np.concatenate([a, b])
                x = to_device(self.data.scaled_input(cells), self.device)
                onehot = self.data.batch_onehot(cells)
                batch = to_device(onehot, self.device) if onehot is not None else None
                q = model.soft_assign(model.encode(x, batch), self.cfg.alpha)
                loss = loss_fn(q[: len(a)], q[len(a) :])
                optimizer.zero_grad(set_to_none=True)
                (weight * loss).backward()
                optimizer.step()
                total += float(loss.detach()) * len(idx)
                n += len(idx)
            out[kind] = total / max(n, 1)
        return out
