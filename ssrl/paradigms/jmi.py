"""JMI: joint MI maximisation, one symmetric step per batch with one optimizer.

loss = -(J - lambda*M)(S(a, b)), a = f(x^A), b = f(x^B) (or g(x^B) with paradigm.shared_encoder=false);
the gradient flows through both branches. No stop-gradient and no predictor.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig
from torch import Tensor

from ssrl.mi.objective import Step
from ssrl.nets.statistics import SavedStatistics
from ssrl.paradigms.base import MIParadigm, build_encoder


class JMI(MIParadigm):
    def __init__(self, cfg: DictConfig, num_classes: int) -> None:
        super().__init__(cfg, num_classes)
        self.target = None if cfg.paradigm.shared_encoder else build_encoder(cfg.backbone)[0]
        self._window_loss: Tensor | None = None  # the losses since the last optimizer step (accumulation)
        self._window_stats = SavedStatistics()  # BatchNorm statistics before them (on_nonfinite_loss=skip)

    def branch_b(self, x: Tensor) -> Tensor:
        return (self.target or self.online)(x)[1]

    def _step(self, xa: Tensor, xb: Tensor) -> tuple[Step, Tensor]:
        features, a = self.branch_a(xa)
        return self.objective(a, self.branch_b(xb)), features

    def loss_on(self, xa: Tensor, xb: Tensor) -> Tensor:
        return self._step(xa, xb)[0].loss

    def training_step(self, batch: Any, batch_idx: int) -> Tensor:
        """The loss, always (never None: under DDP every process must run the same backward pass);
        whether its update is applied is decided in ``on_before_optimizer_step``."""
        if self._window_loss is None:
            self._window_stats = self.statistics(self)
        xa, xb, labels = self.training_views(batch, batch_idx)
        step, features = self._step(xa, xb)
        self.log_step(step)
        loss = step.loss + self.probe_loss(features, labels)
        self._window_loss = loss.detach() if self._window_loss is None else self._window_loss + loss.detach()
        return loss

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """After the backward pass (and DDP's gradient averaging), before clipping and the step: a
        skipped update drops every gradient, so the optimizer leaves each parameter and its state as
        they are (SGD and AdamW pass over parameters without a gradient), and puts back the BatchNorm
        statistics its forward passes moved."""
        loss, self._window_loss = self._window_loss, None
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not self.update_allowed(loss, params):
            for p in params:
                p.grad = None
            self._window_stats.restore()

    def configure_optimizers(self) -> dict:
        modules = [self.online, self.objective] + ([self.target] if self.target is not None else [])
        return self.optimizer_and_schedule(self.parameter_groups(modules, with_probe=True))
