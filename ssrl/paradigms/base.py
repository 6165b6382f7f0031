"""What JMI and SDMI share: the encoders, the objective, the views, the online probe, the diagnostics.

Branch A (view A) is the online encoder, with the predictor on top when there is one; branch B (view B)
is the paradigm's choice (``branch_b``). The critic scores branch A's embeddings against branch B's.
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from omegaconf import DictConfig, OmegaConf
from torch import Tensor, nn
from torchmetrics.classification import MulticlassAccuracy

from ssrl.data.views import BatchedViews, seed_of
from ssrl.evaluation import collapse
from ssrl.mi.critics import UNBOUNDED, Critic
from ssrl.mi.estimators import bound_values, mi_estimates
from ssrl.mi.objective import MIObjective, Step
from ssrl.nets.backbones import build_backbone
from ssrl.nets.heads import Encoder, mlp
from ssrl.paradigms.optim import build_optimizer, build_schedule


def build_encoder(cfg: Any) -> tuple[Encoder, int]:
    """Backbone + projector from the ``backbone`` config, and the backbone's feature dimension."""
    backbone, feature_dim = build_backbone(cfg.name, cfg.in_channels, cfg.cifar_stem, cfg.width)
    layers, out_bn = cfg.projector_layers, cfg.projector_out_bn
    projector = mlp(feature_dim, cfg.projector_hidden_dim, cfg.projector_dim, layers, out_bn)
    return Encoder(backbone, projector), feature_dim


def build_objective(cfg: Any) -> MIObjective:
    """The critic, estimator and marginal term named by the config."""
    est, marginal = cfg.estimator, cfg.marginal
    surrogate_kwargs = {k: v for k, v in marginal.items() if k not in ("name", "weight")}
    return MIObjective(
        Critic(est.critic, cfg.backbone.projector_dim, est.tau),
        est.name,
        marginal.name,
        marginal.weight,
        symmetric=est.get("symmetric", True),
        same_view_negatives=est.get("same_view_negatives", False),
        surrogate_kwargs=surrogate_kwargs,
    )


class MIParadigm(pl.LightningModule):
    """Base LightningModule: subclasses define ``branch_b``, ``training_step``, ``configure_optimizers``."""

    def __init__(self, cfg: DictConfig, num_classes: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.online, feature_dim = build_encoder(cfg.backbone)
        dim = cfg.backbone.projector_dim
        self.predictor = mlp(dim, cfg.predictor.hidden_dim, dim) if cfg.predictor.name == "mlp" else None
        self.objective = build_objective(cfg)
        self.views = BatchedViews(cfg.data.views, cfg.data.image_size, cfg.data.channels)
        self.probe = nn.Linear(feature_dim, num_classes)
        self.val_probe_acc = MulticlassAccuracy(num_classes, average="micro")
        self.history: list[dict[str, Any]] = []
        self.batches_trained = 0
        self.skipped_steps = 0
        self.total_batches = 0  # batches the run trains, set with the schedules
        self._val: dict[str, list] = {}

    # ----------------------------------------------------------------------------- branches and views
    def online_outputs(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(backbone features, projection z, embedding a = h(z), or z without a predictor)."""
        features, z = self.online(x)
        return features, z, (self.predictor(z) if self.predictor is not None else z)

    def branch_a(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """View A through the online encoder (and predictor): (backbone features, embedding)."""
        features, _, a = self.online_outputs(x)
        return features, a

    def branch_b(self, x: Tensor) -> Tensor:
        """View B's embedding, as the critic sees it."""
        raise NotImplementedError

    def loss_on(self, xa: Tensor, xb: Tensor) -> Tensor:
        """The loss the first update of a training step minimises on these views at the current
        weights (the online probe's loss aside)."""
        raise NotImplementedError

    def _generator(self, *keys: int) -> torch.Generator:
        return torch.Generator(device=self.device).manual_seed(seed_of(self.cfg.seed, *keys))

    def _layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.cfg.trainer.channels_last else x

    def training_views(self, batch: Any, batch_idx: int) -> tuple[Tensor, Tensor, Tensor]:
        """(view A, view B, labels). Batched views draw from (seed, epoch, batch, rank), so a resumed
        run sees the views an uninterrupted run would, and each DDP process draws its own (rank 0 draws
        what a single process does). A batch is uint8 images (views made here), a pair of uint8 crops
        (image folders: cropped while decoding; the rest is made here), or a pair of finished float
        views (data.pipeline=per_sample)."""
        images, labels = batch
        rank = (self.global_rank,) if self.global_rank else ()
        if isinstance(images, (tuple, list)):
            xa, xb = images
            if xa.dtype == torch.uint8:
                xa, xb = self.views.from_crops((xa, xb), self._generator(0, self.current_epoch, batch_idx, *rank))
        else:
            xa, xb = self.views(images, self._generator(0, self.current_epoch, batch_idx, *rank))
        return self._layout(xa), self._layout(xb), labels

    def probe_loss(self, features: Tensor, labels: Tensor) -> Tensor:
        """The online linear probe, trained on detached features: it never shapes the encoder."""
        loss = F.cross_entropy(self.probe(features.detach()), labels)
        self.log("train/probe_loss", loss, sync_dist=True)  # each process's probe sees its own batch
        return loss

    def log_step(self, step: Step) -> None:
        """The loss, its terms, and the MI in nats (DV, InfoNCE) on the same scores."""
        self.log("train/loss", step.loss, prog_bar=True)
        self.log("train/joint", step.terms.joint)
        self.log("train/marginal", step.terms.marginal)
        for name, value in mi_estimates(step.scores).items():
            self.log(f"train/mi/{name}", value)
        if self.objective.surrogate is None:  # the training estimator's own J - M, in its own units
            self.log(f"train/bound/{self.cfg.estimator.name}", step.terms.estimate)

    def finite(self, loss: Tensor) -> bool:
        """Whether to apply this update. A non-finite loss stops the run with a clear message, or,
        with on_nonfinite_loss=skip, its update is skipped and counted (train/skipped_steps)."""
        if torch.isfinite(loss):
            return True
        if self.cfg.on_nonfinite_loss == "skip":
            self.skipped_steps += 1
            self.log("train/skipped_steps", float(self.skipped_steps))
            return False
        # what bounds the scores: tau for the cosine critic; the step size for an unbounded one (ssrl.validate)
        unbounded = self.objective.critic.kind in UNBOUNDED
        bound = "lower trainer.gradient_clip_val" if unbounded else "raise estimator.tau"
        raise FloatingPointError(
            f"the training loss is {loss.item()} in epoch {self.current_epoch}, "
            f"batch {self.batches_trained} of the run: lower optim.lr, {bound}, or set on_nonfinite_loss=skip"
        )

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        # counted before the step, so that a checkpoint written after it (callbacks' on_train_batch_end
        # runs before the module's) already includes this batch
        self.batches_trained += 1

    # ----------------------------------------------------------------------------- optimisation
    def parameter_groups(self, modules: list[nn.Module], with_probe: bool) -> list[dict]:
        """Groups for one optimizer: the modules at optim.lr, the predictor at lr * predictor.lr_scale
        (off the schedule with predictor.fixed_lr), the online probe at eval.online_probe_lr without
        weight decay."""
        groups = [{"params": [p for m in modules for p in m.parameters()]}]
        if self.predictor is not None and any(m is self.online for m in modules):
            pred = self.cfg.predictor
            groups.append(
                {
                    "params": list(self.predictor.parameters()),
                    "lr": self.cfg.optim.lr * pred.lr_scale,
                    "fixed_lr": bool(pred.get("fixed_lr", False)),
                }
            )
        if with_probe:
            groups.append(
                {"params": list(self.probe.parameters()), "lr": self.cfg.eval.online_probe_lr, "weight_decay": 0.0}
            )
        return groups

    def optimizer_and_schedule(self, groups: list[dict]) -> dict:
        """An optimizer over ``groups`` and its per-batch schedule. Lengths are in batches trained: the
        run's total (trainer.max_steps counts batches, see ``count_batch_as_one_step``) and the train
        loader's real number of batches per epoch (after limit_train_batches)."""
        optimizer = build_optimizer(groups, self.cfg.optim)
        self.total_batches = int(self.trainer.estimated_stepping_batches)  # also sets up the train loader
        per_epoch = max(1, int(self.trainer.num_training_batches))
        schedule = build_schedule(optimizer, self.cfg.optim, self.total_batches, per_epoch)
        return {"optimizer": optimizer, "lr_scheduler": schedule}

    def count_batch_as_one_step(self) -> None:
        """Lightning's global_step (which max_steps, checkpoint cadence and log steps read) counts
        optimizer steps: JMI takes one per batch, SDMI 0 to e_steps + m_steps. Called at the end of each
        SDMI batch, this sets that count to the batches trained, so that in both paradigms
        trainer.max_steps means batches trained, skipped updates included."""
        progress = self.trainer.fit_loop.epoch_loop.manual_optimization.optim_step_progress
        progress.total.ready = progress.total.completed = self.batches_trained

    def setup(self, stage: str) -> None:
        if self.cfg.trainer.channels_last:
            self.to(memory_format=torch.channels_last)
        if self.cfg.trainer.compile:
            self.online.compile()

    # ----------------------------------------------------------------------------- validation
    def on_validation_epoch_start(self) -> None:
        self._val = {"a": [], "b": [], "features": [], "view_a": [], "view_b": [], "mi": [], "bound": []}

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        images, labels = batch
        x = self._layout(self.views.clean(images))
        features, a = self.branch_a(x)
        self._val["a"].append(a.float())
        self._val["b"].append(self.branch_b(x).float())
        self._val["features"].append(features.float())
        self.val_probe_acc.update(self.probe(features), labels)
        if len(images) == self.cfg.data.batch_size:  # the MI at the training N, on fixed held-out pairs
            xa, xb = self.views(images, self._generator(1, batch_idx))
            va, vb = self.branch_a(self._layout(xa))[1], self.branch_b(self._layout(xb))
            scores = self.objective.critic(va, vb)
            self._val["mi"].append({k: float(v) for k, v in mi_estimates(scores).items()})
            self._val["bound"].append({k: float(v) for k, v in bound_values(scores).items()})
            self._val["view_a"].append(va.float())
            self._val["view_b"].append(vb.float())

    def held_out_metrics(self) -> dict[str, Any]:
        """On the val split: collapse diagnostics of both branches' embeddings, MI in nats, every
        estimator's own bound value, alignment and uniformity."""
        v, ev = self._val, self.cfg.eval
        a, b, features = torch.cat(v["a"]), torch.cat(v["b"]), torch.cat(v["features"])
        if not all(torch.isfinite(t).all() for t in (a, b, features)):
            nan = float("nan")
            return {
                "online_probe_acc": nan,
                "effective_rank": nan,
                "embedding_std": nan,
                "effective_rank_backbone": nan,
                "uniformity": nan,
                "collapsed": True,
                "non_finite": True,
            }
        rank = min(collapse.effective_rank(a), collapse.effective_rank(b))
        std = min(collapse.embedding_std(a), collapse.embedding_std(b))
        metrics: dict[str, Any] = {
            "online_probe_acc": float(self.val_probe_acc.compute()),
            "effective_rank": rank,
            "embedding_std": std,
            "effective_rank_backbone": collapse.effective_rank(features),
            "uniformity": collapse.uniformity(a),
            "collapsed": collapse.is_collapsed(std, rank, a.shape[1], ev.collapse_std_fraction, ev.collapse_min_rank),
        }
        if v["mi"]:
            metrics["alignment"] = collapse.alignment(torch.cat(v["view_a"]), torch.cat(v["view_b"]))
            for key in ("mi", "bound"):  # MI in nats; every estimator's own J - M, in its own units
                metrics[key] = {k: sum(m[k] for m in v[key]) / len(v[key]) for k in v[key][0]}
        return metrics

    def on_validation_epoch_end(self) -> None:
        metrics = self.held_out_metrics()
        self.val_probe_acc.reset()
        self._val = {}
        for key, value in metrics.items():
            if key in ("mi", "bound"):
                for name, est in value.items():
                    self.log(f"val/{key}/{name}", est)
            else:
                self.log(f"val/{key}", float(value))
        fitting = self.trainer.state.fn == "fit"
        epochs = self.current_epoch + 1 if fitting else self.current_epoch
        entry = {"epoch": epochs, "step": self.batches_trained, **metrics}
        if self.history and self.history[-1]["step"] == entry["step"]:
            self.history[-1] = entry
        else:
            self.history.append(entry)

    # ----------------------------------------------------------------------------- checkpoint state
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["ssrl"] = {
            "history": self.history,
            "batches_trained": self.batches_trained,
            "skipped_steps": self.skipped_steps,
            "config": OmegaConf.to_container(self.cfg, resolve=True, enum_to_str=True),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("ssrl", {})
        self.history = state.get("history", [])
        self.batches_trained = state.get("batches_trained", 0)
        self.skipped_steps = state.get("skipped_steps", 0)
