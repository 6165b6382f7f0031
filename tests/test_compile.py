"""trainer.compile=true compiles both encoders (the online one and branch B's own), and a short run keeps
a bounded number of graphs: both encoders share one code object (the encoder's ``forward``), whose
graphs count against dynamo's recompile limit (8), past which dynamo runs the function eagerly without
saying so. The backend is "eager" (dynamo's tracing and guards without code generation), so the counts
are those of any backend on this torch.

The run: the pre-fit validation batch, 2 training batches, then validation with its partial last batch
(41 val images in batches of 32). Graphs, per grad mode x train/eval mode x parameters' requires_grad:
JMI 3 (train with grad, train without (the MI probe's views), eval); SDMI-EMA 6 (those 3 for the online
encoder, 3 more for the target, whose parameters do not require grad)."""

from __future__ import annotations

import functools

import pytest
import pytorch_lightning as pl
import torch
from torch._dynamo.utils import counters

from tests.test_mechanisms import build

GRAPHS = {"jmi": 3, "sdmi-ema": 6}
OVERRIDES = {"jmi": ["paradigm=jmi"], "sdmi-ema": ["paradigm=sdmi", "predictor=mlp", "paradigm.target_update=ema"]}


@pytest.mark.parametrize("form", list(GRAPHS))
def test_a_compiled_run_stays_within_its_graphs(config, monkeypatch, form):
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    counters.clear()
    model, data = build(config(*OVERRIDES[form], "trainer.compile=true"))
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=2,
        num_sanity_val_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    try:
        trainer.fit(model, data)
        graphs = counters["stats"]["unique_graphs"]
    finally:
        torch._dynamo.reset()
    encoders = [m for m in (model.online, model.target) if m is not None]
    assert all(m._compiled_call_impl is not None for m in encoders)  # both encoders compiled
    assert len(encoders) == (2 if form == "sdmi-ema" else 1)
    assert graphs == GRAPHS[form] < torch._dynamo.config.recompile_limit
