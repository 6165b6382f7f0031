"""Optimizers, learning-rate schedules and the EMA momentum schedule, all indexed by batches trained."""

from __future__ import annotations

import math
from typing import Any

import torch

OPTIMIZERS = ("sgd", "adamw")
SCHEDULES = ("cosine", "constant")


def build_optimizer(groups: list[dict], cfg: Any) -> torch.optim.Optimizer:
    """SGD with momentum or AdamW over parameter groups; a group may carry its own lr / weight_decay,
    and ``fixed_lr: True`` to keep its learning rate out of the schedule (``build_schedule``)."""
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
    """A per-batch LambdaLR, in Lightning's scheduler-config form. ``total_steps`` is the number of
    batches the run trains and ``steps_per_epoch`` the real number of batches in an epoch (the train
    loader's length), so the warm-up lasts optim.warmup_epochs real epochs whichever limit ends the
    run. A group with ``fixed_lr`` keeps its initial learning rate throughout (SimSiam's predictor)."""
    warmup = int(cfg.warmup_epochs * steps_per_epoch)
    if cfg.schedule == "cosine":
        factor = lambda step: warmup_cosine(step, warmup, total_steps)  # noqa: E731
    else:
        factor = lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0  # noqa: E731
    factors = [(lambda step: 1.0) if group.get("fixed_lr") else factor for group in optimizer.param_groups]
    return {"scheduler": torch.optim.lr_scheduler.LambdaLR(optimizer, factors), "interval": "step"}


def ema_momentum(step: int, total_steps: int, base: float, end: float | None) -> float:
    """The EMA momentum of update ``step`` (0-based batch index) of ``total_steps``: BYOL's cosine
    schedule m_k = end - (end - base) * (cos(pi * k / K) + 1) / 2, from base at k = 0 towards end at
    k = K (Grill et al., 2020, Sec. 3.2); constant at base when ``end`` is None."""
    if end is None:
        return base
    progress = min(1.0, step / max(1, total_steps))
    return end - (end - base) * (math.cos(math.pi * progress) + 1) / 2
