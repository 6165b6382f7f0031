"""Variational lower bounds on I(A;B), each a pure function of a score matrix.

On a batch of N positive pairs (a_i, b_i) a critic T gives S_ij = T(a_i, b_j). The diagonal of S
samples the joint p(a,b); the off-diagonal samples the product of marginals p(a)p(b). Every estimator
returns its joint term J and its marginal term M; the estimate is I = J - M and the training objective
is J - lambda*M (``Terms.objective``). All of them work in float32 and through logsumexp / softplus,
never through exp of raw scores, so bf16 or fp16 scores and small temperatures are safe.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Terms:
    """The two terms of a bound: estimate = joint - marginal."""

    joint: Tensor
    marginal: Tensor

    @property
    def estimate(self) -> Tensor:
        return self.joint - self.marginal

    def objective(self, weight: float) -> Tensor:
        """J - lambda*M: lambda = 1 is the bound, lambda = 0 removes the marginal term."""
        return self.joint - weight * self.marginal


def _diagonal_and_off_diagonal(scores: Tensor) -> tuple[Tensor, Tensor]:
    scores = scores.float()
    n = scores.shape[0]
    if scores.ndim != 2 or scores.shape[1] != n or n < 2:
        raise ValueError(f"score matrix must be square with N >= 2, got shape {tuple(scores.shape)}")
    off = ~torch.eye(n, dtype=torch.bool, device=scores.device)
    return scores.diagonal(), scores[off]


def dv(scores: Tensor) -> Terms:
    """Donsker-Varadhan bound (cos-DV when the critic is the cosine critic).

    J = mean_i S_ii
    M = log mean_{i != j} exp(S_ij) = logsumexp_{i != j}(S_ij) - log(N(N-1))
    """
    diag, off = _diagonal_and_off_diagonal(scores)
    return Terms(diag.mean(), torch.logsumexp(off, dim=0) - math.log(off.numel()))


def _without_diagonal(scores: Tensor) -> Tensor:
    return scores.float().masked_fill(torch.eye(len(scores), dtype=torch.bool, device=scores.device), -math.inf)


def infonce(scores: Tensor, symmetric: bool = True, same_view: tuple[Tensor, Tensor] | None = None) -> Terms:
    """InfoNCE (CPC) bound, never above log N.

    J = mean_i S_ii
    M = mean_i [logsumexp_j S_ij - log N]           (rows: a_i against every b_j)
    symmetric: M is the mean of the row form and the column form (b_j against every a_i).
    same_view = (S^AA, S^BB), the scores within each view (SimCLR's NT-Xent): the N - 1 other
    embeddings of the anchor's own view join its negatives,
        row i: logsumexp({S_ij}_j + {S^AA_ik}_{k != i}) - log(2N - 1), columns likewise with S^BB;
    the ceiling becomes log(2N - 1).
    """
    diag, _ = _diagonal_and_off_diagonal(scores)
    scores = scores.float()
    rows, cols = scores, scores.T
    if same_view is not None:
        rows = torch.cat([rows, _without_diagonal(same_view[0])], dim=1)
        cols = torch.cat([cols, _without_diagonal(same_view[1])], dim=1)
    log_n = math.log(rows.shape[1] - (1 if same_view is not None else 0))
    marginal = torch.logsumexp(rows, dim=1).mean() - log_n
    if symmetric:
        marginal = 0.5 * (marginal + torch.logsumexp(cols, dim=1).mean() - log_n)
    return Terms(diag.mean(), marginal)


def jsd(scores: Tensor) -> Terms:
    """Jensen-Shannon bound of Deep InfoMax; its value is not in nats (report DV beside it).

    J = -mean_i softplus(-S_ii)
    M = mean_{i != j} softplus(S_ij)
    """
    diag, off = _diagonal_and_off_diagonal(scores)
    return Terms(-F.softplus(-diag).mean(), F.softplus(off).mean())


def nwj(scores: Tensor) -> Terms:
    """Nguyen-Wainwright-Jordan bound (f-divergence form, tight at T = T* + 1).

    J = mean_i S_ii
    M = mean_{i != j} exp(S_ij - 1)
    """
    diag, off = _diagonal_and_off_diagonal(scores)
    return Terms(diag.mean(), torch.exp(off - 1.0).mean())


ESTIMATORS: dict[str, Callable[[Tensor], Terms]] = {
    "cos_dv": dv,
    "infonce": infonce,
    "jsd": jsd,
    "nwj": nwj,
}


#: The estimates that are MI in nats, whatever the critic: both are invariant to a constant shift of the
#: scores (S -> S + c leaves J - M unchanged), so a critic's free offset cannot move them. NWJ is not
#: (its value at the optimal shift is DV's), and JSD's value is not in nats: their values are the
#: training objectives' own, reported under their own names, never as MI.
MI_IN_NATS: dict[str, Callable[[Tensor], Terms]] = {"dv": dv, "infonce": infonce}


def mi_estimates(scores: Tensor) -> dict[str, Tensor]:
    """MI in nats on one score matrix: {"dv": DV estimate, "infonce": symmetric InfoNCE estimate}.

    The plug-in DV estimate is biased upward at high MI (docs/estimator_bench.md: 11.44 nats at a true
    10 with N = 64); InfoNCE is a lower bound that cannot exceed log N.
    """
    with torch.no_grad():
        return {name: fn(scores).estimate for name, fn in MI_IN_NATS.items()}


def bound_values(scores: Tensor) -> dict[str, Tensor]:
    """Every estimator's own J - M on one score matrix, in its own units: DV's and InfoNCE's are nats,
    JSD's and NWJ's are not MI (report them under their names, never as MI)."""
    with torch.no_grad():
        return {name: fn(scores).estimate for name, fn in ESTIMATORS.items()}


def mi_in_nats_for(estimator: str) -> str:
    """The MI-in-nats estimate that tracks a training estimator: InfoNCE for infonce, DV for the others."""
    return "infonce" if estimator == "infonce" else "dv"
