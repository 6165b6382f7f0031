"""What a run writes beside training: checkpoints written atomically, the running summary, and a stop
on a preemption signal. (TensorBoard's records: ssrl.run.tensorboard.)"""

from __future__ import annotations

import errno
import io
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO

from ssrl.errors import DiskFull
from ssrl.run.summary import write_summary

#: OSError numbers of a write that found no space: the disk is full, or the user's quota is.
NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save into memory, written to a temporary file in the checkpoint's folder, then renamed over
    it: a killed run leaves the previous checkpoint whole, never a half-written one. A write that fails
    removes the temporary file; on a full disk it raises DiskFull with one line naming the folder, the
    bytes the checkpoint needs and the bytes free (torch.save's own error there is an unclear
    "inline_container.cc ... iostream error")."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        torch.save(checkpoint, buffer)
        tmp = path.with_name(f".{path.name}.tmp")
        try:
            tmp.write_bytes(buffer.getbuffer())
            os.replace(tmp, path)
        except BaseException as exc:
            tmp.unlink(missing_ok=True)
            if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                needed, free = buffer.getbuffer().nbytes, shutil.disk_usage(path.parent).free
                raise DiskFull(
                    f"{path.parent}: no space left for the checkpoint: it needs {needed} bytes "
                    f"({needed / 1e6:.1f} MB), {free} bytes are free; free space there (or point hydra.run.dir "
                    "at another disk) and rerun the same command to resume from the last checkpoint"
                ) from None
            raise


def gradients_settled(trainer: pl.Trainer, batch_idx: int) -> bool:
    """Whether no gradient is half-accumulated after this batch: with trainer.accumulate_grad_batches=k
    Lightning steps after every k-th batch of an epoch and after its last; a checkpoint written in between
    would lose the accumulated gradient (it is not part of any checkpoint)."""
    k = trainer.accumulate_grad_batches
    return k == 1 or (batch_idx + 1) % k == 0 or bool(trainer.fit_loop.epoch_loop.batch_progress.is_last_batch)


class PeriodicCheckpoint(pl.Callback):
    """Writes the checkpoint once ``every_minutes`` of training have passed since the last one (or since
    training started or resumed); 0 writes it after every batch. The job also writes it at the end and
    StopOnSignal on a stop signal. The clock is read on every trainer.log_every_n_steps-th batch trained
    (counted by the paradigm, ``batches_trained``) and, under DDP, rank 0's answer is broadcast there, on
    batches that synchronise for logging anyway; with 0 no clock is read and nothing is broadcast. A
    checkpoint due inside an accumulation window waits for the window's last batch. ``saved`` lists the
    batch counts written."""

    clock = staticmethod(time.monotonic)  # seconds; tests replace it

    def __init__(self, checkpoint: Path, every_minutes: float) -> None:
        self.checkpoint, self.every_s = checkpoint, 60.0 * every_minutes
        self.last, self.pending, self.saved = 0.0, False, []

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        self.last, self.pending = self.clock(), False

    def _due(self, trainer: pl.Trainer, pl_module: Any) -> bool:
        if self.every_s == 0:
            return True
        if pl_module.batches_trained % trainer.log_every_n_steps:
            return False
        now = self.clock()
        return bool(trainer.strategy.broadcast(now - self.last >= self.every_s, src=0))

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        self.pending = self.pending or self._due(trainer, pl_module)
        if self.pending and gradients_settled(trainer, batch_idx) and not trainer.should_stop:
            trainer.save_checkpoint(self.checkpoint, weights_only=False)
            self.saved.append(pl_module.batches_trained)
            self.last, self.pending = self.clock(), False


def stop_signals() -> tuple[signal.Signals, ...]:
    """SIGTERM, SIGUSR1, SIGUSR2, and the signal submitit is told to expect (SUBMITIT_PREEMPT_SIGNAL,
    USR2 by default in submitit 1.5: SLURM sends it signal_delay_s before the time limit)."""
    signals = [signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2]
    extra = getattr(signal, f"SIG{os.environ.get('SUBMITIT_PREEMPT_SIGNAL', 'USR2')}", None)
    if isinstance(extra, signal.Signals) and extra not in signals:
        signals.append(extra)
    return tuple(signals)


class NotRequeued(RuntimeError):
    """The launcher's handler of a stop signal would not requeue the job (submitit: timed out more than
    max_num_timeout times); the checkpoint is written, so a rerun resumes."""


def agreed_signal(trainer: pl.Trainer, pl_module: Any, signum: int | None) -> int | None:
    """The stop signal any process has received (the largest number), the same on every process: with
    several, one that acted alone would wait in the checkpoint's barrier while the others go on into the
    next batch's collectives, a hang. One all-reduce and host sync, so StopOnSignal asks it only on the
    batches that log (trainer.log_every_n_steps), where the host waits anyway. One process: ``signum``."""
    if trainer.world_size == 1:
        return signum
    agreed = int(trainer.strategy.reduce(torch.tensor(signum or 0, device=pl_module.device), reduce_op="max"))
    return agreed or None


class StopOnSignal(pl.Callback):
    """A stop signal (``stop_signals``: a cluster's time-limit or preemption notice, or SIGTERM): finish the
    current batch (and its accumulation window), write the checkpoint, stop training; under DDP every
    process does so after the same batch, whichever received the signal (``agreed_signal``), the next
    batch that logs (at most trainer.log_every_n_steps batches later). ``signal`` then
    holds the signal's number, and ``hand_over`` passes it on to whoever launched the job.

    submitit's protocol: submitit installs its own handler of the preemption signal (USR2) when the job
    starts; on it, it checkpoints its launcher's call, requeues the job and exits. ssrl takes the signal
    over during training, so that the run's checkpoint is written first, then calls submitit's handler
    (``hand_over``), which requeues the job; the requeued job runs the same command and resumes."""

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint, self.signal, self._previous = checkpoint, None, {}
        main = threading.current_thread() is threading.main_thread()
        # the handlers of whoever launched the job (submitit), before Lightning installs its own in fit
        self.launcher_handlers = {s: signal.getsignal(s) for s in stop_signals()} if main else {}

    def _note(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if threading.current_thread() is threading.main_thread():  # after Lightning's own handlers
            self._previous = {s: signal.signal(s, self._note) for s in stop_signals()}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.should_stop or not gradients_settled(trainer, batch_idx):
            return
        if trainer.world_size > 1 and pl_module.batches_trained % trainer.log_every_n_steps:
            return  # under DDP the processes agree only on batches that log (and sync) anyway
        agreed = agreed_signal(trainer, pl_module, self.signal)
        if agreed is not None:  # (a signal arriving meanwhile is kept for the next batch)
            self.signal = agreed
            trainer.save_checkpoint(self.checkpoint, weights_only=False)
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}

    def hand_over(self) -> None:
        """Call the launcher's handler of the signal received, if it installed one (submitit requeues the
        job and exits here); return when there is none, or when it returns (a rank > 0, a bypassed one)."""
        handler = self.launcher_handlers.get(self.signal)
        if self.signal is None or not callable(handler) or handler is signal.default_int_handler:
            return
        try:
            handler(self.signal, None)
        except Exception as exc:  # submitit: "Job not requeued because: timed-out too many times."
            raise NotRequeued(f"{exc}; the checkpoint {self.checkpoint} is written: rerun to resume") from exc


class RunningSummary(pl.Callback):
    """Rewrites summary.json with status "running" and the curves so far, after each held-out
    evaluation during training, so a run that dies still shows how far it got."""

    def __init__(self, run_dir: Path, base: Callable[[], dict[str, Any]]) -> None:
        self.run_dir, self.base = run_dir, base

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.is_global_zero and trainer.state.fn == "fit":
            write_summary(self.run_dir, {**self.base(), "status": "running", "history": pl_module.history})
