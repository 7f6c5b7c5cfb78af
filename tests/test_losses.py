"""Gold-value tests of the clustering math."""

import numpy as np
import pytest
import torch
from scipy import stats

from scdeep_core import losses


def test_soft_assignment_matches_hand_computation():
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    mu = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    q = losses.soft_assignment(z, mu, alpha=1.0).numpy()
    # cell 0: d^2 = 0 and 4 -> kernels 1 and 1/5 -> q = 5/6, 1/6
    # cell 1: d^2 = 2 and 2 -> equal -> 1/2, 1/2
    np.testing.assert_allclose(q, [[5 / 6, 1 / 6], [0.5, 0.5]], rtol=1e-6)
    # alpha = 3: kernel (1 + d^2/3)^-2 -> cell 0: 1 and (7/3)^-2 = 9/49
    q3 = losses.soft_assignment(z, mu, alpha=3.0).numpy()
    np.testing.assert_allclose(q3[0], [1 / (1 + 9 / 49), (9 / 49) / (1 + 9 / 49)], rtol=1e-6)


def test_target_distribution_matches_hand_computation():
    q = torch.tensor([[0.8, 0.2], [0.4, 0.6]])
    p = losses.target_distribution(q).numpy()
    f = np.array([1.2, 0.8])
    w = np.array([[0.64, 0.04], [0.16, 0.36]]) / f
    np.testing.assert_allclose(p, w / w.sum(1, keepdims=True), rtol=1e-6)
    assert p[0, 0] > q[0, 0]  # sharper
    plain = losses.target_distribution(q, normalise_frequency=False).numpy()
    np.testing.assert_allclose(plain[0], [0.64 / 0.68, 0.04 / 0.68], rtol=1e-6)


def test_kl_equals_definition_and_is_zero_for_equal_inputs():
    p = torch.tensor([[0.7, 0.3], [0.1, 0.9]])
    q = torch.tensor([[0.5, 0.5], [0.2, 0.8]])
    expected = np.mean(
        [(0.7 * np.log(0.7 / 0.5) + 0.3 * np.log(0.3 / 0.5)), (0.1 * np.log(0.1 / 0.2) + 0.9 * np.log(0.9 / 0.8))]
    )
    assert float(losses.kl_clustering(p, q)) == pytest.approx(expected, rel=1e-6)
    assert float(losses.kl_clustering(q, q)) == pytest.approx(0.0, abs=1e-7)


def _random_heads(n=40, g=30, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.negative_binomial(2, 0.3, size=(n, g)).astype(np.float64)
    x[rng.random((n, g)) < 0.3] = 0
    raw = torch.tensor(rng.normal(0, 1.5, size=(n, 3 * g)), dtype=torch.float64)
    sf = torch.tensor(rng.lognormal(0, 0.3, size=n), dtype=torch.float64)
    return torch.tensor(x), raw, sf


def test_zinb_nll_matches_scipy():
    x, raw, sf = _random_heads()
    log_mean, theta, pi_logit = losses.zinb_heads(raw)
    ours = float(losses.zinb_nll(x, log_mean, theta, pi_logit, sf))
    mu = (torch.exp(log_mean) * sf[:, None]).numpy()
    th, pi, xn = theta.numpy(), torch.sigmoid(pi_logit).numpy(), x.numpy()
    nb = stats.nbinom.pmf(xn, th, th / (th + mu))
    lik = np.where(xn == 0, pi + (1 - pi) * nb, (1 - pi) * nb)
    assert ours == pytest.approx(-np.log(lik).mean(), rel=1e-6)


def _nonzeros(x):
    flat = x.reshape(-1)
    idx = torch.nonzero(flat).squeeze(1)
    return idx, flat[idx], torch.lgamma(flat[idx] + 1)


@pytest.mark.parametrize("ridge", [0.0, 0.5])
def test_fused_zinb_equals_dense_in_value_and_gradient(ridge):
    x, raw, sf = _random_heads(seed=3)
    raw.requires_grad_(True)
    dense = losses.zinb_nll(x, *losses.zinb_heads(raw), sf, ridge=ridge)
    (g_dense,) = torch.autograd.grad(dense, raw)
    fused = losses.zinb_nll_fused(raw, sf, *_nonzeros(x), ridge=ridge)
    (g_fused,) = torch.autograd.grad(fused, raw)
    assert float(fused) == pytest.approx(float(dense), rel=1e-10)
    torch.testing.assert_close(g_fused, g_dense, rtol=1e-7, atol=1e-12)


def test_fused_zinb_gradient_through_clamps():
    # Entries beyond the clamps of the mean and dispersion heads get zero gradient there.
    x, raw, sf = _random_heads(n=5, g=4, seed=5)
    raw = raw.clone()
    raw[:, 0] = 30.0  # exp(30) > 1e6: mean clamped
    raw[:, 4] = -20.0  # softplus(-20) < 1e-4: dispersion clamped
    raw.requires_grad_(True)
    (g_dense,) = torch.autograd.grad(losses.zinb_nll(x, *losses.zinb_heads(raw), sf), raw)
    (g_fused,) = torch.autograd.grad(losses.zinb_nll_fused(raw, sf, *_nonzeros(x)), raw)
    torch.testing.assert_close(g_fused, g_dense, rtol=1e-7, atol=1e-12)
    assert torch.all(g_fused[:, 0] == 0) and torch.all(g_fused[:, 4] == 0)


def test_pairwise_losses():
    same = torch.tensor([[0.9, 0.1]])
    other = torch.tensor([[0.1, 0.9]])
    assert float(losses.must_link_loss(same, same)) < float(losses.must_link_loss(same, other))
    assert float(losses.cannot_link_loss(same, other)) < float(losses.cannot_link_loss(same, same))
    assert float(losses.must_link_loss(same, same)) == pytest.approx(-np.log(0.82), rel=1e-6)
    assert float(losses.cannot_link_loss(same, other)) == pytest.approx(-np.log(1 - 0.18), rel=1e-6)
