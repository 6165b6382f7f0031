"""Every experiment file's sweep (conf/experiment/) expands to the jobs it promises, and each job
composes and passes validation: a bad cell fails here, not an hour into the grid."""

from __future__ import annotations

import itertools

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.types import RunMode

from ssrl import validate as validation
from ssrl.train import CONFIG_DIR

EXPERIMENTS = {"collapse": 24, "collapse_cifar10": 24, "predictor_rescue": 9}


def sweep_jobs(experiment: str) -> list[list[str]]:
    """The override list of every job of ``+experiment=<experiment>``'s sweep."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=[f"+experiment={experiment}"], return_hydra_config=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN and cfg.hydra.sweep.dir == f"outputs/multirun/{experiment}"
    axes = [[f"{key}={value}" for value in str(values).split(",")] for key, values in cfg.hydra.sweeper.params.items()]
    return [[f"+experiment={experiment}", *job] for job in itertools.product(*axes)]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_sweep_composes(experiment, monkeypatch):
    monkeypatch.setattr(validation, "check_available", lambda data: None)  # CIFAR-10 is not on this machine
    jobs = sweep_jobs(experiment)
    assert len(jobs) == EXPERIMENTS[experiment]
    for job in jobs:
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose("train", overrides=job)
        validation.validate(cfg)
        assert cfg.expected in ("learns", "collapses"), job
        ablation = next(o for o in job if o.startswith("+ablation=")).split("=")[1]
        assert ablation.startswith(cfg.paradigm.name), job
        assert (cfg.marginal.weight == 0) == ("none" in ablation), job
