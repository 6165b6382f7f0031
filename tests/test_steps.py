"""One unit of steps in both paradigms: trainer.max_steps, the learning-rate schedules, the warm-up and
the EMA momentum all count batches trained, in every path (skipped non-finite updates included)."""

from __future__ import annotations

import math

import pytest
import pytorch_lightning as pl
import torch

from ssrl.data.module import SSLDataModule
from ssrl.run.job import PARADIGMS

SDMI_FORMS = {
    "sdmi-gradient": ["paradigm=sdmi"],
    "sdmi-ema": ["paradigm=sdmi", "paradigm.target_update=ema", "predictor=mlp"],
    "sdmi-shared": ["paradigm=sdmi", "paradigm.shared_weights=true", "predictor=mlp", "marginal=none"],
}
FORMS = {"jmi": ["paradigm=jmi"], **SDMI_FORMS}


class Record(pl.Callback):
    """After every training batch: the learning rate of each optimizer's first group, global_step."""

    def __init__(self) -> None:
        self.lrs: list[list[float]] = []
        self.steps: list[int] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.lrs.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])
        self.steps.append(trainer.global_step)


def fit(cfg, max_epochs: int, max_steps: int = -1, model_hook=None):
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    if model_hook is not None:
        model_hook(model)
    record = Record()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=max_epochs,
        max_steps=max_steps,
        limit_train_batches=cfg.trainer.limit_train_batches,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[record],
    )
    trainer.fit(model, data)
    return model, record, trainer


@pytest.mark.parametrize("form", list(FORMS))
def test_max_steps_counts_batches_and_schedules_end_together(config, form):
    """3 batches an epoch, max_epochs=3, max_steps=6: 6 batches in every form, and every schedule
    reaches lr 0 at the last batch (the issue measured SDMI training half the batches of JMI, ending
    at half the learning rate)."""
    cfg = config(*FORMS[form], "trainer.limit_train_batches=3")
    model, record, trainer = fit(cfg, max_epochs=3, max_steps=6)
    assert model.batches_trained == 6 and trainer.global_step == 6
    assert record.steps == list(range(1, 7))
    assert model.total_batches == 6
    assert record.lrs[-1] == [0.0] * len(record.lrs[-1])
    assert all(lr > 0 for lrs in record.lrs[:-1] for lr in lrs)
    for lrs in record.lrs:  # SDMI's two schedules in step
        assert lrs == [lrs[0]] * len(lrs)


@pytest.mark.parametrize("form", ["jmi", "sdmi-gradient"])
@pytest.mark.parametrize(("max_epochs", "max_steps"), [(5, 6), (2, -1)])
def test_warmup_lasts_real_epochs_whichever_limit_ends_the_run(config, form, max_epochs, max_steps):
    """optim.warmup_epochs=1 with 3 batches an epoch: a 3-batch warm-up, whether max_steps or
    max_epochs ends the 6-batch run (before, total // max_epochs gave 1 batch with max_epochs=5)."""
    cfg = config(*FORMS[form], "trainer.limit_train_batches=3", "optim.warmup_epochs=1")
    model, record, _ = fit(cfg, max_epochs=max_epochs, max_steps=max_steps)
    lr = cfg.optim.lr
    first = [lrs[0] for lrs in record.lrs]
    assert len(first) == 6
    # after batch k (1-based) the scheduler has stepped k times: warm-up factor (k + 1) / 3 for k < 3
    assert first[:2] == pytest.approx([lr * 2 / 3, lr])
    assert first[2] == pytest.approx(lr)  # warm-up done, cosine starts at 1
    assert first[3] == pytest.approx(lr * 0.5 * (1 + math.cos(math.pi * 1 / 3)))
    assert first[-1] == 0.0


@pytest.mark.parametrize("form", list(FORMS))
def test_skipped_updates_still_advance_every_schedule(config, form):
    """on_nonfinite_loss=skip with every loss NaN: no weight moves, but the schedules advance one
    batch per batch in both paradigms (measured before: JMI's lr decayed while SDMI's stayed at 0.05)."""
    cfg = config(*FORMS[form], "trainer.limit_train_batches=2", "on_nonfinite_loss=skip")

    def poison(model):
        objective = model.objective.forward

        def poisoned(a, b):
            step = objective(a, b)
            return type(step)(step.loss * float("nan"), step.terms, step.scores)

        model.objective.forward = poisoned
        model.before = [p.detach().clone() for p in model.parameters()]

    model, record, trainer = fit(cfg, max_epochs=2, model_hook=poison)
    assert model.skipped_steps == 4 and model.batches_trained == 4 and trainer.global_step == 4
    assert all(torch.equal(p, q) for p, q in zip(model.before, model.parameters(), strict=True))
    assert record.lrs[-1] == [0.0] * len(record.lrs[-1])
    for lrs in record.lrs:
        assert lrs == [lrs[0]] * len(lrs)
