"""A stop signal under DDP, on the CPU with 2 gloo processes: only rank 0 receives it, and both ranks
write the checkpoint and stop after the same batch (issue 23, break 5: a rank that stopped alone would
wait in the checkpoint's barrier while the other went on into the next batch's all_gather)."""

from __future__ import annotations

import signal
from types import SimpleNamespace

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from pytorch_lightning.strategies import DDPStrategy

from ssrl.run.callbacks import StopOnSignal

WORLD = 2


def worker(rank: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    saved = []
    trainer = SimpleNamespace(
        world_size=WORLD,
        strategy=DDPStrategy(),
        should_stop=False,
        accumulate_grad_batches=1,
        log_every_n_steps=5,
        save_checkpoint=lambda path, weights_only: saved.append(str(path)),
    )
    stop = StopOnSignal(out)
    if rank == 0:
        stop._note(signal.SIGUSR2, None)  # what its handler does on SIGUSR2
    for batches_trained in (4, 5):  # only the batch that logs (the 5th) asks the other process
        module = SimpleNamespace(device=torch.device("cpu"), batches_trained=batches_trained)
        stop.on_train_batch_end(trainer, module, None, None, batches_trained - 1)
        if batches_trained == 4:
            assert not trainer.should_stop and not saved
    torch.save({"stopped": trainer.should_stop, "saved": saved, "signal": stop.signal}, f"{out}/rank{rank}.pt")
    dist.barrier()
    dist.destroy_process_group()


def test_every_rank_stops_after_the_batch_any_rank_got_the_signal_in(tmp_path):
    # forked: the children start with this process's imports, in no time
    mp.start_processes(worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, start_method="fork")
    for rank in range(WORLD):
        result = torch.load(tmp_path / f"rank{rank}.pt")
        assert result == {"stopped": True, "saved": [str(tmp_path)], "signal": signal.SIGUSR2}, (rank, result)
