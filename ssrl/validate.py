"""Rules on config fields, checked before any work; each failure names the field and what is allowed.

Types and field names are checked by the schemas of ``ssrl.config`` while the config is composed; the
range of every numeric field is in one table here (``RANGES``); then the rules that span fields.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import OmegaConf

from ssrl.data.datasets import LOADERS, check_available
from ssrl.errors import ConfigError
from ssrl.mi.critics import UNBOUNDED
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
#: Lightning's precisions that keep the weights in 32 (or 64) bits; "16" and "bf16" are its old names of
#: the mixed ones. Weights held in 16 bits (16-true, bf16-true) are refused: the views, the probes and the
#: MI probe feed float32 into them, and SGD steps below their resolution would be lost.
PRECISIONS = ("auto", "32-true", "32", "64-true", "64", "16-mixed", "16", "bf16-mixed", "bf16")


@dataclass(frozen=True)
class Range:
    """Finite numbers from ``low`` to ``high`` (None: unbounded; ``open_low`` / ``open_high``: that end
    excluded; integers only with ``integer``) and the ``also`` values. ``subject`` and ``note`` go into the
    error: "<field>=<value>: <subject> must be <range> (<note>)"."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False
    integer: bool = False
    also: tuple[Any, ...] = ()
    subject: str = ""
    note: str = ""

    def allows(self, value: Any) -> bool:
        if any(value is v or (v is not None and value is not None and value == v) for v in self.also):
            return True
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.integer and not isinstance(value, int):
            return False
        low_ok = self.low is None or (value > self.low if self.open_low else value >= self.low)
        return low_ok and (self.high is None or (value < self.high if self.open_high else value <= self.high))

    def __str__(self) -> str:
        low, high = (x if isinstance(x, int) or x is None else f"{x:g}" for x in (self.low, self.high))
        if self.low is not None and self.high is not None:
            text = f"in {'(' if self.open_low else '['}{low}, {high}{')' if self.open_high else ']'}"
        elif self.low is not None:
            text = f"{'>' if self.open_low else '>='} {low}"
        else:
            text = "a number"
        return " or ".join([text, *("null" if v is None else str(v) for v in self.also)])


@dataclass(frozen=True)
class AnyOf:
    """A value that one of ``ranges`` allows; ``subject`` and ``note`` as Range's."""

    ranges: tuple[Range, ...]
    subject: str = ""
    note: str = ""

    def allows(self, value: Any) -> bool:
        return any(r.allows(value) for r in self.ranges)

    def __str__(self) -> str:
        return " or ".join(str(r) for r in self.ranges)


POSITIVE = Range(0, open_low=True)
NON_NEGATIVE = Range(0)
PROBABILITY = Range(0, 1, subject="a probability")
FRACTION = Range(0, 1, open_low=True, open_high=True)
SEED = Range(0, 2**32, open_high=True, integer=True)
COUNT = Range(1, integer=True)  # widths, steps, sizes
#: Lightning's limit_*_batches: a fraction of the loader's batches (1.0: all) or a number of batches.
BATCHES = AnyOf((Range(0, 1, open_low=True), COUNT), note="a fraction of the batches, or a number of batches")

#: The range of every numeric field (ssrl/config.py, field by field); a field a config lacks (a data set's
#: or a marginal's own) is skipped. A list field's every value must be in range.
RANGES: dict[str, Range | AnyOf] = {
    "paradigm.e_steps": COUNT,
    "paradigm.m_steps": COUNT,
    "paradigm.ema_momentum": Range(0, 1, open_high=True),
    "estimator.tau": POSITIVE,
    "marginal.invariance": NON_NEGATIVE,
    "marginal.variance": NON_NEGATIVE,
    "marginal.covariance": NON_NEGATIVE,
    "predictor.hidden_dim": COUNT,
    "predictor.lr_scale": POSITIVE,
    "backbone.in_channels": COUNT,
    "backbone.width": COUNT,
    "backbone.projector_hidden_dim": COUNT,
    "backbone.projector_dim": COUNT,
    "backbone.projector_layers": COUNT,
    "data.batch_size": Range(2, integer=True, note="the marginal term needs negative pairs"),
    "data.image_size": COUNT,
    "data.channels": COUNT,
    "data.num_workers": Range(0, integer=True),
    "data.val_fraction": FRACTION,
    "data.test_fraction": FRACTION,
    "data.split_seed": SEED,
    "data.num_samples": COUNT,
    "data.num_classes": Range(2, integer=True),
    "data.noise": NON_NEGATIVE,
    "data.digit_min": COUNT,
    "data.digit_max": COUNT,
    "data.renders": COUNT,
    "data.decode_size": COUNT,
    "data.views.crop_scale": Range(0, 1, open_low=True),
    "data.views.crop_ratio": POSITIVE,
    "data.views.flip_p": PROBABILITY,
    "data.views.jitter_p": PROBABILITY,
    "data.views.brightness": NON_NEGATIVE,
    "data.views.contrast": NON_NEGATIVE,
    "data.views.saturation": NON_NEGATIVE,
    "data.views.hue": Range(0, 0.5),
    "data.views.grayscale_p": PROBABILITY,
    "data.views.blur_p": PROBABILITY,
    "data.views.solarize_p": PROBABILITY,
    "data.views.mean": Range(),
    "data.views.std": POSITIVE,
    "optim.lr": POSITIVE,
    "optim.momentum": Range(0, 1, open_high=True),
    "optim.weight_decay": NON_NEGATIVE,
    "optim.warmup_epochs": NON_NEGATIVE,
    "trainer.num_nodes": COUNT,
    "trainer.max_epochs": COUNT,
    "trainer.max_steps": Range(1, integer=True, also=(-1,), note="-1: no limit"),
    "trainer.limit_train_batches": BATCHES,
    "trainer.limit_val_batches": BATCHES,
    "trainer.check_val_every_n_epoch": COUNT,
    "trainer.log_every_n_steps": COUNT,
    "trainer.accumulate_grad_batches": COUNT,
    "trainer.gradient_clip_val": Range(0, also=(None,), note="0 or null: no clipping"),
    "eval.knn_k": COUNT,
    "eval.knn_temperature": POSITIVE,
    "eval.online_probe_lr": POSITIVE,
    "eval.collapse_std_fraction": NON_NEGATIVE,
    "eval.collapse_min_rank": NON_NEGATIVE,
    "eval.mi_probe_every_n_epochs": Range(0, integer=True, note="0 turns the MI probe off"),
    "eval.mi_probe_max_images": Range(2, integer=True, note="the probe scores pairs against pairs"),
    "eval.baseline_inits": Range(2, integer=True, note="the baseline's interval needs 2 inits"),
    "seed": SEED,
    "checkpoint_every_minutes": Range(0, note="0: after every batch"),
}

_ABSENT = object()


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise ConfigError(message)


def check_ranges(cfg: Any) -> None:
    """Raise ConfigError naming the first field of ``RANGES`` whose value (or a value of its list) is out
    of range, and what the field allows."""
    for field, allowed in RANGES.items():
        value = OmegaConf.select(cfg, field, default=_ABSENT)
        if value is _ABSENT:
            continue
        values = list(value) if OmegaConf.is_list(value) else [value]
        shown = values if OmegaConf.is_list(value) else value
        bad = [v for v in values if not allowed.allows(v)]
        if bad:
            subject = f"{allowed.subject} " if allowed.subject else ""
            infinite = any(isinstance(v, float) and not math.isfinite(v) for v in bad)
            note = f" ({allowed.note})" if allowed.note else ""
            raise ConfigError(f"{field}={shown}: {subject}must be {'finite and ' if infinite else ''}{allowed}{note}")


def validate(cfg: Any) -> None:
    """Raise ConfigError on the first rule the config breaks: a choice, a range (``RANGES``), then the
    rules that span fields."""
    for f, allowed in CHOICES.items():
        value = OmegaConf.select(cfg, f)
        _require(value in allowed, f"{f}={value} is not allowed; allowed: {', '.join(allowed)}")
    check_ranges(cfg)
    precision = str(cfg.trainer.precision)
    _require(
        precision in PRECISIONS,
        f"trainer.precision={precision} is not supported"
        + (
            ": weights held in 16 bits; use bf16-mixed or 16-mixed (16-bit compute, 32-bit weights)"
            if "-true" in precision
            else ""
        )
        + f"; allowed: {', '.join(PRECISIONS)}",
    )
    paradigm = cfg.paradigm.name
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
    critic = getattr(cfg.estimator.critic, "value", cfg.estimator.critic)
    if critic in UNBOUNDED and cfg.marginal.name not in SURROGATES:  # the critic's scores train
        _require(
            cfg.estimator.name != "nwj",
            f"estimator=nwj with estimator.critic={critic}: NWJ's exp(S - 1) of an unbounded score overflows at "
            "the first batch; use estimator.critic=cosine, or estimator=cos_dv, infonce or jsd",
        )
        _require(
            bool(t.gradient_clip_val),
            f"estimator.critic={critic}: its scores grow with the embeddings' norm, without bound, and the loss "
            "overflows within a few batches; set trainer.gradient_clip_val (1.0 trains it), or use "
            "estimator.critic=cosine",
        )
    if paradigm == "sdmi":
        p = cfg.paradigm
        _require(
            t.accumulate_grad_batches == 1,
            f"trainer.accumulate_grad_batches={t.accumulate_grad_batches}: not supported with paradigm=sdmi, whose "
            "E-step and M-step alternate on every batch; use paradigm=jmi, or a larger data.batch_size",
        )
        _require(
            p.ema_momentum_end is None or p.ema_momentum <= p.ema_momentum_end <= 1.0,
            f"paradigm.ema_momentum_end={p.ema_momentum_end}: must be in [paradigm.ema_momentum, 1], or null",
        )
        _require(
            not (p.shared_weights and p.target_update == "ema"),
            "paradigm.shared_weights=true has no target of its own to average; use target_update=gradient",
        )
    views = cfg.data.views
    lo, hi = views.crop_scale
    _require(lo <= hi, f"data.views.crop_scale={list(views.crop_scale)}: need 0 < low <= high <= 1")
    lo, hi = views.crop_ratio
    _require(lo <= hi, f"data.views.crop_ratio={list(views.crop_ratio)}: need 0 < low <= high")
    _require(
        len(views.blur_p) == 2 and len(views.solarize_p) == 2,
        "data.views.blur_p and data.views.solarize_p take two probabilities: [view A, view B]",
    )
    channels = cfg.data.channels
    _require(
        len(views.mean) >= channels and len(views.std) >= channels,
        f"data.views.mean and data.views.std need {channels} values (data.channels), std > 0",
    )
    digits = (OmegaConf.select(cfg, "data.digit_min"), OmegaConf.select(cfg, "data.digit_max"))
    _require(
        None in digits or digits[0] <= digits[1],
        f"data.digit_max={digits[1]}: must be >= data.digit_min={digits[0]}",
    )
    check_available(cfg.data)


def check_device(trainer: Any) -> None:
    """Raise ConfigError when ``trainer`` asks for a CUDA GPU (accelerator gpu or cuda) and torch sees none:
    Lightning would fail later with "No supported gpu backend found!". Apart from ``validate``, which
    checks a config on any machine (an experiment file's GPU grid too); this checks the machine it runs on."""
    accelerator = str(trainer.accelerator)
    _require(
        accelerator not in ("gpu", "cuda") or torch.cuda.is_available(),
        f"trainer.accelerator={accelerator} (trainer=gpu): no CUDA device is visible to torch on this machine "
        "(torch.cuda.is_available() is False); run on the CPU with trainer=cpu",
    )


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
