"""Data parallelism for the MI objective: the negatives of every process, and exact gradients.

With P processes, each holding n of the N = P*n pairs of a global batch, every process gathers all
embeddings (with gradient) and computes the same global loss L on the N x N score matrix. The gather's
backward pass sums the gradients of all copies, so each process holds P * dL/d(own embeddings); the
data-parallel average over processes then gives exactly dL/d(theta) of one process on the whole batch.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.distributed as dist
from torch import Tensor


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def gather_with_grad(x: Tensor) -> Tensor:
    """Every process's rows of ``x`` in rank order, (P*n, ...); gradients flow back to each owner."""
    if world_size() == 1:
        return x
    return torch.cat(torch.distributed.nn.functional.all_gather(x))


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """The data-parallel mean of the gradients, for updates made outside DDP's own synchronisation."""
    size = world_size()
    if size == 1:
        return
    for p in parameters:
        if p.grad is not None:
            dist.all_reduce(p.grad, op=dist.ReduceOp.SUM)
            p.grad /= size


def all_agree(flag: Tensor) -> Tensor:
    """``flag`` (a 0-dim bool tensor) and-ed over every process, so that all take the same decision."""
    if world_size() == 1:
        return flag
    agreed = flag.to(torch.int32)
    dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
    return agreed.bool()
