"""Critics and the statistical surrogates, against formulas written out independently here."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ssrl.mi.critics import Critic
from ssrl.mi.surrogates import barlow, vicreg
from tests import published_losses


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


def test_barlow_surrogate_is_the_barlow_twins_loss():
    z1, z2 = torch.randn(32, 16), torch.randn(32, 16)
    assert (-barlow(z1, z2).objective(0.005)).item() == pytest.approx(
        published_losses.barlow_twins(z1, z2, 0.005).item(), rel=1e-5
    )


def test_vicreg_surrogate_is_the_vicreg_loss():
    x, y = torch.randn(32, 16), torch.randn(32, 16) * 0.3
    assert (-vicreg(x, y).objective(1.0)).item() == pytest.approx(published_losses.vicreg(x, y).item(), rel=1e-5)
