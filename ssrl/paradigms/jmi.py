"""JMI: joint MI maximisation, one symmetric step per batch with one optimizer.

loss = -(J - lambda*M)(S(a, b)), a = f(x^A), b = f(x^B) (or g(x^B) with paradigm.shared_encoder=false);
the gradient flows through both branches. No stop-gradient and no predictor.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch import Tensor

from ssrl.mi.objective import Step
from ssrl.paradigms.base import MIParadigm, build_encoder


class JMI(MIParadigm):
    def __init__(self, cfg: DictConfig, num_classes: int) -> None:
        super().__init__(cfg, num_classes)
        self.target = None if cfg.paradigm.shared_encoder else build_encoder(cfg.backbone)[0]

    def branch_b(self, x: Tensor) -> Tensor:
        return (self.target or self.online)(x)[1]

    def _step(self, xa: Tensor, xb: Tensor) -> tuple[Step, Tensor]:
        features, a = self.branch_a(xa)
        return self.objective(a, self.branch_b(xb)), features

    def loss_on(self, xa: Tensor, xb: Tensor) -> Tensor:
        return self._step(xa, xb)[0].loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        xa, xb, labels = self.training_views(batch, batch_idx)
        step, features = self._step(xa, xb)
        if not self.finite(step.loss):
            return None  # Lightning skips the update
        self.log_step(step)
        return step.loss + self.probe_loss(features, labels)

    def configure_optimizers(self) -> dict:
        modules = [self.online, self.objective] + ([self.target] if self.target is not None else [])
        return self.optimizer_and_schedule(self.parameter_groups(modules, with_probe=True))
