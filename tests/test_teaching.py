"""The Learn page's toy math: q, p, the analytic gradient against autograd, loss falling."""

from itertools import pairwise

import numpy as np
import pytest
import torch

from scdeep_core import losses, teaching


@pytest.fixture()
def toy():
    z, labels = teaching.toy_data(separation=3.0, seed=1)
    mu = np.array([[2.0, 1.0], [-1.5, 2.0], [-1.0, -2.5]])
    return z, mu


def test_q_rows_sum_to_one_and_p_is_sharper(toy):
    z, mu = toy
    for alpha in (0.5, 1.0, 5.0):
        q = teaching.q_of(z, mu, alpha)
        np.testing.assert_allclose(q.sum(1), 1, rtol=1e-10)
        p = teaching.p_of(q)
        np.testing.assert_allclose(p.sum(1), 1, rtol=1e-10)
        # sharper: higher max and lower entropy on average
        assert p.max(1).mean() > q.max(1).mean()
        ent = lambda a: -(a * np.log(a)).sum(1).mean()  # noqa: E731
        assert ent(p) < ent(q)


def test_frequency_normalisation_protects_small_clusters(toy):
    z, mu = toy
    q = teaching.q_of(z, mu, 1.0)
    small = 2  # the 40-point blob
    assert teaching.p_of(q, True)[:, small].sum() > teaching.p_of(q, False)[:, small].sum()


@pytest.mark.parametrize("alpha", [0.7, 1.0, 3.0])
def test_analytic_gradient_equals_autograd(toy, alpha):
    z, mu = toy
    p = teaching.p_of(teaching.q_of(z, mu, alpha))
    zt = torch.tensor(z, requires_grad=True)
    mt = torch.tensor(mu, requires_grad=True)
    loss = losses.kl_clustering(torch.tensor(p), losses.soft_assignment(zt, mt, alpha))
    gz_auto, gm_auto = torch.autograd.grad(loss, [zt, mt])
    gz, gm = teaching.kl_gradients(z, mu, p, alpha)
    np.testing.assert_allclose(gz, gz_auto.numpy(), rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(gm, gm_auto.numpy(), rtol=1e-6, atol=1e-12)


def test_loss_falls_over_steps(toy):
    z, mu = toy
    history = []
    for _ in range(20):
        z, mu, loss = teaching.kl_step(z, mu, alpha=1.0, lr=5.0)
        history.append(loss)
    assert history[-1] < history[0]
    assert sum(b < a for a, b in pairwise(history)) >= 15


def test_count_distributions():
    x = np.arange(0, 200)
    pmf = teaching.zinb_pmf(x, mean=5.0, theta=2.0, pi=0.3)
    assert pmf.sum() == pytest.approx(1.0, abs=1e-6) and pmf[0] > 0.3
    rng = np.random.default_rng(0)
    counts = rng.negative_binomial(2.0, 2.0 / 7.0, size=2000)
    counts[rng.random(2000) < 0.3] = 0
    # the true ZINB explains overdispersed, zero-inflated counts better than a Poisson or a Gaussian
    assert teaching.zinb_nll_counts(counts, 5.0, 2.0, 0.3) < teaching.poisson_nll_counts(counts)
    assert teaching.zinb_nll_counts(counts, 5.0, 2.0, 0.3) < teaching.gaussian_nll_counts(counts)[0]
