"""Fixtures: the real Hydra configs, composed, and tiny-data overrides that keep runs to seconds."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ssrl.train import CONFIG_DIR  # registers the schemas and resolvers

#: Real configs, small: synthetic 8x8 images, 1 epoch of 2 batches, a small projector; the MI probe off
#: (tests/test_mi_probe.py turns it on).
TINY = [
    "data=synthetic",
    "trainer=debug",
    "backbone.projector_hidden_dim=64",
    "backbone.projector_dim=32",
    "predictor.hidden_dim=64",
    "eval.mi_probe_every_n_epochs=0",
    "eval.baseline_inits=2",
]


def compose_config(*overrides: str, tiny: bool = True, with_hydra: bool = False):
    """conf/train.yaml composed with ``overrides`` (after TINY's when ``tiny``); ``with_hydra`` keeps the
    ``hydra`` node (run mode, sweep folder and parameters)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=(TINY if tiny else []) + list(overrides), return_hydra_config=with_hydra)


@pytest.fixture
def config():
    return compose_config


@pytest.fixture
def repo_root() -> Path:
    return Path(CONFIG_DIR).parent


def ssrl_train(*args: str, cwd: Path, timeout: int = 900, check: bool = True):
    """`python -m ssrl.train ARGS` in ``cwd``, as a user would type it."""
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "ssrl.train", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )
    if check:
        assert result.returncode == 0, result.stderr[-4000:]
    return result


def two_batch_trainer(batches: int = 2, epochs: int = 1, callbacks: tuple = (), **trainer_args):
    """A Lightning Trainer for ``epochs`` of ``batches`` training batches (2 and 1 by default) on the
    CPU, without validation, logs or checkpoints; ``trainer_args`` add to or replace its arguments."""
    import pytorch_lightning as pl

    args = {
        "accelerator": "cpu",
        "max_epochs": epochs,
        "limit_train_batches": batches,
        "limit_val_batches": 0,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "callbacks": list(callbacks),
    }
    return pl.Trainer(**{**args, **trainer_args})


def flat_parameters(module: torch.nn.Module) -> torch.Tensor:
    """Every parameter of ``module`` in one detached 1-D tensor, whatever its memory layout
    (torch.nn.utils.parameters_to_vector refuses channels_last weights)."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])
