"""Rules that span config fields, checked before any work; each failure names the field and what is allowed.

Types and field names are checked by the schemas of ``ssrl.config`` while the config is composed.
"""

from __future__ import annotations

import math
from typing import Any

from omegaconf import OmegaConf

from ssrl.data.datasets import LOADERS, check_available
from ssrl.errors import ConfigError
from ssrl.mi.estimators import ESTIMATORS
from ssrl.mi.objective import MARGINALS, SURROGATES
from ssrl.nets.backbones import BACKBONES

CHOICES = {
    "paradigm.name": ("jmi", "sdmi"),
    "estimator.name": tuple(ESTIMATORS),
    "marginal.name": MARGINALS,
    "predictor.name": ("none", "mlp"),
    "backbone.name": tuple(BACKBONES),
    "data.name": tuple(LOADERS),
    "on_nonfinite_loss": ("stop", "skip"),
    "trainer.gradient_clip_algorithm": ("norm", "value"),
}


def _get(cfg: Any, dotted: str) -> Any:
    node = cfg
    for part in dotted.split("."):
        node = node[part]
    return node


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def _positive(cfg: Any, *fields: str) -> None:
    for f in fields:
        value = _get(cfg, f)
        _require(value > 0, f"{f}={value}: must be > 0")


def _probability(cfg: Any, *fields: str) -> None:
    for f in fields:
        value = _get(cfg, f)
        values = list(value) if OmegaConf.is_list(value) else [value]
        _require(
            all(0.0 <= v <= 1.0 for v in values),
            f"{f}={values if len(values) > 1 else value}: a probability must be in [0, 1]",
        )


def validate(cfg: Any) -> None:
    """Raise ConfigError on the first rule the config breaks."""
    for f, allowed in CHOICES.items():
        value = _get(cfg, f)
        _require(value in allowed, f"{f}={value} is not allowed; allowed: {', '.join(allowed)}")
    paradigm = cfg.paradigm.name
    _positive(
        cfg,
        "estimator.tau",
        "optim.lr",
        "trainer.max_epochs",
        "eval.knn_k",
        "eval.knn_temperature",
        "checkpoint_every_n_steps",
        "backbone.projector_dim",
        "backbone.width",
    )
    probe = cfg.eval
    _require(
        probe.mi_probe_every_n_epochs >= 0,
        f"eval.mi_probe_every_n_epochs={probe.mi_probe_every_n_epochs}: must be >= 0 (0 turns the MI probe off)",
    )
    _require(
        probe.mi_probe_max_images >= 2,
        f"eval.mi_probe_max_images={probe.mi_probe_max_images}: must be >= 2 (the probe scores pairs against pairs)",
    )
    _require(
        probe.baseline_inits >= 2,
        f"eval.baseline_inits={probe.baseline_inits}: must be >= 2 (the baseline's interval needs 2 inits)",
    )
    _require(
        cfg.data.batch_size >= 2,
        f"data.batch_size={cfg.data.batch_size}: must be >= 2 (the marginal term needs negative pairs)",
    )
    _require(
        isinstance(cfg.seed, int) and 0 <= cfg.seed < 2**32,
        f"seed={cfg.seed}: must be an integer in [0, 2**32)",
    )
    weight = cfg.marginal.weight
    if cfg.marginal.name in SURROGATES:
        _require(math.isfinite(weight) and weight >= 0, f"marginal.weight={weight}: must be a finite number >= 0")
    else:
        _require(
            math.isfinite(weight) and 0 <= weight <= 1,
            f"marginal.weight={weight}: lambda, the weight of the marginal term, must be in [0, 1]",
        )
    if cfg.marginal.name in SURROGATES:
        _require(
            paradigm == "jmi",
            f"marginal={cfg.marginal.name} is a JMI surrogate; with paradigm=sdmi use marginal=exact or marginal=none",
        )
    _require(
        cfg.predictor.name == "none" or paradigm == "sdmi",
        f"predictor={cfg.predictor.name} sits on SDMI's online branch; with paradigm=jmi use predictor=none",
    )
    t = cfg.trainer
    accumulate = t.accumulate_grad_batches
    _require(accumulate >= 1, f"trainer.accumulate_grad_batches={accumulate}: must be >= 1")
    clip = t.gradient_clip_val
    _require(clip is None or clip >= 0, f"trainer.gradient_clip_val={clip}: must be >= 0 (0 or null: no clipping)")
    if paradigm == "sdmi":
        p = cfg.paradigm
        _require(
            t.accumulate_grad_batches == 1,
            f"trainer.accumulate_grad_batches={t.accumulate_grad_batches}: not supported with paradigm=sdmi, whose "
            "E-step and M-step alternate on every batch; use paradigm=jmi, or a larger data.batch_size",
        )
        _require(p.e_steps >= 1 and p.m_steps >= 1, "paradigm.e_steps and paradigm.m_steps must be >= 1")
        _require(0.0 <= p.ema_momentum < 1.0, f"paradigm.ema_momentum={p.ema_momentum}: must be in [0, 1)")
        _require(
            p.ema_momentum_end is None or p.ema_momentum <= p.ema_momentum_end <= 1.0,
            f"paradigm.ema_momentum_end={p.ema_momentum_end}: must be in [paradigm.ema_momentum, 1], or null",
        )
        _require(
            not (p.shared_weights and p.target_update == "ema"),
            "paradigm.shared_weights=true has no target of its own to average; use target_update=gradient",
        )
    _require(
        cfg.backbone.projector_layers >= 1,
        f"backbone.projector_layers={cfg.backbone.projector_layers}: must be >= 1",
    )
    views = cfg.data.views
    lo, hi = views.crop_scale
    _require(0 < lo <= hi <= 1, f"data.views.crop_scale={list(views.crop_scale)}: need 0 < low <= high <= 1")
    lo, hi = views.crop_ratio
    _require(0 < lo <= hi, f"data.views.crop_ratio={list(views.crop_ratio)}: need 0 < low <= high")
    _require(
        len(views.blur_p) == 2 and len(views.solarize_p) == 2,
        "data.views.blur_p and data.views.solarize_p take two probabilities: [view A, view B]",
    )
    _probability(
        cfg,
        "data.views.flip_p",
        "data.views.jitter_p",
        "data.views.grayscale_p",
        "data.views.blur_p",
        "data.views.solarize_p",
    )
    channels = cfg.data.channels
    _require(
        len(views.mean) >= channels and len(views.std) >= channels and min(views.std) > 0,
        f"data.views.mean and data.views.std need {channels} values (data.channels), std > 0",
    )
    for f in ("val_fraction", "test_fraction"):
        if f in cfg.data:
            _require(0 < cfg.data[f] < 1, f"data.{f}={cfg.data[f]}: must be in (0, 1)")
    check_available(cfg.data)


def world_size(trainer: Any) -> int:
    """Processes that share a global batch: trainer.devices (a count or a list) x trainer.num_nodes;
    1 for devices="auto" or -1, which only the Trainer resolves."""
    devices = trainer.devices
    if OmegaConf.is_list(devices) or isinstance(devices, (list, tuple)):
        count = len(devices)
    elif isinstance(devices, str) and devices.strip().isdigit():
        count = int(devices)
    elif isinstance(devices, str) and "," in devices:
        count = len([d for d in devices.split(",") if d.strip()])
    else:
        count = devices if isinstance(devices, int) and devices > 0 else 1
    return count * trainer.num_nodes


def check_sizes(cfg: Any, train_size: int, held_out_size: int, processes: int | None = None) -> None:
    """The training split must fill one global batch (data.batch_size per process), and the val split
    one batch, at whose N the held-out MI is measured; otherwise a run would train 0 steps or report no MI."""
    batch, processes = cfg.data.batch_size, processes or world_size(cfg.trainer)
    need = batch * processes
    per = f" ({batch} per process x {processes} processes)" if processes > 1 else ""
    _require(
        train_size >= need,
        f"data.batch_size={batch}: the training split holds {train_size} images, fewer than one batch of "
        f"{need}{per}, so no step would train; lower data.batch_size (or use more data)",
    )
    _require(
        held_out_size >= batch,
        f"data.batch_size={batch}: the val split holds {held_out_size} images, fewer than one batch, so "
        "the held-out MI (measured at N = data.batch_size) could not be estimated; lower data.batch_size "
        "(or use more data)",
    )
