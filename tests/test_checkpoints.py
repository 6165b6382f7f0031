"""Checkpoints: written every checkpoint_every_minutes of training in every path (SDMI, a skipped
update, gradient accumulation), timed here by a fake clock that advances one minute per batch, and
loaded with weights_only=True."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from ssrl.paradigms.base import MIParadigm
from ssrl.run.callbacks import AtomicCheckpointIO, PeriodicCheckpoint
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


@pytest.fixture
def minute_per_batch(monkeypatch):
    """PeriodicCheckpoint's clock reads one minute more after each batch starts (no sleeping)."""
    now = {"s": 0.0}
    start = MIParadigm.on_train_batch_start

    def ticking(self, batch, batch_idx):
        start(self, batch, batch_idx)
        now["s"] = 60.0 * self.batches_trained

    monkeypatch.setattr(MIParadigm, "on_train_batch_start", ticking)
    monkeypatch.setattr(PeriodicCheckpoint, "clock", staticmethod(lambda: now["s"]))


def test_sdmi_keeps_its_cadence_past_a_skipped_m_step(tmp_path, monkeypatch, saved, minute_per_batch):
    """Issue 12, case 3: batch 3's M-step loss is non-finite and skipped (on_nonfinite_loss=skip)."""
    calls: dict[int, int] = {}
    allowed = MIParadigm.update_allowed

    def nan_in_batch_3_m_step(self, loss, parameters):
        calls[self.batches_trained] = calls.get(self.batches_trained, 0) + 1
        if self.batches_trained == 3 and calls[3] == 2:  # the E-step's check comes first, then the M-step's
            loss = loss * float("nan")
        return allowed(self, loss, parameters)

    monkeypatch.setattr(MIParadigm, "update_allowed", nan_in_batch_3_m_step)
    cfg = compose_config("paradigm=sdmi", "checkpoint_every_minutes=2", "on_nonfinite_loss=skip", *SIX)
    summary = train(cfg, tmp_path, [])
    assert summary["skipped_steps"] == 1 and summary["steps"] == 6
    assert saved == [2, 4, 6, 6]  # every 2 minutes (2 batches), then the final one


@pytest.mark.parametrize(("every", "expected"), [(2, [2, 4, 6]), (3, [4])])
def test_jmi_with_accumulation_waits_for_the_window(tmp_path, saved, minute_per_batch, every, expected):
    """accumulate_grad_batches=2: a checkpoint due inside an accumulation window (3 minutes: after batch
    3) waits for its end (batch 4), and the next is due 3 minutes after that one was written."""
    cfg = compose_config(f"checkpoint_every_minutes={every}", "trainer.accumulate_grad_batches=2", *SIX)
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
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *TINY, "checkpoint_every_minutes=0", "hydra.run.dir=R"])
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


class Clock:
    """A PeriodicCheckpoint's world, without training: the minutes on the clock, the saves asked for."""

    def __init__(self, log_every: int) -> None:
        self.minutes, self.saves = 0.0, 0
        self.trainer = SimpleNamespace(
            log_every_n_steps=log_every,
            accumulate_grad_batches=1,
            should_stop=False,
            strategy=SimpleNamespace(broadcast=lambda obj, src: obj),
            save_checkpoint=lambda path, weights_only: setattr(self, "saves", self.saves + 1),
        )
        self.module = SimpleNamespace(batches_trained=0)

    def read(self) -> float:
        return 60.0 * self.minutes


@pytest.mark.parametrize(
    ("every", "log_every", "expected"), [(10, 1, [10, 20, 30]), (10, 4, [12, 24]), (0, 4, list(range(1, 31)))]
)
def test_checkpoints_fall_on_the_first_check_past_the_interval(monkeypatch, every, log_every, expected):
    """A batch a minute for 30 minutes, a checkpoint every 10: the clock is checked on every
    log_every_n_steps-th batch, so with 4 the first checkpoint falls on batch 12 (the first check at or
    past 10 minutes) and the next 10 minutes after it; every_minutes=0 writes after every batch."""
    world = Clock(log_every)
    monkeypatch.setattr(PeriodicCheckpoint, "clock", staticmethod(world.read))
    callback = PeriodicCheckpoint(None, every)
    callback.on_train_start(world.trainer, world.module)
    for batch in range(30):
        world.minutes = world.module.batches_trained = batch + 1
        callback.on_train_batch_end(world.trainer, world.module, None, None, batch)
    assert callback.saved == expected and world.saves == len(expected)
