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
    finite = MIParadigm.finite

    def nan_in_batch_3_m_step(self, loss):
        calls[self.batches_trained] = calls.get(self.batches_trained, 0) + 1
        if self.batches_trained == 3 and calls[3] == 2:  # the E-step's check comes first, then the M-step's
            loss = loss * float("nan")
        return finite(self, loss)

    monkeypatch.setattr(MIParadigm, "finite", nan_in_batch_3_m_step)
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


def test_a_full_disk_is_one_line_with_no_temporary_file_left(tmp_path, monkeypatch, capsys):
    """Issue 25, case 11: the disk fills while the first checkpoint is written (simulated: the write stops
    after 1000 bytes with ENOSPC). One line naming the folder and the bytes the checkpoint needs, the
    temporary file removed, summary.json "failed" with that line, exit 1."""
    import errno
    import os
    import sys
    from pathlib import Path

    from ssrl import train as ssrl_train
    from ssrl.run.summary import read_summary
    from tests.conftest import TINY

    write_bytes, needed = Path.write_bytes, []

    def disk_full(self, data):
        if self.parent.name != "checkpoints":
            return write_bytes(self, data)
        needed.append(memoryview(data).nbytes)
        write_bytes(self, bytes(data[:1000]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", disk_full)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *TINY, "checkpoint_every_n_steps=1", "hydra.run.dir=R"])
    with pytest.raises(SystemExit) as exit_info:
        ssrl_train.main()
    assert exit_info.value.code == 1
    run = tmp_path / "R"
    line = f"{run / 'checkpoints'}: no space left for the checkpoint: it needs {needed[0]} bytes"
    err = capsys.readouterr().err
    assert [x for x in err.splitlines() if "no space" in x][0].startswith(f"ssrl-train: R failed: {line}")
    assert "Traceback" not in err
    assert list((run / "checkpoints").iterdir()) == []  # no .last.ckpt.tmp keeping the disk full
    summary = read_summary(run)
    assert summary["status"] == "failed" and summary["error"].startswith(line) and "bytes are free" in summary["error"]
    assert needed[0] > 10**6  # the whole checkpoint's bytes, not the 1000 written
