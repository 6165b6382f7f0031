"""A run's checkpoint file: where it lies in the run folder, and reading it without running code."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import torch

from ssrl.errors import ConfigError
from ssrl.run.old_config import with_todays_defaults

CHECKPOINT = Path("checkpoints") / "last.ckpt"
log = logging.getLogger("ssrl")


def load_file(checkpoint_path: Path) -> dict[str, Any]:
    """torch.load of a checkpoint file on the CPU with ``weights_only=True``: tensors, plain containers
    and strings only, so nothing in it runs code as it loads. Raises ConfigError with one line when it
    holds other types, or is damaged (truncated: torch's "failed finding central directory")."""
    try:
        return torch.load(checkpoint_path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{checkpoint_path}: not a checkpoint ssrl can load safely (weights_only=True: {first})"
        ) from exc
    except Exception as exc:
        first = str(exc).strip().split(". ")[0].splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(
            f"{checkpoint_path}: damaged, not a whole checkpoint ({type(exc).__name__}: {first}); "
            "to train its run folder again from scratch, rerun ssrl-train with resume=false"
        ) from exc


def read_checkpoint(path: Path) -> tuple[dict[str, Any], Path]:
    """(the checkpoint, its path) of a run folder (its ``checkpoints/last.ckpt``) or a .ckpt file, read by
    ``load_file``. The config it stores (``checkpoint["ssrl"]["config"]``) gets the fields added to ssrl
    since the run was trained at today's defaults (ssrl.run.old_config), said in a warning that names
    them. Raises ConfigError when there is none, it is damaged, or it is not an ssrl checkpoint."""
    path = Path(path)
    checkpoint_path = path / CHECKPOINT if path.is_dir() else path
    if not checkpoint_path.is_file():
        raise ConfigError(f"{path}: no checkpoint there (expected a run folder with {CHECKPOINT} or a .ckpt file)")
    checkpoint = load_file(checkpoint_path)
    if "ssrl" not in checkpoint:
        raise ConfigError(f"{checkpoint_path}: not an ssrl checkpoint (it holds no ssrl config)")
    checkpoint["ssrl"]["config"], filled = with_todays_defaults(checkpoint["ssrl"]["config"])
    if filled:
        log.warning(
            f"ssrl: {checkpoint_path} was trained before ssrl had "
            + ", ".join(filled)
            + "; read with today's defaults: "
            + ", ".join(f"{k}={v}" for k, v in filled.items())
        )
    return checkpoint, checkpoint_path
