"""SDMI: self-distillation MI, block-coordinate ascent on the bound with two encoders.

Per batch, with f_theta the online encoder (view A, predictor h on top when there is one) and g_xi the
target encoder (view B), and L = -(J - lambda*M):

    E-step (paradigm.e_steps times):  theta <- theta - lr * grad_theta L( h(f_theta(x^A)), SG(g_xi(x^B)) )
    M-step (paradigm.m_steps times):  xi    <- xi    - lr * grad_xi    L( SG(h(f_theta(x^A))), g_xi(x^B) )

SG (``detach``) is how one block is held fixed. Options:
- target_update=gradient: the M-step above, with its own optimizer and schedule.
- target_update=ema: no M-step; after the E-step xi <- m*xi + (1-m)*theta (BYOL), from the first batch
  on (the target starts as a copy of the online encoder); m follows BYOL's cosine schedule from
  paradigm.ema_momentum to paradigm.ema_momentum_end over the run's batches (constant without an end).
  Only parameters are averaged: the target's BatchNorm running statistics are its own, from its own
  forward passes in training mode, as in solo-learn (solo/utils/momentum.py),
  which updates parameters only.
- shared_weights=true: g = f (SimSiam); the target embedding is the online projection, detached, and
  there is no M-step (xi has no parameters of its own).
- refresh: the M-step recomputes SG(h(f_theta(x^A))) after the E-step's update (strict alternation)
  or reuses the E-step's output (refresh=false). Only meaningful with target_update=gradient. The
  refresh pass computes with batch statistics, as the E-step did, but leaves the online BatchNorm
  running statistics as the E-step left them: they are updated once per forward pass that trains.
- symmetrize: each step also uses the swapped assignment (x^B online, x^A target); losses averaged.

Steps are counted in batches: both schedulers step once per batch, and the EMA momentum follows the
batch index, in every path, a skipped non-finite update (on_nonfinite_loss=skip) included, so the two
schedules stay in step and end with the run; trainer.max_steps counts batches (``count_batch_as_one_step``).

Forward passes per batch (e_steps = m_steps = 1; double them with symmetrize):
  gradient + refresh: 3 (target with grad, online with grad, online refresh without grad), 2 backward
  gradient, no refresh: 2, 2 backward (the target's forward serves the M-step's backward)
  ema: 2 (target without grad), 1 backward;  shared weights: 2 (one without grad), 1 backward
JMI does 2 forward passes and 1 backward pass through both branches.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from omegaconf import DictConfig
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel

from ssrl.distributed import average_gradients
from ssrl.mi.objective import Step
from ssrl.nets.statistics import SavedStatistics
from ssrl.paradigms.base import MIParadigm
from ssrl.paradigms.optim import ema_momentum


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """xi <- m * xi + (1 - m) * theta for every parameter; buffers (BatchNorm statistics) untouched.
    Two multi-tensor (``torch._foreach_*``) kernels for the whole model rather than two per tensor;
    the two modules must have the same parameters (a RuntimeError otherwise)."""
    xis = list(target.parameters())
    torch._foreach_mul_(xis, momentum)
    torch._foreach_add_(xis, list(online.parameters()), alpha=1.0 - momentum)  # no graph: under no_grad


@contextmanager
def batchnorm_statistics_kept(*modules: nn.Module | None) -> Iterator[None]:
    """Forward passes inside use batch statistics as usual, but leave every BatchNorm's running
    statistics (and its count) as they were."""
    saved = SavedStatistics(*modules)
    try:
        yield
    finally:
        saved.restore()


class SDMI(MIParadigm):
    def __init__(self, cfg: DictConfig, num_classes: int) -> None:
        super().__init__(cfg, num_classes)
        self.automatic_optimization = False
        self._pending: tuple[Tensor, tuple[SavedStatistics, ...]] | None = None  # _update's, for the hook
        self._allowed = True
        p = cfg.paradigm
        if p.shared_weights:
            self.target = None
        elif p.target_update == "ema":
            self.target = copy.deepcopy(self.online).requires_grad_(False)
        else:
            self.target = copy.deepcopy(self.online)

    @property
    def m_step_by_gradient(self) -> bool:
        return self.target is not None and self.cfg.paradigm.target_update == "gradient"

    def branch_b(self, x: Tensor) -> Tensor:
        return (self.target or self.online)(x)[1]

    def _targets(self, views: tuple[Tensor, Tensor], roles: set[int], online: dict[int, tuple]) -> dict[int, Tensor]:
        """Branch B embeddings, with a graph only when the M-step will backpropagate through them.
        The E-step's stop-gradient is applied by the caller, in one place for every target kind."""
        if self.target is None:  # shared weights: reuse the online projection where it was computed
            return {j: online[j][1] if j in online else self._projection_without_grad(views[j]) for j in roles}
        with torch.set_grad_enabled(self.m_step_by_gradient):
            return {j: self.branch_b(views[j]) for j in roles}

    def _projection_without_grad(self, x: Tensor) -> Tensor:
        with torch.no_grad():
            return self.online(x)[1]

    def _pairs(self) -> list[tuple[int, int]]:
        """(online view, target view) assignments: A->B, and B->A too with symmetrize."""
        return [(0, 1), (1, 0)] if self.cfg.paradigm.symmetrize else [(0, 1)]

    def _phase_loss(self, a: dict[int, Tensor], b: dict[int, Tensor]) -> tuple[Tensor, Step]:
        """-(J - lambda*M) averaged over the view assignments, and the A->B step for logging."""
        steps = [self.objective(a[i], b[j]) for i, j in self._pairs()]
        return sum(s.loss for s in steps) / len(steps), steps[0]

    def _e_step(self, views: tuple[Tensor, Tensor], targets: dict[int, Tensor] | None):
        """Online forward passes and the E-step loss against SG(targets); targets are computed on the
        first call of a batch and held fixed for the rest of the E-step."""
        online = {i: self.online_outputs(views[i]) for i, _ in self._pairs()}
        if targets is None:
            targets = self._targets(views, {j for _, j in self._pairs()}, online)
        loss, step = self._phase_loss({i: o[2] for i, o in online.items()}, {j: t.detach() for j, t in targets.items()})
        return loss, step, online, targets

    def loss_on(self, xa: Tensor, xb: Tensor) -> Tensor:
        return self._e_step((xa, xb), None)[0]

    def training_step(self, batch: Any, batch_idx: int) -> None:
        """One batch: the E-step, then the M-step or the EMA update. Whatever happened (updates
        skipped included), every schedule then advances by one batch."""
        optimizers = self.optimizers()
        optimizers = optimizers if isinstance(optimizers, list) else [optimizers]
        self._train_batch(batch, batch_idx, optimizers)  # applied or skipped, every schedule advances
        schedulers = self.lr_schedulers()
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            scheduler.step()
        self.count_batch_as_one_step()

    def _train_batch(self, batch: Any, batch_idx: int, optimizers: list) -> bool:
        """The batch's updates; False when a non-finite update was skipped (on_nonfinite_loss=skip),
        and with it the rest of the batch's updates. A skipped update also puts back the BatchNorm
        statistics its forward passes moved: an E-step's, those of the online encoder and predictor since
        that E-step began and the target's since the batch began (the batch's target update is skipped
        with it); an M-step's, the target's since the forward pass that M-step differentiates."""
        p = self.cfg.paradigm
        xa, xb, labels = self.training_views(batch, batch_idx)
        views = (xa, xb)
        targets = None
        target_stats = self.statistics(self.target)
        for k in range(p.e_steps):  # E-step: theta moves, xi held fixed by SG
            online_stats = self.statistics(self.online, self.predictor)
            loss, step, online, targets = self._e_step(views, targets)
            if k == 0:
                self.log_step(step)
                loss = loss + self.probe_loss(online[0][0], labels)
            if not self._update(optimizers[0], loss, online_stats, target_stats):
                return False

        if not self.m_step_by_gradient:
            if self.target is not None:  # EMA, at the momentum of this batch's index
                k = self.batches_trained - 1
                momentum = ema_momentum(k, self.total_batches, p.ema_momentum, p.ema_momentum_end)
                ema_update(self.target, self.online, momentum)
                self.log_sparse("train/ema_momentum", momentum)
            return True
        if p.refresh:
            with torch.no_grad(), batchnorm_statistics_kept(self.online, self.predictor):
                fixed = {i: self.online_outputs(views[i])[2] for i in online}
        else:
            fixed = {i: o[2].detach() for i, o in online.items()}
        for k in range(p.m_steps):  # M-step: xi moves, theta held fixed by SG
            if k > 0:
                target_stats = self.statistics(self.target)
                targets = self._targets(views, set(targets), online={})
            loss, _ = self._phase_loss(fixed, targets)
            if not self._update(optimizers[1], loss, target_stats):
                return False
        self.log("train/m_step_loss", loss)
        return True

    def _update(self, optimizer: Any, loss: Tensor, *statistics: SavedStatistics) -> bool:
        """One optimizer step on ``loss``, unless ``update_allowed`` refuses it: then False, weights and
        optimizer state untouched, and ``statistics`` (BatchNorm statistics saved before the update's
        forward passes) put back. Under DDP the gradients are averaged here, for this optimizer's
        parameters only: DDP's own synchronisation expects one backward pass per forward, and SDMI runs
        several, each reaching one block. The decision and trainer.gradient_clip_val's clip come after
        the averaging, in ``on_before_optimizer_step``."""
        optimizer.zero_grad()
        model = self.trainer.strategy.model
        with model.no_sync() if isinstance(model, DistributedDataParallel) else nullcontext():
            self.manual_backward(loss)
        average_gradients(p for group in optimizer.optimizer.param_groups for p in group["params"])
        self._pending, self._allowed = (loss, statistics), True
        optimizer.step()  # decided and clipped in on_before_optimizer_step
        return self._allowed

    def on_before_optimizer_step(self, optimizer: Any) -> None:
        """Whether ``_update``'s step is applied (``update_allowed``), then trainer.gradient_clip_val,
        applied by SDMI itself (Lightning does not clip under manual optimization). Lightning calls this
        hook inside ``optimizer.step()``, after precision=16-mixed's loss scaler has unscaled the
        gradients, so both see the true gradients; clipped before the step, they were still multiplied by
        the loss scale (8192: a norm of 2.7e5 for a true 33, issue 23), and a scaled overflow would be
        skipped without the scaler lowering its scale. A refused step drops every gradient, so the
        optimizer leaves each parameter and its state as they are."""
        (loss, statistics), self._pending = self._pending, None
        params = [p for group in optimizer.param_groups for p in group["params"]]
        if not self.update_allowed(loss, params):
            self._allowed = False
            for p in params:
                p.grad = None
            for saved in statistics:
                saved.restore()
            return
        clip = self.cfg.trainer.gradient_clip_val
        if clip:
            self.clip_gradients(
                optimizer, gradient_clip_val=clip, gradient_clip_algorithm=self.cfg.trainer.gradient_clip_algorithm
            )

    def configure_optimizers(self) -> list[dict]:
        e_groups = self.parameter_groups([self.online, self.objective], with_probe=True)
        configs = [self.optimizer_and_schedule(e_groups)]
        if self.m_step_by_gradient:
            configs.append(self.optimizer_and_schedule(self.parameter_groups([self.target], with_probe=False)))
        return configs
