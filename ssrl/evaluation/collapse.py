"""How spread out embeddings are: the numbers that tell a healthy representation from a collapsed one."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

#: Uniformity reads this many embeddings (a fixed seeded subsample of more): its pairs, not all N^2.
UNIFORMITY_SAMPLE = 2048


def singular_values(z: Tensor) -> Tensor:
    """The singular values of the (N, D) matrix z, from the eigenvalues of its D x D Gram matrix z^T z
    (float64, on z's device): s_k = sqrt(max(lambda_k, 0)), the D - min(N, D) extra ones 0. Costs N D^2
    for the Gram matrix and D^3 for its spectrum, against N D min(N, D) for an SVD of z."""
    z = z.double()
    return torch.linalg.eigvalsh(z.T @ z).clamp_min(0).sqrt()


def effective_rank(z: Tensor, eps: float = 1e-12) -> float:
    """RankMe (Garrido et al., 2023): exp(-sum_k p_k log p_k), p_k = s_k / sum_j s_j over the singular
    values s of the (N, D) embedding matrix (``singular_values``). Between 1 (collapsed) and min(N, D)."""
    s = singular_values(z)
    p = s / (s.sum() + eps) + eps
    return float(torch.exp(-(p * p.log()).sum()))


def embedding_std(z: Tensor) -> float:
    """mean_k std_n(z_n / ||z_n||)_k: about 1/sqrt(D) when the embeddings spread, 0 when they collapse."""
    return float(F.normalize(z.double(), dim=1).std(0).mean())


def alignment(a: Tensor, b: Tensor, alpha: float = 2.0) -> float:
    """Wang and Isola (2020): E ||a_hat - b_hat||^alpha over positive pairs, L2-normalised (lower is better)."""
    return float((F.normalize(a.double(), dim=1) - F.normalize(b.double(), dim=1)).norm(dim=1).pow(alpha).mean())


def subsample(z: Tensor, size: int = UNIFORMITY_SAMPLE) -> Tensor:
    """``size`` rows of z drawn without replacement from a fixed seed (the same rows at every epoch), or
    all of z when it has no more."""
    if len(z) <= size:
        return z
    rows = torch.randperm(len(z), generator=torch.Generator().manual_seed(0))[:size]
    return z[rows.to(z.device)]


def uniformity(z: Tensor, t: float = 2.0) -> float:
    """Wang and Isola (2020): log E exp(-t ||z_hat_i - z_hat_j||^2) over the distinct pairs of ``subsample``
    (UNIFORMITY_SAMPLE rows; lower is better)."""
    d2 = torch.pdist(F.normalize(subsample(z).double(), dim=1)).pow(2)
    return float(torch.logsumexp(-t * d2, dim=0) - math.log(d2.numel()))


def is_collapsed(std: float, rank: float, dim: int, std_fraction: float, min_rank: float) -> bool:
    """The collapse rule: the L2-normalised embeddings' std is below ``std_fraction`` of the healthy
    1/sqrt(D), or their effective rank is below ``min_rank``. Applied to every embedding the critic
    sees (both branches in SDMI).

    With the default fraction 0.1 the embeddings keep less than 1% of the variance of an isotropic set:
    they sit in a narrow cone, their mean pairwise cosine above about 0.99, and the critic scores every
    pair alike (the MI estimates stay near 0). A low effective rank (default 6.6) catches the other
    degenerate case, embeddings spread along a few directions only. Both defaults were chosen on the val
    split from runs whose state is not in doubt (docs/method.md, "The collapse rule's constants").
    """
    return std < std_fraction / math.sqrt(dim) or rank < min_rank
