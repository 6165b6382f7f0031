"""BatchNorm running statistics, saved and put back: forward passes in training mode update them, so
a pass that must leave no trace (a refresh, a skipped update) restores what was saved before it."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class SavedStatistics:
    """Copies of every buffer (running mean, variance, count) of every BatchNorm in ``modules`` (None
    entries ignored), taken at construction; ``restore`` copies them back in place. No host sync; one
    multi-tensor copy each way (torch._foreach_copy_), not one kernel per buffer."""

    def __init__(self, *modules: nn.Module | None) -> None:
        self.buffers = [
            buffer
            for module in modules
            if module is not None
            for m in module.modules()
            if isinstance(m, _BatchNorm)
            for buffer in m.buffers()
        ]
        self.saved = [torch.empty_like(buffer) for buffer in self.buffers]
        if self.buffers:
            torch._foreach_copy_(self.saved, self.buffers)

    def restore(self) -> None:
        if self.buffers:
            torch._foreach_copy_(self.buffers, self.saved)
