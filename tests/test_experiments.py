"""Every experiment file's sweep (conf/experiment/) expands to the jobs it promises, and each job
composes and passes validation: a bad cell fails here, not an hour into the grid."""

from __future__ import annotations

import itertools

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode

from ssrl import validate as validation
from tests.conftest import compose_config

EXPERIMENTS = {"collapse": 24, "collapse_cifar10": 24, "predictor_rescue": 9}


def sweep_jobs(experiment: str) -> list[list[str]]:
    """The override list of every job of ``+experiment=<experiment>``'s sweep."""
    cfg = compose_config(f"+experiment={experiment}", tiny=False, with_hydra=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN and cfg.hydra.sweep.dir == f"outputs/multirun/{experiment}"
    sweeps = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()])
    axes = [[f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] for o in sweeps]
    return [[f"+experiment={experiment}", *job] for job in itertools.product(*axes)]


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_sweep_composes(experiment, monkeypatch):
    monkeypatch.setattr(validation, "check_available", lambda data: None)  # CIFAR-10 is not on this machine
    jobs = sweep_jobs(experiment)
    assert len(jobs) == EXPERIMENTS[experiment]
    for job in jobs:
        cfg = compose_config(*job, tiny=False)
        validation.validate(cfg)
        assert cfg.expected in ("learns", "collapses"), job
        ablation = next(o for o in job if o.startswith("+ablation=")).split("=")[1]
        assert ablation.startswith(cfg.paradigm.name), job
        assert (cfg.marginal.weight == 0) == ("none" in ablation), job
