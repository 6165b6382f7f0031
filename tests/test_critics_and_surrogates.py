"""Critics and the statistical surrogates, against formulas written out independently here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssrl.mi.critics import Critic
from ssrl.mi.surrogates import barlow, vicreg


def test_cosine_critic_is_cosine_over_tau():
    a, b = torch.randn(5, 7), torch.randn(5, 7)
    scores = Critic("cosine", 7, tau=0.5)(a, b)
    expected = torch.tensor([[F.cosine_similarity(a[i], b[j], dim=0) / 0.5 for j in range(5)] for i in range(5)])
    torch.testing.assert_close(scores, expected)


def test_bilinear_critic_starts_as_the_dot_critic():
    a, b = torch.randn(4, 3), torch.randn(4, 3)
    torch.testing.assert_close(Critic("bilinear", 3, 0.2)(a, b), Critic("dot", 3, 0.2)(a, b))


def test_unknown_critic_names_the_allowed_ones():
    with pytest.raises(ValueError, match="cosine, dot, bilinear"):
        Critic("l1", 3, 1.0)


def barlow_twins_loss(z1, z2, lambd):
    """Zbontar et al. (2021), Algorithm 1: BatchNorm without affine, cross-correlation, ||I - C||."""
    n, d = z1.shape
    bn = torch.nn.BatchNorm1d(d, affine=False, eps=1e-5)
    c = bn(z1).T @ bn(z2) / n
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = (c - torch.diag(torch.diagonal(c))).pow(2).sum()
    return on_diag + lambd * off_diag


def vicreg_loss(x, y, sim=25.0, std_coeff=25.0, cov_coeff=1.0):
    """Bardes et al. (2022), Algorithm 1."""
    n, d = x.shape
    repr_loss = F.mse_loss(x, y)
    x, y = x - x.mean(dim=0), y - y.mean(dim=0)
    std_x, std_y = torch.sqrt(x.var(dim=0) + 1e-4), torch.sqrt(y.var(dim=0) + 1e-4)
    std_loss = torch.mean(F.relu(1 - std_x)) + torch.mean(F.relu(1 - std_y))
    cov_x, cov_y = (x.T @ x) / (n - 1), (y.T @ y) / (n - 1)
    off = ~torch.eye(d, dtype=torch.bool)
    cov_loss = cov_x[off].pow(2).sum() / d + cov_y[off].pow(2).sum() / d
    return sim * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


def test_barlow_surrogate_is_the_barlow_twins_loss():
    z1, z2 = torch.randn(32, 16), torch.randn(32, 16)
    assert (-barlow(z1, z2).objective(0.005)).item() == pytest.approx(barlow_twins_loss(z1, z2, 0.005).item(), rel=1e-5)


def test_vicreg_surrogate_is_the_vicreg_loss():
    x, y = torch.randn(32, 16), torch.randn(32, 16) * 0.3
    assert (-vicreg(x, y).objective(1.0)).item() == pytest.approx(vicreg_loss(x, y).item(), rel=1e-5)
