"""SDMI under data parallelism, on the CPU with 2 gloo processes: two batches of SDMI's own training code
(E-step, M-step or EMA update, each optimizer's gradients averaged over the processes, the negatives of
both processes gathered) end with the same weights as one process on the whole batch, with one
gradient all-reduce per update (the coalesced average of ssrl.distributed.average_gradients).

BatchNorm runs on its running statistics (eval mode) here: with batch statistics each process would
normalise its own half batch (SyncBatchNorm, which fixes that, needs a GPU)."""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from ssrl.paradigms.optim import build_optimizer
from ssrl.paradigms.sdmi import SDMI
from tests.conftest import flat_parameters

N, WORLD, BATCHES = 8, 2, 2


def batches():
    g = torch.Generator().manual_seed(1)
    for _ in range(BATCHES):
        xa = torch.randn(N * WORLD, 3, 8, 8, generator=g)
        yield xa, xa + 0.3 * torch.randn(xa.shape, generator=g), torch.randint(0, 4, (N * WORLD,), generator=g)


def train_sdmi(cfg, rank: int, world: int) -> dict[str, torch.Tensor]:
    """SDMI's training step outside Lightning: the module's own ``_train_batch`` and ``_update``, with
    a stand-in for the trainer (backward is plain autograd; logging is off)."""
    torch.manual_seed(0)
    model = SDMI(cfg, num_classes=4).eval()
    model._trainer = SimpleNamespace(
        strategy=SimpleNamespace(model=model),
        global_rank=rank,
        current_epoch=0,
        _logger_connector=SimpleNamespace(should_update_logs=False),
    )
    model.manual_backward = lambda loss: loss.backward()
    model.log = lambda *args, **kwargs: None
    model.total_batches = BATCHES
    groups = [model.parameter_groups([model.online, model.objective], with_probe=True)]
    if model.m_step_by_gradient:
        groups.append(model.parameter_groups([model.target], with_probe=False))
    optimizers = [
        SimpleNamespace(optimizer=o, zero_grad=o.zero_grad, step=o.step)
        for o in (build_optimizer(g, cfg.optim) for g in groups)
    ]
    share = slice(rank * N, (rank + 1) * N) if world > 1 else slice(None)
    for index, (xa, xb, labels) in enumerate(batches()):
        model.batches_trained += 1
        model._train_batch(((xa[share], xb[share]), labels[share]), index, optimizers)
    parts = {"online": model.online, "predictor": model.predictor, "target": model.target}
    return {k: flat_parameters(m) for k, m in parts.items() if m is not None}


def counting_all_reduces(cfg, rank: int) -> tuple[dict[str, torch.Tensor], int]:
    """``train_sdmi`` on this rank, and the number of all-reduce calls it made (the gathers' backward
    passes use all-to-all, so these are the gradient averages)."""
    all_reduce, calls = dist.all_reduce, []
    dist.all_reduce = lambda *args, **kwargs: (calls.append(1), all_reduce(*args, **kwargs))[1]
    try:
        return train_sdmi(cfg, rank, WORLD), len(calls)
    finally:
        dist.all_reduce = all_reduce


def worker(rank: int, cfgs: dict, init_file: str, out: str) -> None:
    from ssrl.run.naming import register_resolvers

    register_resolvers()  # the config's interpolations, in this fresh process
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.save({form: counting_all_reduces(cfg, rank) for form, cfg in cfgs.items()}, f"{out}/rank{rank}.pt")
    dist.barrier()  # neither rank tears the group down while the other still uses it
    dist.destroy_process_group()


FORMS = {
    "gradient-target": ["predictor=mlp", "paradigm.refresh=true"],
    "ema-target": ["predictor=mlp", "paradigm.target_update=ema"],
}
UPDATES_PER_BATCH = {"gradient-target": 2, "ema-target": 1}  # E-step and M-step; E-step only


def test_sdmi_under_ddp_equals_one_process_on_the_whole_batch(config, tmp_path):
    cfgs = {form: config("paradigm=sdmi", *overrides) for form, overrides in FORMS.items()}
    mp.spawn(worker, args=(cfgs, str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD)]
    for form, cfg in cfgs.items():
        single = train_sdmi(cfg, 0, 1)
        for rank, results in enumerate(ranks):
            weights_of_rank, all_reduces = results[form]
            assert all_reduces == UPDATES_PER_BATCH[form] * BATCHES  # coalesced: one call per update
            assert weights_of_rank.keys() == single.keys()
            for name, weights in single.items():
                msg = f"{form}, rank {rank}: {name}"
                torch.testing.assert_close(weights_of_rank[name], weights, rtol=1e-4, atol=1e-6, msg=msg)
