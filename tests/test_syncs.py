"""No host sync in a training step (issue 24): through real training steps of each paradigm, with ssrl's
own Trainer (progress bar on), the calls that would make the host wait for a GPU are counted per batch:
none on a batch whose scalars Lightning does not log, a few on one that logs (Lightning copies each
logged scalar to the host there, and the non-finite check reads its note)."""

from __future__ import annotations

import collections

import pytest
import pytorch_lightning as pl
import torch

from ssrl.data.module import SSLDataModule
from ssrl.run import tensorboard
from ssrl.run.job import PARADIGMS, build_trainer, device_defaults
from tests.conftest import compose_config

#: Tensor methods that copy a device tensor's value to the host (and so wait for the device).
SYNCING = ("item", "cpu", "tolist", "numpy", "__bool__", "__float__", "__int__")
FORMS = {
    "jmi": ["paradigm=jmi"],
    "sdmi-gradient": ["paradigm=sdmi"],
    "sdmi-ema": ["paradigm=sdmi", "paradigm.target_update=ema", "predictor=mlp"],
}
BATCHES, LOG_EVERY = 4, 2
#: On a batch that logs: one copy per logged scalar (8 in SDMI: 7 and the EMA momentum with an EMA target,
#: which is copied to the device there too), and one read of the non-finite note (two on the epoch's last
#: batch: the epoch's end reads it again).
PER_LOGGING_BATCH = 11


class SyncCounter(pl.Callback):
    """Counts, per training batch (1-based), the syncing Tensor calls and the host numbers copied to a
    device (``torch.tensor(number, device=...)``, what self.log does with a Python float)."""

    def __init__(self, monkeypatch) -> None:
        self.batch = 0
        self.counts: collections.Counter = collections.Counter()
        self.calls: list[tuple[int, str]] = []
        for name in SYNCING:
            monkeypatch.setattr(torch.Tensor, name, self._counted(getattr(torch.Tensor, name), name))
        tensor = torch.tensor

        def counted_tensor(data, *args, **kwargs):
            if self.batch and kwargs.get("device") is not None:
                self._count("torch.tensor(device=...)")
            return tensor(data, *args, **kwargs)

        monkeypatch.setattr(torch, "tensor", counted_tensor)

    def _count(self, name: str) -> None:
        self.counts[self.batch] += 1
        self.calls.append((self.batch, name))

    def _counted(self, method, name: str):
        def counted(tensor, *args, **kwargs):
            if self.batch:
                self._count(name)
            return method(tensor, *args, **kwargs)

        return counted

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.batch += 1

    def on_train_end(self, trainer, pl_module) -> None:
        self.batch = 0


@pytest.mark.parametrize("form", list(FORMS))
def test_a_training_step_does_not_sync(tmp_path, monkeypatch, form):
    cfg = compose_config(
        *FORMS[form],
        "trainer=cpu",
        "trainer.precision=bf16-mixed",  # what a GPU run uses
        f"trainer.limit_train_batches={BATCHES}",
        "trainer.max_epochs=1",
        "trainer.limit_val_batches=0",
        f"trainer.log_every_n_steps={LOG_EVERY}",
        "logger=csv",
        "backbone.width=8",
    )
    device_defaults(cfg)
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    counter = SyncCounter(monkeypatch)
    trainer = build_trainer(cfg, tmp_path, [counter], tensorboard.single_run_place(tmp_path, []))
    trainer.fit(model, datamodule=data)
    assert model.batches_trained == BATCHES
    quiet = [b for b in range(1, BATCHES + 1) if b % LOG_EVERY]
    assert [c for c in counter.calls if c[0] in quiet] == []
    logging = {b: counter.counts[b] for b in range(LOG_EVERY, BATCHES + 1, LOG_EVERY)}
    assert all(0 < n <= PER_LOGGING_BATCH for n in logging.values()), logging
