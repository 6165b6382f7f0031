"""The published losses of SimCLR, Barlow Twins, VICReg, BYOL and SimSiam, written from their papers'
pseudo-code, independently of ssrl's code: what the presets and surrogates are checked against."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1, z2, tau):
    """SimCLR (Chen et al., 2020): 2N anchors, each with one positive and 2N - 2 negatives."""
    n = len(z1)
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    sim = z @ z.T / tau
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
    return F.cross_entropy(sim, targets)


def barlow_twins(z1, z2, lambd):
    """Zbontar et al. (2021), Algorithm 1: BatchNorm without affine, cross-correlation, ||I - C||."""
    n, d = z1.shape
    bn = torch.nn.BatchNorm1d(d, affine=False, eps=1e-5)
    c = bn(z1).T @ bn(z2) / n
    on_diag = (torch.diagonal(c) - 1).pow(2).sum()
    off_diag = (c - torch.diag(torch.diagonal(c))).pow(2).sum()
    return on_diag + lambd * off_diag


def vicreg(x, y, sim=25.0, std_coeff=25.0, cov_coeff=1.0):
    """Bardes et al. (2022), as the authors' released code (facebookresearch/vicreg, main_vicreg.py): the
    two variance terms averaged (Algorithm 1 of the paper sums them), the two covariance terms summed."""
    n, d = x.shape
    repr_loss = F.mse_loss(x, y)
    x, y = x - x.mean(dim=0), y - y.mean(dim=0)
    std_x, std_y = torch.sqrt(x.var(dim=0) + 1e-4), torch.sqrt(y.var(dim=0) + 1e-4)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x, cov_y = (x.T @ x) / (n - 1), (y.T @ y) / (n - 1)
    off = ~torch.eye(d, dtype=torch.bool)
    cov_loss = cov_x[off].pow(2).sum() / d + cov_y[off].pow(2).sum() / d
    return sim * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


def byol(q1, q2, z1_target, z2_target):
    """Grill et al. (2020): L + L~, L = ||q_n - z'_n||^2 = 2 - 2 cos(q, z'), z' from the target network."""

    def regression(q, z):
        return (2 - 2 * F.cosine_similarity(q, z.detach(), dim=-1)).mean()

    return regression(q1, z2_target) + regression(q2, z1_target)


def simsiam(p1, p2, z1, z2):
    """Chen and He (2021), Algorithm 1: L = D(p1, z2)/2 + D(p2, z1)/2, D(p, z) = -cos(p, SG(z))."""

    def d(p, z):
        return -F.cosine_similarity(p, z.detach(), dim=-1).mean()

    return d(p1, z2) / 2 + d(p2, z1) / 2
