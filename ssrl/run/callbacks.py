"""Lightning callbacks of a run: the running summary after every held-out evaluation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

from ssrl.run.summary import write_summary


class RunningSummary(pl.Callback):
    """Rewrites summary.json with status "running" and the curves so far, after each held-out
    evaluation during training, so a run that dies still shows how far it got."""

    def __init__(self, run_dir: Path, base: Callable[[], dict[str, Any]]) -> None:
        self.run_dir, self.base = run_dir, base

    def on_validation_end(self, trainer: pl.Trainer, pl_module: Any) -> None:
        if trainer.is_global_zero and trainer.state.fn == "fit":
            write_summary(self.run_dir, {**self.base(), "status": "running", "history": pl_module.history})
