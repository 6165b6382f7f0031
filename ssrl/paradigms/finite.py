"""Non-finite training updates, without a host sync per batch.

on_nonfinite_loss=stop: each update's loss is noted on the device (``FirstNonFinite``); the host reads
the note only where it syncs anyway (the batches whose scalars Lightning logs), at the end of each epoch
and before any checkpoint is written, and the run stops there, naming the first non-finite batch.
on_nonfinite_loss=skip: after the backward pass, before the optimizer step, the loss and every gradient
are checked (``gradients_finite``) and the decision is agreed across processes; this costs one host
sync per update, the price of leaving weights and optimizer state untouched.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def gradients_finite(parameters: Iterable[torch.nn.Parameter]) -> Tensor:
    """A 0-dim bool tensor on the gradients' device: whether every gradient of ``parameters`` is finite
    (parameters without a gradient are left out). The max-norm of a tensor is NaN or inf exactly when an
    element is, so one foreach reduction decides it, without a host sync."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.tensor(True)
    return torch.isfinite(torch.stack(torch._foreach_norm(grads, float("inf")))).all()


class FirstNonFinite:
    """(epoch, batch of the run, loss) of the first non-finite training loss noted, held on the loss's
    device: noting is a few device ops, and only ``read`` copies to the host."""

    def __init__(self) -> None:
        self.record: Tensor | None = None  # float64 (3,); batch -1 while every loss noted was finite

    def note(self, loss: Tensor, epoch: int, batch: int) -> None:
        loss = loss.detach().double()
        if self.record is None:
            self.record = torch.full((3,), -1.0, dtype=torch.float64, device=loss.device)
        first = (self.record[1] < 0) & ~torch.isfinite(loss)
        new = torch.stack([torch.full_like(loss, epoch), torch.full_like(loss, batch), loss])
        self.record = torch.where(first, new, self.record)

    def read(self) -> tuple[int, int, float] | None:
        """(epoch, batch of the run, loss) of the first non-finite loss, or None; one host sync."""
        if self.record is None:
            return None
        epoch, batch, loss = self.record.tolist()
        return None if batch < 0 else (int(epoch), int(batch), loss)
