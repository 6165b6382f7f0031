"""Data parallelism on the CPU with 2 gloo processes: the loss and the encoder gradients of a DDP step,
with the negatives of both processes gathered, equal those of one process on the concatenated batch.

Both routes are checked: DDP's own gradient synchronisation (JMI) and the explicit averaging that SDMI
uses for its two optimizers (ssrl.distributed.average_gradients), whose coalesced all-reduce (one call per
dtype) also equals the per-tensor one on gradients of two dtypes and two memory layouts."""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from ssrl.distributed import average_gradients
from ssrl.mi.critics import Critic
from ssrl.mi.objective import MIObjective

CASES = [
    ("cos_dv", "exact", {}),
    ("infonce", "exact", {}),
    ("infonce", "exact", {"same_view_negatives": True}),
    ("jsd", "exact", {}),
    ("nwj", "exact", {}),
    ("cos_dv", "none", {}),
    ("cos_dv", "barlow", {}),
    ("cos_dv", "vicreg", {}),
]
N, WORLD = 16, 2


class TwoViews(nn.Module):
    """One forward pass for both views, as Lightning runs a training step inside DDP's forward."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 8))

    def forward(self, xa, xb):
        return self.encoder(xa), self.encoder(xb)


def objective(estimator: str, marginal: str, extra: dict) -> MIObjective:
    weight = {"exact": 1.0, "none": 0.0, "barlow": 0.005, "vicreg": 1.0}[marginal]
    return MIObjective(Critic("cosine", 8, 0.1), estimator, marginal, weight, **extra)


def batch():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(N, 12, generator=g)
    return x, x + 0.3 * torch.randn(N, 12, generator=g)


def step(model, xa, xb, case):
    a, b = model(xa, xb)
    loss = objective(*case)(a, b).loss
    loss.backward()
    return loss.detach(), [p.grad.detach().clone() for p in model.parameters()]


def steps_of_this_rank(rank: int) -> dict:
    """Every case's loss and gradients on this rank's half of the batch, through DDP and through SDMI's
    explicit averaging. The DDP modules die with this function, before the process group does."""
    xa, xb = batch()
    mine = slice(rank * N // WORLD, (rank + 1) * N // WORLD)
    results = {}
    for case in CASES:
        ddp = nn.parallel.DistributedDataParallel(TwoViews())
        results[("ddp", *case[:2], str(case[2]))] = step(ddp, xa[mine], xb[mine], case)
        plain = TwoViews()  # SDMI's route: gradients averaged explicitly
        loss, _ = step(plain, xa[mine], xb[mine], case)
        average_gradients(plain.parameters())
        results[("manual", *case[:2], str(case[2]))] = (loss, [p.grad.clone() for p in plain.parameters()])
    return results


def mixed_gradients(rank: int) -> list[nn.Parameter]:
    """Parameters of two dtypes, one channels_last, one without a gradient; this rank's gradients are
    (rank + 1) times a fixed tensor, so their mean over the 2 ranks is 1.5 times it."""
    shapes = [((3, 4), torch.float32), ((2, 3, 2, 2), torch.float32), ((2, 2), torch.float64), ((5,), torch.float32)]
    params = [nn.Parameter(torch.zeros(shape, dtype=dtype)) for shape, dtype in shapes]
    params[1].data = params[1].data.to(memory_format=torch.channels_last)
    for i, p in enumerate(params[:3]):
        p.grad = (torch.arange(p.numel(), dtype=p.dtype).view(p.shape) + i) * (rank + 1)
    params[1].grad = params[1].grad.to(memory_format=torch.channels_last)
    return params


def coalesced_and_per_tensor(rank: int) -> dict:
    """average_gradients on mixed gradients, with its number of all-reduce calls, beside the
    per-tensor reference (one all-reduce and one division per gradient)."""
    coalesced, reference = mixed_gradients(rank), mixed_gradients(rank)
    all_reduce, calls = dist.all_reduce, []
    dist.all_reduce = lambda *args, **kwargs: (calls.append(1), all_reduce(*args, **kwargs))[1]
    try:
        average_gradients(coalesced)
    finally:
        dist.all_reduce = all_reduce
    for p in reference[:3]:
        dist.all_reduce(p.grad)
        p.grad /= WORLD
    return {"calls": len(calls), "coalesced": [p.grad for p in coalesced], "reference": [p.grad for p in reference]}


def worker(rank: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    torch.save({**steps_of_this_rank(rank), "mixed": coalesced_and_per_tensor(rank)}, f"{out}/rank{rank}.pt")
    dist.barrier()  # neither rank tears the group down while the other still uses it
    dist.destroy_process_group()


def test_ddp_step_equals_single_process_step(tmp_path):
    mp.spawn(worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]
    xa, xb = batch()
    for case in CASES:
        loss, grads = step(TwoViews(), xa, xb, case)
        for route in ("ddp", "manual"):
            for rank in ranks:
                ddp_loss, ddp_grads = rank[(route, *case[:2], str(case[2]))]
                torch.testing.assert_close(ddp_loss, loss, rtol=1e-5, atol=1e-6, msg=f"{route} {case} loss")
                for ours, single in zip(ddp_grads, grads, strict=True):
                    torch.testing.assert_close(ours, single, rtol=1e-4, atol=1e-6, msg=f"{route} {case} gradient")
    for rank in ranks:
        mixed = rank["mixed"]
        assert mixed["calls"] == 2  # one all-reduce per dtype, not one per gradient
        assert mixed["coalesced"][3] is None
        expected = [p.grad * 1.5 for p in mixed_gradients(0)[:3]]
        for ours, per_tensor, mean in zip(mixed["coalesced"][:3], mixed["reference"][:3], expected, strict=True):
            assert ours.dtype == mean.dtype and ours.stride() == mean.stride()
            torch.testing.assert_close(ours, per_tensor, rtol=0, atol=0)
            torch.testing.assert_close(ours, mean, rtol=0, atol=0)
