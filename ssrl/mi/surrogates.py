"""Statistical surrogates that JMI can train on in place of the bound's two terms.

Each works on the embeddings (a, b) of the two views directly, not on a score matrix, and returns the
same ``Terms`` as an estimator: a joint term measured on the positive pairs (how well the views of one
image agree) and a marginal surrogate measured on batch statistics (what keeps the embeddings spread,
the job the marginal term does in the bound). The training objective is again J - lambda*M, so with
lambda = ``marginal.weight`` these are the published losses of Barlow Twins and VICReg exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ssrl.mi.estimators import Terms


def _off_diagonal(matrix: Tensor) -> Tensor:
    n = matrix.shape[0]
    return matrix[~torch.eye(n, dtype=torch.bool, device=matrix.device)]


def barlow(a: Tensor, b: Tensor, eps: float = 1e-5) -> Terms:
    """Barlow Twins (Zbontar et al., 2021).

    z = (x - mean) / std per dimension over the batch (biased std), C = z_a^T z_b / N (D x D)
    J = -sum_k (1 - C_kk)^2          (invariance: paired views agree dimension by dimension)
    M = sum_{k != l} C_kl^2          (redundancy reduction: the marginal surrogate)
    Barlow's loss sum_k (1 - C_kk)^2 + lambda * sum_{k != l} C_kl^2 is -(J - lambda*M).
    """
    a, b = a.float(), b.float()
    za = (a - a.mean(0)) / torch.sqrt(a.var(0, unbiased=False) + eps)
    zb = (b - b.mean(0)) / torch.sqrt(b.var(0, unbiased=False) + eps)
    c = za.T @ zb / a.shape[0]
    return Terms(-(1 - c.diagonal()).pow(2).sum(), _off_diagonal(c).pow(2).sum())


def _variance(z: Tensor, gamma: float, eps: float) -> Tensor:
    """v(z) = mean_k relu(gamma - sqrt(Var(z_k) + eps)), unbiased variance."""
    return F.relu(gamma - torch.sqrt(z.var(0) + eps)).mean()


def _covariance(z: Tensor) -> Tensor:
    """c(z) = sum_{k != l} Cov(z)_kl^2 / D, unbiased covariance."""
    centred = z - z.mean(0)
    cov = centred.T @ centred / (z.shape[0] - 1)
    return _off_diagonal(cov).pow(2).sum() / z.shape[1]


def vicreg(
    a: Tensor,
    b: Tensor,
    invariance: float = 25.0,
    variance: float = 25.0,
    covariance: float = 1.0,
    gamma: float = 1.0,
    eps: float = 1e-4,
) -> Terms:
    """VICReg (Bardes et al., 2022).

    J = -invariance * mean_i ||a_i - b_i||^2 / D                 (the MSE between paired views)
    M = variance * (v(a) + v(b)) / 2 + covariance * (c(a) + c(b))
    with v and c as in ``_variance`` and ``_covariance``. With lambda = 1, -(J - M) is VICReg's loss as
    the authors' released code computes it (main_vicreg.py: the two variance terms averaged, the two
    covariance terms summed; the paper's Algorithm 1 sums the variance terms too).
    """
    a, b = a.float(), b.float()
    joint = -invariance * F.mse_loss(a, b)
    marginal = variance * (_variance(a, gamma, eps) + _variance(b, gamma, eps)) / 2
    marginal = marginal + covariance * (_covariance(a) + _covariance(b))
    return Terms(joint, marginal)
