"""Critics T(a, b): the score matrix S_ij = T(a_i, b_j) of a batch of embeddings.

- cosine:   S_ij = cos(a_i, b_j) / tau          (the "cos" of cos-DV)
- dot:      S_ij = <a_i, b_j> / tau
- bilinear: S_ij = a_i^T W b_j / tau, W learnable, initialised to the identity
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

CRITICS = ("cosine", "dot", "bilinear")
#: Critics whose scores grow with the embeddings' norm, without bound (cosine's stay within +-1/tau):
#: training one needs trainer.gradient_clip_val, and never NWJ (ssrl.validate).
UNBOUNDED = ("dot", "bilinear")


class Critic(nn.Module):
    """Score matrix of two batches of embeddings, (N, D) x (M, D) -> (N, M)."""

    def __init__(self, kind: str, dim: int, tau: float) -> None:
        super().__init__()
        if kind not in CRITICS:
            raise ValueError(f"critic must be one of {', '.join(CRITICS)}, got {kind!r}")
        self.kind = kind
        self.tau = tau
        self.weight = nn.Parameter(torch.eye(dim)) if kind == "bilinear" else None

    def forward(self, a: Tensor, b: Tensor) -> Tensor:
        if self.kind == "cosine":
            a, b = F.normalize(a, dim=1), F.normalize(b, dim=1)
        elif self.kind == "bilinear":
            a = a @ self.weight
        return (a @ b.T) / self.tau
