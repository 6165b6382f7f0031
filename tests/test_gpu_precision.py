"""Precision on a GPU, shown on the CPU: SDMI's clip under 16-mixed's loss scaling (issue 23, break 4)
and the bf16 default only where bf16 is native (break 6)."""

from __future__ import annotations

import pytorch_lightning as pl
import torch
from pytorch_lightning.plugins.precision import MixedPrecision

from ssrl.data.module import SSLDataModule
from ssrl.paradigms.base import MIParadigm
from ssrl.paradigms.sdmi import SDMI
from ssrl.run.job import device_defaults
from tests.conftest import two_batch_trainer

CLIP = MIParadigm.clip_gradients


def clipped_norms(cfg, monkeypatch, plugins: list) -> list[float]:
    """The gradient norm each SDMI update's clip sees, over one batch trained with ``plugins``."""
    norms: list[float] = []

    def measured(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))
        CLIP(self, optimizer, gradient_clip_val, gradient_clip_algorithm)

    monkeypatch.setattr(MIParadigm, "clip_gradients", measured)
    pl.seed_everything(0)
    data = SSLDataModule(cfg.data, cfg.seed)
    model = SDMI(cfg, data.num_classes)
    trainer = two_batch_trainer(1, plugins=plugins)
    trainer.fit(model, data)
    return norms


def test_sdmi_clips_the_unscaled_gradient_under_16_mixed(config, monkeypatch):
    """16-mixed multiplies the loss by its scale (8192 here) and unscales the gradients only inside
    optimizer.step(); SDMI's clip must see the true norm, as a 32-bit run's clip does."""
    cfg = config("paradigm=sdmi", "trainer.gradient_clip_val=0.01")
    true = clipped_norms(cfg, monkeypatch, [])
    scaler = torch.amp.GradScaler("cpu", init_scale=8192.0)
    mixed = clipped_norms(cfg, monkeypatch, [MixedPrecision("16-mixed", "cpu", scaler=scaler)])
    assert len(true) == len(mixed) == 2  # the E-step and the M-step
    assert min(true) > 0.01  # every update is clipped
    assert all(abs(m / t - 1) < 0.2 for m, t in zip(mixed, true, strict=True)), (mixed, true)


def test_bf16_is_the_default_only_where_it_is_native(config, monkeypatch):
    """A V100 or T4 (compute capability 7.x) emulates bf16, slowly, though is_bf16_supported() says True."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    chosen = {}
    for name, capabilities in {"V100": [(7, 0)] * 2, "A100": [(8, 0)] * 2, "H100+T4": [(9, 0), (7, 5)]}.items():
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=0, c=capabilities: c[i])
        cfg = config("trainer=gpu")
        device_defaults(cfg)
        chosen[name] = cfg.trainer.precision
    assert chosen == {"V100": "32-true", "A100": "bf16-mixed", "H100+T4": "32-true"}
    cpu = config("trainer=cpu")
    device_defaults(cpu)
    assert cpu.trainer.precision == "32-true"
