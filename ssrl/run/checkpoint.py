"""A run's checkpoint file: where it lies in the run folder, and reading it without running code."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ssrl.errors import ConfigError

CHECKPOINT = Path("checkpoints") / "last.ckpt"


def read_checkpoint(path: Path) -> tuple[dict[str, Any], Path]:
    """(the checkpoint, its path) of a run folder (its ``checkpoints/last.ckpt``) or a .ckpt file, loaded
    on the CPU with ``weights_only=True``: tensors, plain containers and strings only, so nothing in it
    runs code as it loads. Raises ConfigError when there is none, or it is not an ssrl checkpoint."""
    path = Path(path)
    checkpoint_path = path / CHECKPOINT if path.is_dir() else path
    if not checkpoint_path.is_file():
        raise ConfigError(f"{path}: no checkpoint there (expected a run folder with {CHECKPOINT} or a .ckpt file)")
    try:
        checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{checkpoint_path}: not a checkpoint ssrl can load safely (weights_only=True: {first})"
        ) from exc
    if "ssrl" not in checkpoint:
        raise ConfigError(f"{checkpoint_path}: not an ssrl checkpoint (it holds no ssrl config)")
    return checkpoint, checkpoint_path
