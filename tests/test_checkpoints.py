"""Checkpoints: written every checkpoint_every_n_steps batches trained in every path (SDMI, a skipped
update, gradient accumulation), and loaded with weights_only=True."""

from __future__ import annotations

import pytest
import torch

from ssrl.paradigms.base import MIParadigm
from ssrl.run.callbacks import AtomicCheckpointIO
from ssrl.run.job import train
from tests.conftest import compose_config

#: 6 batches in one epoch (320 images: 64 test, 52 val, 204 to train on, 6 batches of 32).
SIX = ["data.num_samples=320", "trainer.limit_train_batches=6", "trainer.max_epochs=1"]


@pytest.fixture
def saved(monkeypatch):
    """The batch count of every checkpoint the run writes, in order (recorded, not written to disk:
    a ResNet-18 checkpoint is ~100 MB)."""
    counts: list[int] = []

    def record(self, checkpoint, path, storage_options=None):
        counts.append(checkpoint["ssrl"]["batches_trained"])

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", record)
    return counts


def test_sdmi_keeps_its_cadence_past_a_skipped_m_step(tmp_path, monkeypatch, saved):
    """Issue 12, case 3: batch 3's M-step loss is non-finite and skipped (on_nonfinite_loss=skip)."""
    calls: dict[int, int] = {}
    allowed = MIParadigm.update_allowed

    def nan_in_batch_3_m_step(self, loss, parameters):
        calls[self.batches_trained] = calls.get(self.batches_trained, 0) + 1
        if self.batches_trained == 3 and calls[3] == 2:  # the E-step's check comes first, then the M-step's
            loss = loss * float("nan")
        return allowed(self, loss, parameters)

    monkeypatch.setattr(MIParadigm, "update_allowed", nan_in_batch_3_m_step)
    cfg = compose_config("paradigm=sdmi", "checkpoint_every_n_steps=2", "on_nonfinite_loss=skip", *SIX)
    summary = train(cfg, tmp_path, [])
    assert summary["skipped_steps"] == 1 and summary["steps"] == 6
    assert saved == [2, 4, 6, 6]  # every 2 batches (Lightning's step count stopped after 2), then the final one


@pytest.mark.parametrize(("every", "expected"), [(2, [2, 4, 6]), (3, [4, 6])])
def test_jmi_with_accumulation_counts_batches(tmp_path, saved, every, expected):
    """accumulate_grad_batches=2: one optimizer step per 2 batches, the cadence still in batches; a
    multiple of 3 that falls inside an accumulation window waits for its end (3 -> 4)."""
    cfg = compose_config(f"checkpoint_every_n_steps={every}", "trainer.accumulate_grad_batches=2", *SIX)
    summary = train(cfg, tmp_path, [])
    assert summary["steps"] == 6
    assert saved == [*expected, 6]


def test_checkpoint_loads_with_weights_only(tmp_path):
    """Issue 12, case 10: a checkpoint holds tensors, plain containers and strings: torch.load with
    weights_only=True reads it (SDMI with an EMA target: two encoders, the averaged model's counter)."""
    cfg = compose_config("paradigm=sdmi", "paradigm.target_update=ema", "predictor=mlp")
    train(cfg, tmp_path, [])
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert checkpoint["ssrl"]["config"]["paradigm"]["target_update"] == "ema"
    assert checkpoint["ssrl"]["batches_trained"] == 2
