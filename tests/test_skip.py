"""Skip means skip (issue 25, case 7): with on_nonfinite_loss=skip, an update whose loss is finite but
whose gradient is not leaves every weight, BatchNorm statistic and the optimizer's state bit-identical,
and is counted."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from ssrl.data.module import SSLDataModule
from ssrl.distributed import all_agree
from ssrl.run.job import PARADIGMS
from tests.conftest import compose_config, two_batch_trainer

POISONED_BATCH = 2  # the second: the optimizers have state (momentum) by then


def snapshot(model: pl.LightningModule, trainer: pl.Trainer) -> tuple[dict, list[dict]]:
    """Copies of every parameter and buffer (BatchNorm statistics), by name, and of every tensor in each
    optimizer's state."""
    params = {n: p.detach().clone() for n, p in model.state_dict().items()}
    states = [
        {(i, k): v.clone() for i, s in opt.state_dict()["state"].items() for k, v in s.items()}
        for opt in trainer.optimizers
    ]
    return params, states


def unchanged(before: dict, after: dict) -> bool:
    return before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)


class PoisonGradient(pl.Callback):
    """A NaN in one parameter's gradient during batch POISONED_BATCH only; what the model and the
    optimizers held before that batch and after it."""

    def __init__(self, parameter: torch.nn.Parameter) -> None:
        self.active = False
        parameter.register_hook(lambda g: g * float("nan") if self.active else g)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.active = pl_module.batches_trained + 1 == POISONED_BATCH
        if self.active:
            self.before = snapshot(pl_module, trainer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.active:
            self.after = snapshot(pl_module, trainer)
            self.active = False


@pytest.mark.parametrize(
    ("paradigm", "poisoned"),
    [("jmi", "online"), ("sdmi", "online"), ("sdmi", "target")],  # SDMI: in the E-step, or in the M-step
)
def test_a_non_finite_gradient_leaves_weights_and_optimizer_state_untouched(paradigm, poisoned):
    cfg = compose_config(f"paradigm={paradigm}", "on_nonfinite_loss=skip", "backbone.width=8")
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[paradigm](cfg, data.num_classes)
    poison = PoisonGradient(getattr(model, poisoned).backbone.conv1.weight)
    trainer = two_batch_trainer(batches=POISONED_BATCH, callbacks=(poison,))
    trainer.fit(model, data)
    assert model.skipped_steps == 1 and model.batches_trained == POISONED_BATCH
    (params, states), (params_after, states_after) = poison.before, poison.after
    assert states[0], "the optimizers have state before the poisoned batch"
    if poisoned == "online":  # the whole batch is skipped (SDMI: its M-step too)
        assert unchanged(params, params_after)
        assert all(unchanged(s, t) for s, t in zip(states, states_after, strict=True))
    else:  # the E-step is applied, the M-step skipped: the target (statistics too) and its optimizer untouched
        target = [n for n in params if n.startswith("target.")]
        assert unchanged({n: params[n] for n in target}, {n: params_after[n] for n in target})
        assert not unchanged(params, params_after)
        assert unchanged(states[1], states_after[1])
    assert all(torch.isfinite(p).all() for p in model.parameters())


def agreeing_rank(rank: int, init_file: str, out: str) -> None:
    """One of 2 gloo processes: rank 1 alone holds a non-finite gradient."""
    import torch.distributed as dist

    from ssrl.paradigms.finite import gradients_finite

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    weight = torch.nn.Parameter(torch.ones(3))
    weight.grad = torch.tensor([1.0, float("nan") if rank == 1 else 2.0, 3.0])
    finite = all_agree(torch.isfinite(torch.tensor(0.5)) & gradients_finite([weight]))
    torch.save(bool(finite), f"{out}/rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def test_under_ddp_every_process_skips_when_any_gradient_is_non_finite(tmp_path):
    """Issue 23, break 3, and issue 25, case 7, under DDP: the skip decision is and-ed over the processes
    (2 gloo processes, a NaN on rank 1 only), so both skip the same update and their weights stay equal.
    JMI decides in on_before_optimizer_step and its step returns the loss: never None, which Lightning
    refuses under DDP."""
    import torch.multiprocessing as mp

    mp.start_processes(agreeing_rank, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2, start_method="fork")
    assert [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(2)] == [False, False]
