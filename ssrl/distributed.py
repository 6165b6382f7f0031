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
    """The data-parallel mean of the gradients, for updates made outside DDP's own synchronisation.

    Coalesced: the gradients of each (device, dtype) are flattened into one buffer, summed over the
    processes in one all-reduce, divided by the world size and copied back (one collective call per
    update for a float32 model, instead of one per tensor: ~60 for ResNet-18). Parameters without a
    gradient are left out; every process must hold gradients for the same parameters, in the same order.
    """
    size = world_size()
    if size == 1:
        return
    buckets: dict[tuple[torch.device, torch.dtype], list[Tensor]] = {}
    for p in parameters:
        if p.grad is not None:
            buckets.setdefault((p.grad.device, p.grad.dtype), []).append(p.grad)
    for grads in buckets.values():
        flat = torch.cat([g.reshape(-1) for g in grads])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= size
        parts = flat.split([g.numel() for g in grads])
        torch._foreach_copy_(grads, [part.view_as(g) for part, g in zip(parts, grads, strict=True)])


def all_agree(flag: Tensor) -> Tensor:
    """``flag`` (a 0-dim bool tensor) and-ed over every process, so that all take the same decision."""
    if world_size() == 1:
        return flag
    agreed = flag.to(torch.int32)
    dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
    return agreed.bool()
