"""trainer.compile=true compiles the online encoder, and a short run keeps a bounded number of graphs:
they count against dynamo's recompile limit (8) on the encoder's ``forward``, past which dynamo runs it
eagerly without saying so. The backend is "eager" (dynamo's tracing and guards without code
generation), so the counts are those of any backend on this torch.

The run: the pre-fit validation batch, 2 training batches, then validation with its partial last batch
(41 val images in batches of 32). Graphs: eval at batch 32, training with grad, eval on the partial
batch (the batch size made dynamic); SDMI's refresh pass (training mode without grad) adds one. A full
tiny ``ssrl-train`` run adds the untrained evaluation (inference mode), the MI probe and the export:
6 graphs for SDMI (docs/benchmarks.md). SDMI's target stays eager: compiled too, it shares the code
object, and a full SDMI-EMA run reached the limit (8 graphs, then eager)."""

from __future__ import annotations

import functools

import pytest
import torch
from torch._dynamo.utils import counters

from tests.conftest import two_batch_trainer
from tests.test_mechanisms import build

GRAPHS = {"jmi": 3, "sdmi": 4}
OVERRIDES = {"jmi": ["paradigm=jmi"], "sdmi": ["paradigm=sdmi", "predictor=mlp", "paradigm.refresh=true"]}


@pytest.mark.parametrize("form", list(GRAPHS))
def test_a_compiled_run_stays_within_its_graphs(config, monkeypatch, form):
    monkeypatch.setattr(torch, "compile", functools.partial(torch.compile, backend="eager"))
    torch._dynamo.reset()
    counters.clear()
    model, data = build(config(*OVERRIDES[form], "trainer.compile=true"))
    trainer = two_batch_trainer(limit_val_batches=1.0, num_sanity_val_steps=1)  # validation compiles too
    try:
        trainer.fit(model, data)
        graphs = counters["stats"]["unique_graphs"]
    finally:
        torch._dynamo.reset()
    assert model.online._compiled_call_impl is not None
    assert graphs == GRAPHS[form] < torch._dynamo.config.recompile_limit
