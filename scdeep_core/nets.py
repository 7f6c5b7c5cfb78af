"""Dense autoencoders for DESC (MSE) and scDCC (ZINB heads). Pure torch, no AnnData."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import torch
from torch import nn

from .losses import soft_assignment


def _mlp(dims: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    """ReLU layers ``dims[0] -> dims[1] -> ...`` (every layer followed by ReLU)."""
    layers: list[nn.Module] = []
    for d_in, d_out in pairwise(dims):
        layers.append(nn.Linear(d_in, d_out))
        layers.append(nn.ReLU())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class ClusteringAutoencoder(nn.Module):
    """Encoder -> latent z -> decoder, plus trainable cluster centroids.

    Parameters
    ----------
    n_input
        Number of genes.
    hidden_dims
        Encoder hidden widths; the decoder mirrors them.
    latent_dim
        Size of the embedding z.
    output
        ``"mse"``: one linear output of width ``n_input`` (DESC);
        ``"zinb"``: three heads (mean, dispersion, dropout) of width ``n_input`` each (scDCC).
    latent_activation
        ``"tanh"`` (DESC) or ``"linear"`` (scDCC).
    dropout
        Dropout after hidden layers (DESC uses 0.2 in pretraining).
    n_batches
        With 1 or more, the network is batch-conditional, as scDeepCluster's batch variant: the
        cell's one-hot batch is appended to the encoder's input and to the decoder's input z, so
        the embedding need not carry the batch and the decoder restores it.
    """

    def __init__(
        self,
        n_input: int,
        hidden_dims: Sequence[int],
        latent_dim: int,
        output: str = "mse",
        latent_activation: str = "linear",
        dropout: float = 0.0,
        n_batches: int = 0,
    ) -> None:
        super().__init__()
        hidden_dims = list(hidden_dims)
        self.n_batches = n_batches
        self.encoder_hidden = _mlp([n_input + n_batches, *hidden_dims], dropout)
        last = hidden_dims[-1] if hidden_dims else n_input + n_batches
        self.to_latent = nn.Linear(last, latent_dim)
        self.latent_activation = nn.Tanh() if latent_activation == "tanh" else nn.Identity()
        decoder_dims = [latent_dim + n_batches, *reversed(hidden_dims)]
        self.decoder_hidden = _mlp(decoder_dims, dropout)
        n_out = 3 * n_input if output == "zinb" else n_input
        # One matmul for the three ZINB heads; losses.zinb_heads splits them.
        self.output_layer = nn.Linear(decoder_dims[-1], n_out)
        self.output = output
        self.centroids = nn.Parameter(torch.zeros(0, latent_dim), requires_grad=False)

    def _with_batch(self, t: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        if not self.n_batches:
            return t  # not batch-conditional: a batch given anyway is ignored
        if b is None:
            raise ValueError("This network is batch-conditional: give each cell's one-hot batch.")
        return torch.cat([t, b], dim=1)

    def encode(self, x: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """Embedding z of input x (and one-hot batch b, for a batch-conditional network)."""
        return self.latent_activation(self.to_latent(self.encoder_hidden(self._with_batch(x, b))))

    def decode(self, z: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
        """Reconstruction (MSE) or raw concatenated ZINB head outputs."""
        return self.output_layer(self.decoder_hidden(self._with_batch(z, b)))

    def set_centroids(self, centroids: torch.Tensor) -> None:
        """Install initial cluster centres (moved to the model's device) and make them trainable."""
        self.centroids = nn.Parameter(centroids.detach().clone().float().to(self.to_latent.weight.device))

    def soft_assign(self, z: torch.Tensor, alpha: float) -> torch.Tensor:
        """Student's t soft assignment of embeddings to this model's centroids."""
        return soft_assignment(z, self.centroids, alpha)

    def encoder_parameters(self) -> list[nn.Parameter]:
        """Parameters of the encoder only (DESC's clustering stage drops the decoder)."""
        return [*self.encoder_hidden.parameters(), *self.to_latent.parameters()]
