"""Correlated Gaussians of known MI: the test bed for the estimators (Poole et al., 2019).

x ~ N(0, I_d), y = rho * x + sqrt(1 - rho^2) * eps, eps ~ N(0, I_d): d independent pairs of
correlation rho, and

    I(X; Y) = -(d/2) log(1 - rho^2)

The optimal critic is the log density ratio T*(x, y) = log p(x,y) / (p(x)p(y)):

    T*(x, y) = -(d/2) log(1 - rho^2) - (rho^2 |x|^2 - 2 rho <x, y> + rho^2 |y|^2) / (2 (1 - rho^2))
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ssrl.mi.estimators import ESTIMATORS


def true_mi(d: int, rho: float) -> float:
    """I = -(d/2) log(1 - rho^2), in nats."""
    return -0.5 * d * math.log(1 - rho**2)


def rho_for(mi: float, d: int) -> float:
    """The correlation that gives ``mi`` nats over d dimensions: rho = sqrt(1 - exp(-2 I / d))."""
    return math.sqrt(1 - math.exp(-2 * mi / d))


def sample(n: int, d: int, rho: float, g: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    x = torch.randn(n, d, generator=g)
    return x, rho * x + math.sqrt(1 - rho**2) * torch.randn(n, d, generator=g)


def optimal_scores(x: Tensor, y: Tensor, rho: float) -> Tensor:
    """S_ij = T*(x_i, y_j), the optimal critic on every pair of the batch."""
    d, r2 = x.shape[1], rho**2
    quadratic = r2 * (x**2).sum(1, keepdim=True) - 2 * rho * x @ y.T + r2 * (y**2).sum(1)
    return -0.5 * d * math.log(1 - r2) - quadratic / (2 * (1 - r2))


class SeparableCritic(nn.Module):
    """T(x, y) = <g(x), h(y)>, g and h two-layer MLPs: every pair of a batch in one matrix product."""

    def __init__(self, d: int, hidden: int = 256, out: int = 32) -> None:
        super().__init__()
        self.g = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, out))
        self.h = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        return self.g(x) @ self.h(y).T


def in_nats(estimator: str, scores: Tensor) -> Tensor:
    """The estimate of ``estimator`` in nats: its own J - M, except jsd, whose value is not in nats and
    which is reported as the DV value of the same scores (its optimal critic is the log density ratio)."""
    return ESTIMATORS["cos_dv" if estimator == "jsd" else estimator](scores).estimate


def train_critic(
    estimator: str, d: int, rho: float, n: int, steps: int, lr: float = 5e-4, seed: int = 0
) -> SeparableCritic:
    """A separable critic trained by Adam to maximise ``estimator``'s bound on fresh batches of n pairs."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    critic = SeparableCritic(d)
    optimizer = torch.optim.Adam(critic.parameters(), lr=lr)
    bound = ESTIMATORS[estimator]
    for _ in range(steps):
        x, y = sample(n, d, rho, g)
        loss = -bound(critic(x, y)).estimate
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return critic
