"""The MI probe: I(A; B) between two views' frozen embeddings, read by a critic trained afresh.

A run's own MI estimate (``mi`` in summary.json) scores its training critic, so for a run trained on
that bound it is the objective itself. The probe measures every run the same way: a fresh critic is
trained on embeddings of train-split view pairs, then scored on val-split view pairs with the DV and
the symmetric InfoNCE estimate (``ssrl.mi.estimators``), in nats, over batches of N pairs (the
training N; InfoNCE cannot exceed log N).

Critics (``CRITICS``), both S_ij = exp(s) * cos(W_a a_i, W_b b_j), s a learned log-scale (the inverse
temperature), started at -log(init_temperature):
- cosine:     W_a = W_b = I, fixed: one parameter, s;
- projection: W_a, W_b (D x D) learned, started at the identity (so it starts as the cosine critic).

Budget (``Budget``; the defaults, ``BUDGET``, are the probe's): ``steps`` Adam steps on -InfoNCE of
batches of N train pairs (a fresh permutation per step from a seeded generator), learning rate
``lr_scale`` for s and ``lr_projection`` for W; one critic serves both estimates. Scoring:
``val_permutations`` seeded permutations of the val pairs, each cut into floor(n_val / N) batches of
N; the estimates are the means over all those batches. Deterministic for a given seed. Measured
errors and the choice of headline critic: docs/method.md, "The MI probe"; regenerate them with
``python scripts/estimator_bench.py --probe``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ssrl.mi.estimators import MI_IN_NATS, infonce

CRITICS = ("cosine", "projection")


@dataclass(frozen=True)
class Budget:
    """The probe critic's fixed training budget and the scoring's permutations."""

    steps: int = 200
    lr_scale: float = 0.05
    lr_projection: float = 1e-4
    init_temperature: float = 0.1
    val_permutations: int = 8


BUDGET = Budget()


class ProbeCritic(nn.Module):
    """S_ij = exp(s) * cos(W_a a_i, W_b b_j): (N, D) x (M, D) -> (N, M). ``kind`` "cosine" fixes
    W_a = W_b = I (no weights); "projection" learns both, started at the identity."""

    def __init__(self, kind: str, dim: int, init_temperature: float = BUDGET.init_temperature) -> None:
        super().__init__()
        if kind not in CRITICS:
            raise ValueError(f"probe critic must be one of {', '.join(CRITICS)}, got {kind!r}")
        self.kind = kind
        self.log_scale = nn.Parameter(torch.tensor(-math.log(init_temperature)))
        if kind == "projection":
            self.w_a = nn.Parameter(torch.eye(dim))
            self.w_b = nn.Parameter(torch.eye(dim))

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if self.kind == "projection":
            a, b = a @ self.w_a.T, b @ self.w_b.T
        return (F.normalize(a, dim=1) @ F.normalize(b, dim=1).T) * self.log_scale.exp()


def _check_pairs(a: Tensor, b: Tensor, batch: int, split: str) -> None:
    if a.ndim != 2 or a.shape != b.shape:
        shapes = f"{tuple(a.shape)} and {tuple(b.shape)}"
        raise ValueError(f"{split} embeddings must be two (N, D) tensors of one shape, got {shapes}")
    if batch < 2 or len(a) < batch:
        raise ValueError(f"the probe needs batches of N >= 2 pairs and {split} holds {len(a)} pairs, N = {batch}")


def train_critic(kind: str, a: Tensor, b: Tensor, batch: int, seed: int = 0, budget: Budget = BUDGET) -> ProbeCritic:
    """A fresh critic trained by Adam to maximise the symmetric InfoNCE bound on batches of ``batch``
    pairs (a_i, b_i) of ``a``, ``b`` (N, D); returned in eval mode, without gradients."""
    _check_pairs(a, b, batch, "train")
    # gradients on, also where the caller runs under inference mode (Lightning's validation loop); the
    # clones are ordinary tensors, which autograd may save
    with torch.inference_mode(False), torch.enable_grad():
        a, b = a.detach().float().clone(), b.detach().float().clone()
        critic = ProbeCritic(kind, a.shape[1], budget.init_temperature).to(a.device)
        groups = [{"params": [critic.log_scale], "lr": budget.lr_scale}]
        if kind == "projection":
            groups.append({"params": [critic.w_a, critic.w_b], "lr": budget.lr_projection})
        optimizer = torch.optim.Adam(groups)
        g = torch.Generator().manual_seed(seed)
        for _ in range(budget.steps):
            index = torch.randperm(len(a), generator=g)[:batch].to(a.device)
            loss = -infonce(critic(a[index], b[index])).estimate
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return critic.eval().requires_grad_(False)


@torch.no_grad()
def score(
    critic: nn.Module, a: Tensor, b: Tensor, batch: int, seed: int = 1, permutations: int = BUDGET.val_permutations
) -> dict[str, float]:
    """The DV and symmetric InfoNCE estimates (nats) of ``critic`` on the pairs (a_i, b_i): the mean over
    ``permutations`` seeded permutations, each cut into floor(N / batch) batches of ``batch`` pairs."""
    _check_pairs(a, b, batch, "scored")
    g = torch.Generator().manual_seed(seed)
    values: dict[str, list[float]] = {name: [] for name in MI_IN_NATS}
    for _ in range(permutations):
        order = torch.randperm(len(a), generator=g).to(a.device)
        for start in range(0, len(a) - batch + 1, batch):
            index = order[start : start + batch]
            scores = critic(a[index].float(), b[index].float())
            for name, estimator in MI_IN_NATS.items():
                values[name].append(float(estimator(scores).estimate))
    return {name: sum(v) / len(v) for name, v in values.items()}


def mi_probe(
    train: tuple[Tensor, Tensor],
    val: tuple[Tensor, Tensor],
    batch: int,
    kind: str = "cosine",
    seed: int = 0,
    budget: Budget = BUDGET,
) -> dict[str, float]:
    """I(A; B) in nats from frozen embeddings: {"dv": ..., "infonce": ...}.

    ``train`` and ``val``: (a, b), the (N, D) embeddings of view A and view B of N pairs, branch A
    and branch B as the critic sees them. A ``kind`` critic is trained on ``train`` (``train_critic``),
    then scored on ``val`` (``score``) in batches of ``batch`` pairs; InfoNCE <= log(batch).
    Raises ValueError for an unknown critic, mismatched shapes, or a split smaller than one batch.
    """
    if kind not in CRITICS:
        raise ValueError(f"probe critic must be one of {', '.join(CRITICS)}, got {kind!r}")
    _check_pairs(*train, batch, "train")
    _check_pairs(*val, batch, "val")  # before any work
    critic = train_critic(kind, *train, batch, seed, budget)
    return score(critic, *val, batch, seed + 1, budget.val_permutations)
