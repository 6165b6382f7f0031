"""The training objective of both paradigms: maximise J - lambda*M on a batch of embedding pairs.

The marginal group picks where J and M come from:
- exact, none: the estimator's two terms on the critic's scores, lambda = 1 (the bound) or 0;
- barlow, vicreg: a statistical surrogate's two terms (``ssrl.mi.surrogates``), lambda its weight.
Whatever trains, the estimates of every estimator on the critic's scores are reported beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import Tensor, nn

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
        surrogate_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.critic = critic
        self.estimator = estimator
        self.marginal = marginal
        self.weight = weight
        if marginal in SURROGATES:
            self._terms: Callable[[Tensor, Tensor, Tensor], Terms] = self._surrogate_terms
            self._surrogate = partial(SURROGATES[marginal], **(surrogate_kwargs or {}))
        else:
            self._terms = self._bound_terms
            self._bound = partial(infonce, symmetric=symmetric) if estimator == "infonce" else ESTIMATORS[estimator]

    def _bound_terms(self, a: Tensor, b: Tensor, scores: Tensor) -> Terms:
        return self._bound(scores)

    def _surrogate_terms(self, a: Tensor, b: Tensor, scores: Tensor) -> Terms:
        return self._surrogate(a, b)

    def forward(self, a: Tensor, b: Tensor) -> Step:
        scores = self.critic(a, b)
        terms = self._terms(a, b, scores)
        return Step(-terms.objective(self.weight), terms, scores)
