"""The clustering math: soft assignment, target distribution, KL, ZINB, MSE, pairwise terms.

Every function is pure torch and works on a batch of cells. The formulas follow
``shared/notes/methods.md`` (DEC / DESC / scDeepCluster / scDCC).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "soft_assignment",
    "target_distribution",
    "kl_clustering",
    "mse",
    "zinb_nll",
    "zinb_heads",
    "zinb_nll_fused",
    "must_link_loss",
    "cannot_link_loss",
]

EPS = 1e-10


def soft_assignment(z: torch.Tensor, centroids: torch.Tensor, alpha: float = 1.0) -> torch.Tensor:
    """Student's t soft assignment of cells to centroids.

    Parameters
    ----------
    z
        Embeddings, shape ``(n_cells, latent_dim)``.
    centroids
        Cluster centres, shape ``(k, latent_dim)``.
    alpha
        Degrees of freedom of the Student's t kernel.

    Returns
    -------
    torch.Tensor
        ``q`` of shape ``(n_cells, k)``; each row sums to 1.
    """
    sq_dist = torch.cdist(z, centroids).pow(2) if z.shape[0] > 0 else z.new_zeros((0, centroids.shape[0]))
    # Unnormalised kernel in log space keeps large distances from underflowing to 0/0.
    log_kernel = -(alpha + 1.0) / 2.0 * torch.log1p(sq_dist / alpha)
    return torch.softmax(log_kernel, dim=1)


def target_distribution(
    q: torch.Tensor, normalise_frequency: bool = True, frequency: torch.Tensor | None = None
) -> torch.Tensor:
    """Sharpened target ``p_ij = (q_ij^2 / f_j) / sum_j' (q_ij'^2 / f_j')`` with ``f_j = sum_i q_ij``.

    Parameters
    ----------
    q
        Soft assignments, shape ``(n_cells, k)``.
    normalise_frequency
        Divide by the cluster frequency ``f_j`` (DEC's default). Without it large clusters
        swallow small ones; the switch exists for teaching.
    frequency
        ``f_j`` when ``q`` holds only some of the cells (one process's shard), shape ``(1, k)``;
        by default the column sums of ``q``.

    Returns
    -------
    torch.Tensor
        ``p`` of the same shape, rows summing to 1, with no gradient.
    """
    q = q.detach()
    weight = q.pow(2)
    if normalise_frequency:
        frequency = q.sum(dim=0, keepdim=True) if frequency is None else frequency
        weight = weight / frequency.clamp_min(EPS)
    return weight / weight.sum(dim=1, keepdim=True).clamp_min(EPS)


def kl_clustering(p: torch.Tensor, q: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``KL(P || Q) = sum_j p_ij log(p_ij / q_ij)``, averaged (or summed) over cells.

    ``p`` is treated as a constant (the target between updates).
    """
    per_cell = (p * (torch.log(p.clamp_min(EPS)) - torch.log(q.clamp_min(EPS)))).sum(dim=1)
    return per_cell.mean() if reduction == "mean" else per_cell if reduction == "none" else per_cell.sum()


def mse(x: torch.Tensor, x_hat: torch.Tensor) -> torch.Tensor:
    """Mean squared reconstruction error over all entries."""
    return F.mse_loss(x_hat, x)


def _zinb_parts(log_mean: torch.Tensor, theta: torch.Tensor, pi_logit: torch.Tensor, size_factors: torch.Tensor):
    """Shared pieces of the ZINB likelihood (every tensor has shape ``(cells, genes)``)."""
    log_mu = log_mean + torch.log(size_factors).unsqueeze(1)
    mu = torch.exp(log_mu)
    log_theta = torch.log(theta + EPS)
    log_theta_mu = torch.log(theta + mu + EPS)
    # log NB(0 | mu, theta) = theta * log(theta / (theta + mu))
    nb_zero = theta * (log_theta - log_theta_mu)
    log_pi = -F.softplus(-pi_logit)  # log(pi), pi = sigmoid(logit)
    log_one_minus_pi = -F.softplus(pi_logit)
    zero_ll = torch.logaddexp(log_pi, log_one_minus_pi + nb_zero)
    return log_mu, log_theta_mu, nb_zero, log_one_minus_pi, zero_ll


def zinb_nll(
    x: torch.Tensor,
    log_mean: torch.Tensor,
    theta: torch.Tensor,
    pi_logit: torch.Tensor,
    size_factors: torch.Tensor,
    ridge: float = 0.0,
) -> torch.Tensor:
    """Zero-inflated negative binomial negative log-likelihood, averaged over all entries.

    Dense reference form (also used by the gold-value tests).

    Parameters
    ----------
    x
        Raw counts, shape ``(cells, genes)``.
    log_mean
        Log of the normalised mean (the mean head before ``exp``), same shape.
    theta
        Dispersion (inverse overdispersion), positive, same shape.
    pi_logit
        Logit of the dropout probability ``pi``, same shape.
    size_factors
        Per-cell size factors, shape ``(cells,)``; ``mu = exp(log_mean) * size_factor``.
    ridge
        Optional penalty ``ridge * pi^2`` (scDCC's ``ridge_lambda``).
    """
    log_mu, log_theta_mu, nb_zero, log_one_minus_pi, zero_ll = _zinb_parts(log_mean, theta, pi_logit, size_factors)
    nb_ll = (
        nb_zero + x * (log_mu - log_theta_mu) + torch.lgamma(x + theta) - torch.lgamma(theta) - torch.lgamma(x + 1.0)
    )
    ll = torch.where(x > 0.5, log_one_minus_pi + nb_ll, zero_ll)
    nll = -ll
    if ridge > 0:
        nll = nll + ridge * torch.sigmoid(pi_logit).pow(2)
    return nll.mean()


LOG_MEAN_MIN, LOG_MEAN_MAX = math.log(1e-5), math.log(1e6)
THETA_MIN, THETA_MAX = 1e-4, 1e4


def zinb_heads(raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split the decoder's ``(cells, 3 * genes)`` output into the three ZINB heads.

    Returns ``log_mean = clamp(a, log 1e-5, log 1e6)``, ``theta = clamp(softplus(b), 1e-4, 1e4)``
    and ``pi_logit = c`` (``pi = sigmoid(c)``), i.e. scDCC's mean, dispersion and dropout heads.
    """
    a, b, c = raw.chunk(3, dim=1)
    return a.clamp(LOG_MEAN_MIN, LOG_MEAN_MAX), F.softplus(b).clamp(THETA_MIN, THETA_MAX), c


class _FusedZINB(torch.autograd.Function):
    """ZINB NLL of raw head outputs with a hand-written gradient.

    Autograd over the ~25 elementwise ops of the loss allocates and fills a full
    ``cells x genes`` tensor per op in both passes; profiling showed that to be most of
    an epoch. Here the forward pass computes the gradient alongside the loss with a
    third of the passes, and the lgamma/digamma terms run on non-zero counts only.
    """

    @staticmethod
    def forward(ctx, raw, log_size_factors, nz_flat_index, nz_counts, nz_lgamma_counts_plus_one, ridge):
        with torch.no_grad():
            a, b, c = raw.detach().chunk(3, dim=1)
            n_entries = a.numel()
            log_mean = a.clamp(LOG_MEAN_MIN, LOG_MEAN_MAX)
            mu = torch.exp(log_mean + log_size_factors.unsqueeze(1))
            theta_raw = F.softplus(b)
            theta = theta_raw.clamp(THETA_MIN, THETA_MAX)
            inv_tm = torch.reciprocal(theta + mu)
            log_ratio = torch.log(theta * inv_tm)  # log(theta / (theta + mu))
            r = torch.exp(theta * log_ratio)  # NB(0 | mu, theta)
            pi = torch.sigmoid(c)
            one_minus_pi = 1.0 - pi
            denom = pi + one_minus_pi * r + EPS
            zero_ll = torch.log(denom)
            w = one_minus_pi * r / denom  # d zero_ll / d log NB(0)
            mu_inv_tm = mu * inv_tm
            g_log_mean = -w * theta * mu_inv_tm
            g_theta = w * (log_ratio + mu_inv_tm)
            g_pi_logit = pi * one_minus_pi * (1.0 - r) / denom

            # Non-zero counts: replace the zero-branch values at those positions.
            i = nz_flat_index
            x = nz_counts
            theta_nz = theta.reshape(-1)[i]
            inv_tm_nz = inv_tm.reshape(-1)[i]
            log_ratio_nz = log_ratio.reshape(-1)[i]
            mu_nz = mu.reshape(-1)[i]
            c_nz = c.reshape(-1)[i]
            log_mu_nz = torch.log(mu_nz)
            nz_ll = (
                -F.softplus(c_nz)  # log(1 - pi)
                + theta_nz * log_ratio_nz
                + x * (log_mu_nz + torch.log(inv_tm_nz))
                + torch.lgamma(x + theta_nz)
                - torch.lgamma(theta_nz)
                - nz_lgamma_counts_plus_one
            )
            total_ll = zero_ll.sum() - zero_ll.reshape(-1)[i].sum() + nz_ll.sum()
            g_log_mean.reshape(-1)[i] = theta_nz * (x - mu_nz) * inv_tm_nz
            g_theta.reshape(-1)[i] = (
                log_ratio_nz + (mu_nz - x) * inv_tm_nz + torch.digamma(x + theta_nz) - torch.digamma(theta_nz)
            )
            g_pi_logit.reshape(-1)[i] = -pi.reshape(-1)[i]

            # Chain rule through the clamps and softplus.
            g_log_mean *= (a >= LOG_MEAN_MIN) & (a <= LOG_MEAN_MAX)
            g_theta *= torch.sigmoid(b) * ((theta_raw >= THETA_MIN) & (theta_raw <= THETA_MAX))
            nll = -total_ll / n_entries
            if ridge > 0:
                nll = nll + ridge * pi.pow(2).mean()
                g_pi_logit -= (2.0 * ridge) * pi.pow(2) * one_minus_pi
            grad = torch.cat([g_log_mean, g_theta, g_pi_logit], dim=1).mul_(-1.0 / n_entries)
        ctx.save_for_backward(grad)
        return nll

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output, None, None, None, None, None


def zinb_nll_fused(
    raw: torch.Tensor,
    size_factors: torch.Tensor,
    nz_flat_index: torch.Tensor,
    nz_counts: torch.Tensor,
    nz_lgamma_counts_plus_one: torch.Tensor,
    ridge: float = 0.0,
) -> torch.Tensor:
    """The loss of :func:`zinb_nll` taken from raw head outputs, fast.

    Equal in value and gradient to ``zinb_nll(x, *zinb_heads(raw), size_factors)``; the
    counts are given as their non-zero entries (scRNA-seq matrices are 80-95 % zeros).

    Parameters
    ----------
    raw
        Decoder output of shape ``(cells, 3 * genes)``: mean, dispersion, dropout heads.
    size_factors
        Per-cell size factors, shape ``(cells,)``.
    nz_flat_index
        Positions ``row * n_genes + col`` of the non-zero counts (int64).
    nz_counts
        The non-zero counts.
    nz_lgamma_counts_plus_one
        ``lgamma(nz_counts + 1)``, precomputed once per dataset.
    ridge
        Optional ``ridge * pi^2`` penalty.
    """
    return _FusedZINB.apply(raw, torch.log(size_factors), nz_flat_index, nz_counts, nz_lgamma_counts_plus_one, ridge)


def must_link_loss(q_a: torch.Tensor, q_b: torch.Tensor) -> torch.Tensor:
    """``-log(sum_j q_aj q_bj)`` averaged over must-link pairs."""
    return -torch.log((q_a * q_b).sum(dim=1).clamp_min(EPS)).mean()


def cannot_link_loss(q_a: torch.Tensor, q_b: torch.Tensor) -> torch.Tensor:
    """``-log(1 - sum_j q_aj q_bj)`` averaged over cannot-link pairs."""
    return -torch.log((1.0 - (q_a * q_b).sum(dim=1)).clamp_min(EPS)).mean()
