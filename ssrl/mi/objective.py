"""The training objective of both paradigms: maximise J - lambda*M on a batch of embedding pairs.

The marginal group picks where J and M come from:
- exact, none: the estimator's two terms on the critic's scores, lambda = 1 (the bound) or 0;
- barlow, vicreg: a statistical surrogate's two terms (``ssrl.mi.surrogates``), lambda its weight.
Whatever trains, the estimates of every estimator on the critic's scores are reported beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from torch import Tensor, nn

from ssrl.distributed import gather_with_grad
from ssrl.mi import surrogates
from ssrl.mi.critics import Critic
from ssrl.mi.estimators import ESTIMATORS, Terms, infonce

SURROGATES = {"barlow": surrogates.barlow, "vicreg": surrogates.vicreg}
MARGINALS = ("exact", "none", *SURROGATES)


@dataclass(frozen=True)
class Step:
    """One evaluation of the objective: the loss to minimise, its terms, and the scores."""

    loss: Tensor
    terms: Terms
    scores: Tensor


class MIObjective(nn.Module):
    """loss = -(J - lambda*M), from a critic and an estimator or a surrogate."""

    def __init__(
        self,
        critic: Critic,
        estimator: str,
        marginal: str,
        weight: float,
        symmetric: bool = True,
        same_view_negatives: bool = False,
        surrogate_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.critic = critic
        self.estimator = estimator
        self.marginal = marginal
        self.weight = weight
        self.same_view_negatives = same_view_negatives
        self.surrogate = partial(SURROGATES[marginal], **(surrogate_kwargs or {})) if marginal in SURROGATES else None
        self.bound = partial(infonce, symmetric=symmetric) if estimator == "infonce" else ESTIMATORS[estimator]

    def forward(self, a: Tensor, b: Tensor) -> Step:
        """Under data parallelism every process scores the whole global batch (ssrl.distributed)."""
        a, b = gather_with_grad(a), gather_with_grad(b)
        scores = self.critic(a, b)
        if self.surrogate is not None:
            terms = self.surrogate(a, b)
        elif self.same_view_negatives:
            terms = self.bound(scores, same_view=(self.critic(a, a), self.critic(b, b)))
        else:
            terms = self.bound(scores)
        return Step(-terms.objective(self.weight), terms, scores)
