"""Small pure functions behind the Learn page: a 2-D toy for the DEC clustering loss,
its analytic gradient, gradient steps, and count distributions for MSE vs ZINB.

Everything is NumPy on a few hundred points, so the page answers instantly. The soft
assignment and target reuse :mod:`scdeep_core.losses` so the toy shows the real formulas.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import stats
from scipy.special import gammaln

from .losses import soft_assignment, target_distribution


def toy_data(
    separation: float = 3.0, sizes: tuple[int, ...] = (150, 100, 40), seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """2-D points in Gaussian blobs of the given sizes, centres spread by ``separation``."""
    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, len(sizes), endpoint=False) + 0.3
    centres = separation * np.column_stack([np.cos(angles), np.sin(angles)])
    z = np.vstack([rng.normal(c, 1.0, size=(n, 2)) for c, n in zip(centres, sizes, strict=True)])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return z.astype(np.float64), labels


def q_of(z: np.ndarray, mu: np.ndarray, alpha: float) -> np.ndarray:
    """Student's t soft assignment (rows sum to 1)."""
    return soft_assignment(torch.from_numpy(z), torch.from_numpy(mu), alpha).numpy()


def p_of(q: np.ndarray, normalise_frequency: bool = True) -> np.ndarray:
    """Target distribution: q squared, divided by cluster frequency (optional), renormalised."""
    return target_distribution(torch.from_numpy(q), normalise_frequency).numpy()


def kl_per_point(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Each point's contribution ``sum_j p_ij log(p_ij / q_ij)``; the loss is their mean."""
    return (p * (np.log(np.clip(p, 1e-12, None)) - np.log(np.clip(q, 1e-12, None)))).sum(axis=1)


def kl_gradients(z: np.ndarray, mu: np.ndarray, p: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Analytic gradient of ``mean_i KL(p_i || q_i)`` with P fixed (Xie et al. 2016, eq. 4-5).

    ``dL/dz_i = (a+1)/a / n * sum_j w_ij (p_ij - q_ij)(z_i - mu_j)`` and
    ``dL/dmu_j = -(a+1)/a / n * sum_i w_ij (p_ij - q_ij)(z_i - mu_j)`` with
    ``w_ij = (1 + |z_i - mu_j|^2 / a)^-1``.

    Returns
    -------
    (grad_z, grad_mu)
        Arrays shaped like ``z`` and ``mu``.
    """
    q = q_of(z, mu, alpha)
    diff = z[:, None, :] - mu[None, :, :]  # n x k x d
    w = 1.0 / (1.0 + (diff**2).sum(-1) / alpha)
    coef = ((alpha + 1.0) / alpha) * w * (p - q) / len(z)  # n x k
    grad_z = (coef[:, :, None] * diff).sum(axis=1)
    grad_mu = -(coef[:, :, None] * diff).sum(axis=0)
    return grad_z, grad_mu


def kl_step(
    z: np.ndarray, mu: np.ndarray, alpha: float, lr: float, normalise_frequency: bool = True
) -> tuple[np.ndarray, np.ndarray, float]:
    """One DEC step: target P from the current q, then gradient descent on points and centroids.

    Returns the new points, new centroids and the loss before the step.
    """
    q = q_of(z, mu, alpha)
    p = p_of(q, normalise_frequency)
    loss = float(kl_per_point(p, q).mean())
    gz, gm = kl_gradients(z, mu, p, alpha)
    return z - lr * gz, mu - lr * gm, loss


def zinb_pmf(x: np.ndarray, mean: float, theta: float, pi: float) -> np.ndarray:
    """ZINB probability of counts ``x``: ``pi * [x = 0] + (1 - pi) * NB(x; mean, theta)``."""
    nb = stats.nbinom.pmf(x, theta, theta / (theta + mean))
    return np.where(x == 0, pi + (1 - pi) * nb, (1 - pi) * nb)


def zinb_nll_counts(counts: np.ndarray, mean: float, theta: float, pi: float) -> float:
    """Mean negative log-likelihood of ``counts`` under a ZINB."""
    return float(-np.log(np.clip(zinb_pmf(counts, mean, theta, pi), 1e-300, None)).mean())


def gaussian_nll_counts(counts: np.ndarray) -> tuple[float, float, float]:
    """The Gaussian that MSE implies (mean and variance of the data): its mean NLL, mean and sd.

    Evaluated as a density at the integer counts (the usual continuous approximation).
    """
    m, sd = float(counts.mean()), float(max(counts.std(), 1e-3))
    nll = float(-stats.norm.logpdf(counts, m, sd).mean())
    return nll, m, sd


def poisson_nll_counts(counts: np.ndarray) -> float:
    """Mean NLL under a Poisson with the data's mean (no overdispersion, no dropout)."""
    lam = max(float(counts.mean()), 1e-6)
    return float(-(counts * np.log(lam) - lam - gammaln(counts + 1)).mean())


def excess_zero_share(zero_share: float, mean: float, theta: float) -> float:
    """Dropout ``pi`` that makes a ZINB's share of zeros match ``zero_share``: the zeros a negative
    binomial with this ``mean`` and ``theta`` cannot explain (0 when it already explains them)."""
    nb_zero = (theta / (theta + mean)) ** theta
    return float(np.clip((zero_share - nb_zero) / max(1.0 - nb_zero, 1e-12), 0.0, 0.95))
