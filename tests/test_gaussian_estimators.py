"""The estimators on correlated Gaussians of known MI: with the optimal critic, and with trained critics."""

from __future__ import annotations

import math

import pytest
import torch

from ssrl.mi import gaussian
from ssrl.mi.estimators import dv, infonce, nwj

D = 20


def test_closed_form_mi_and_its_inverse():
    assert gaussian.true_mi(1, 0.5) == pytest.approx(-0.5 * math.log(0.75))
    assert gaussian.true_mi(D, gaussian.rho_for(6.0, D)) == pytest.approx(6.0)


def test_optimal_critic_is_the_log_density_ratio():
    x, y = gaussian.sample(5, 1, 0.6)
    rho = 0.6
    joint = -math.log(2 * math.pi) - 0.5 * math.log(1 - rho**2) - (x**2 - 2 * rho * x * y + y**2) / (2 * (1 - rho**2))
    marginals = -math.log(2 * math.pi) - (x**2 + y**2) / 2
    torch.testing.assert_close(gaussian.optimal_scores(x, y, rho).diagonal(), (joint - marginals).squeeze(1))


@pytest.mark.parametrize("mi", [2.0, 4.0])
def test_dv_and_nwj_with_the_optimal_critic_recover_the_truth(mi):
    g = torch.Generator().manual_seed(0)
    rho = gaussian.rho_for(mi, D)
    draws = {"dv": [], "nwj": []}
    for _ in range(10):
        scores = gaussian.optimal_scores(*gaussian.sample(512, D, rho, g), rho)
        draws["dv"].append(dv(scores).estimate.item())
        draws["nwj"].append(nwj(scores + 1).estimate.item())
    for name, values in draws.items():
        values = torch.tensor(values)
        standard_error = values.std().item() / math.sqrt(len(values))
        assert abs(values.mean().item() - mi) < 3 * standard_error + 0.05, (name, values)


@pytest.mark.parametrize("n", [64, 512])
def test_infonce_never_exceeds_log_n(n):
    g = torch.Generator().manual_seed(0)
    for mi in (2.0, 6.0, 10.0):
        rho = gaussian.rho_for(mi, D)
        for _ in range(5):
            estimate = infonce(gaussian.optimal_scores(*gaussian.sample(n, D, rho, g), rho)).estimate.item()
            assert estimate <= math.log(n) + 1e-5
            assert estimate <= mi + 0.5  # a lower bound, up to sampling error


@pytest.mark.parametrize("estimator", ["cos_dv", "infonce", "jsd", "nwj"])
def test_trained_critics_approach_the_truth(estimator):
    rho = gaussian.rho_for(2.0, D)
    critic = gaussian.train_critic(estimator, D, rho, n=128, steps=400)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        estimates = [gaussian.in_nats(estimator, critic(*gaussian.sample(512, D, rho, g))).item() for _ in range(5)]
    mean = sum(estimates) / len(estimates)
    assert 1.5 < mean < 2.3, estimates  # true MI 2 nats; an untrained critic gives about 0
