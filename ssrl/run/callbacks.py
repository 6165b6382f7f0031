"""What a run writes beside training: checkpoints written atomically, the running summary, and a stop
on a preemption signal. (TensorBoard's records: ssrl.run.tensorboard.)"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins import TorchCheckpointIO

from ssrl.run.summary import write_summary


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temporary file in the checkpoint's folder, then rename over it: a killed run
    leaves the previous checkpoint whole, never a half-written one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: Any, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(checkpoint, tmp)
        os.replace(tmp, path)


class StopOnSignal(pl.Callback):
    """SIGTERM or SIGUSR1 (a cluster's preemption notice): finish the current batch, write the
    checkpoint, stop training. ``signal`` then holds the signal's number; rerunning the same command
    resumes from that checkpoint."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint, self.signal, self._previous = checkpoint, None, {}

    def _note(self, signum: int, frame: Any) -> None:
        self.signal = signum

    def on_train_start(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if threading.current_thread() is threading.main_thread():  # after Lightning's own handlers
            self._previous = {s: signal.signal(s, self._note) for s in self.SIGNALS}

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.signal is not None and not trainer.should_stop:
            trainer.save_checkpoint(self.checkpoint)
            trainer.should_stop = True

    def on_train_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)
        self._previous = {}


class RunningSummary(pl.Callback):
    """Rewrites summary.json with status "running" and the curves so far, after each held-out
    evaluation during training, so a run that dies still shows how far it got."""

    def __init__(self, run_dir: Path, base: Callable[[], dict[str, Any]]) -> None:
        self.run_dir, self.base = run_dir, base

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.is_global_zero and trainer.state.fn == "fit":
            write_summary(self.run_dir, {**self.base(), "status": "running", "history": pl_module.history})

