"""BatchNorm running statistics, saved and put back: forward passes in training mode update them, so
a pass that must leave no trace (a refresh, a skipped update) restores what was saved before it."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm


class SavedStatistics:
    """Copies of every buffer (running mean, variance, count) of every BatchNorm in ``modules`` (None
    entries ignored), taken at construction; ``restore`` copies them back in place. No host sync."""

    def __init__(self, *modules: nn.Module | None) -> None:
        self.saved: list[tuple[Tensor, Tensor]] = [
            (buffer, buffer.clone())
            for module in modules
            if module is not None
            for m in module.modules()
            if isinstance(m, _BatchNorm)
            for buffer in m.buffers()
        ]

    def restore(self) -> None:
        for buffer, value in self.saved:
            buffer.copy_(value)
