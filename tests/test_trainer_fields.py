"""Trainer fields beyond the defaults: gradient clipping for both paradigms (SDMI clips its own updates,
under manual optimization), gradient accumulation for JMI, and a clear refusal of accumulation for SDMI."""

from __future__ import annotations

import pytest
import torch

from ssrl.paradigms.base import MIParadigm
from ssrl.run.job import train
from tests.conftest import compose_config


@pytest.mark.parametrize("paradigm", ["jmi", "sdmi"])
def test_gradient_clip_val_bounds_every_update(tmp_path, monkeypatch, paradigm):
    """Issue 12, case 9: trainer.gradient_clip_val=0.01 (norm): every update's gradient norm, measured after
    clipping, is at most 0.01; SDMI clips its E-step and its M-step (2 updates a batch)."""
    norms: list[float] = []
    clip = MIParadigm.clip_gradients

    def measured(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None):
        clip(self, optimizer, gradient_clip_val, gradient_clip_algorithm)
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    monkeypatch.setattr(MIParadigm, "clip_gradients", measured)
    summary = train(compose_config(f"paradigm={paradigm}", "trainer.gradient_clip_val=0.01"), tmp_path, [])
    assert summary["status"] == "completed" and summary["steps"] == 2
    assert len(norms) == (4 if paradigm == "sdmi" else 2)
    assert max(norms) <= 0.01 * (1 + 1e-4), norms
