"""Optimizers and learning-rate schedules from the ``optim`` config."""

from __future__ import annotations

import math
from typing import Any

import torch

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant")


def build_optimizer(groups: list[dict], cfg: Any) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over parameter groups; a group may carry its own lr / weight_decay."""
    if cfg.name == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """lr factor: linear warm-up from 0 over warmup_steps, then 0.5 * (1 + cos(pi * progress)) to 0."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_schedule(optimizer: torch.optim.Optimizer, cfg: Any, total_steps: int, steps_per_epoch: int) -> dict:
    """A per-step LambdaLR, in Lightning's scheduler-config form."""
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        factor = lambda step: warmup_cosine(step, warmup, total_steps)  # noqa: E731
    else:
        factor = lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0  # noqa: E731
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factor), "interval": "step"}
