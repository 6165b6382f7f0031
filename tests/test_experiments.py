"""Every experiment file's sweep (conf/experiment/) expands to the jobs it promises, seeds included,
and each job composes and passes validation: a bad cell fails here, not an hour into the grid. The
number of distinct runs (ssrl.run.same_run) is the number its header says it trains, and jobs that
train the same run lie far enough apart to be reused under the parallel launcher."""

from __future__ import annotations

import itertools
import json

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.types import RunMode
from omegaconf import OmegaConf

from ssrl import validate as validation
from ssrl.run.same_run import training_identity
from tests.conftest import compose_config

#: experiment: (jobs, distinct runs, seeds per cell (a count from 0, or the seeds), data set, epochs)
EXPERIMENTS = {
    "collapse_rule": (15, 15, (10, 11, 12, 13, 14), "styled_digits", 30),
    "paradigms_lr": (16, 16, 2, "styled_digits", 30),
    "paradigms": (10, 10, (20, 21, 22, 23, 24), "styled_digits", 30),
    "positive_control_search": (12, 12, 1, "styled_digits", 50),
    "positive_control_long": (4, 4, 1, "styled_digits", 150),
    "positive_control_simsiam": (5, 5, (10, 11, 12, 13, 14), "styled_digits", 50),
    "claim3_simsiam_lr": (3, 3, 1, "styled_digits", 50),
    "claim3_cifar10": (30, 30, 5, "cifar10", 200),
    "claim1": (54, 36, 3, "styled_digits", 30),
    "collapse": (72, 48, 3, "styled_digits", 30),
    "collapse_cifar10": (24, 16, 1, "cifar10", 200),
    "predictor_rescue": (9, 9, 3, "styled_digits", 60),
    "predictor_lr": (6, 6, 3, "styled_digits", 30),
    "ema_momentum": (6, 6, 3, "styled_digits", 30),
    "steps_per_phase": (12, 12, 3, "styled_digits", 30),
    "sdmi_temperature": (12, 12, 3, "styled_digits", 30),
    "lambda_sweep": (84, 78, 3, "styled_digits", 30),
    "lambda_transition": (30, 30, 3, "styled_digits", 30),
    "surrogate_lr": (12, 12, 3, "styled_digits", 30),
}
#: The paradigm comparison's arms: (paradigm, lambda, lr chosen on val by +experiment=paradigms_lr)
PARADIGM_ARMS = {"jmi_lambda1": ("jmi", 1.0, 0.1), "sdmi_lambda1_symmetrized": ("sdmi", 1.0, 0.05)}
#: Jobs that train the same run lie at least this far apart in a sweep, so that the parallel launcher
#: (hydra/launcher=local, 2 jobs at a time) starts the later only after the earlier completed and
#: the later reuses it; a job reuses only a completed run.
SAME_RUN_GAP = 8


def test_every_experiment_file_is_checked(repo_root):
    assert {p.stem for p in (repo_root / "conf" / "experiment").glob("*.yaml")} == set(EXPERIMENTS)


def sweep_jobs(experiment: str) -> list[list[str]]:
    """The override list of every job of ``+experiment=<experiment>``'s sweep."""
    cfg = compose_config(f"+experiment={experiment}", tiny=False, with_hydra=True)
    assert cfg.hydra.mode == RunMode.MULTIRUN and cfg.hydra.sweep.dir == f"outputs/multirun/{experiment}"
    sweeps = OverridesParser.create().parse_overrides([f"{k}={v}" for k, v in cfg.hydra.sweeper.params.items()])
    axes = [
        [f"{o.get_key_element()}={v}" for v in o.sweep_string_iterator()] if o.is_sweep_override() else [o.input_line]
        for o in sweeps
    ]
    return [[f"+experiment={experiment}", *job] for job in itertools.product(*axes)]


def _value(job: list[str], key: str) -> str | None:
    """The value ``key`` takes in a job's overrides (None when the sweep does not set it)."""
    return next((o.split("=", 1)[1] for o in job if o.lstrip("+").startswith(f"{key}=")), None)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_sweep_composes(experiment, monkeypatch):
    monkeypatch.setattr(validation, "check_available", lambda data: None)  # CIFAR-10 is not on this machine
    jobs_expected, distinct_expected, seeds, data, epochs = EXPERIMENTS[experiment]
    jobs = sweep_jobs(experiment)
    assert len(jobs) == jobs_expected
    identities, last_index = [], {}
    parser = OverridesParser.create()
    for index, job in enumerate(jobs):
        cfg = compose_config(*job, tiny=False)
        validation.validate(cfg)
        assert str(cfg.seed) == (_value(job, "seed") or "0"), job
        assert (cfg.data.name, cfg.trainer.max_epochs) == (data, epochs), job
        ablation = _value(job, "ablation")
        if ablation is not None:
            assert cfg.expected in ("learns", "collapses"), job
            assert ablation.startswith(cfg.paradigm.name), job
            assert (cfg.marginal.weight == 0) == ("none" in ablation), job
        arm = _value(job, "arm")
        if arm in PARADIGM_ARMS:  # the paradigm comparison's arms: lambda = 1 at the val-chosen lr
            assert (cfg.paradigm.name, cfg.marginal.weight, cfg.optim.lr) == PARADIGM_ARMS[arm], job
            assert cfg.paradigm.get("symmetrize", True), job
        elif arm is not None:  # claim 3's arms: the target form and the predictor the file names
            assert cfg.paradigm.name == "sdmi" and cfg.marginal.weight == 0, job
            assert (cfg.predictor.name == "none") == arm.endswith("no_predictor"), job
            assert cfg.expected == ("learns" if arm in ("simsiam", "byol") else "collapses"), job
        for override in parser.parse_overrides(job):
            if "." in override.key_or_group:  # a swept field, not a config group: it landed
                assert OmegaConf.select(cfg, override.key_or_group) == override.value(), job
        identity = training_identity(OmegaConf.to_container(cfg, resolve=True))
        if identity not in identities:
            identities.append(identity)
        key = json.dumps(identity, sort_keys=True)
        assert index - last_index.get(key, -SAME_RUN_GAP) >= SAME_RUN_GAP, job
        last_index[key] = index
    assert len(identities) == distinct_expected
    expected_seeds = range(seeds) if isinstance(seeds, int) else seeds
    assert {_value(job, "seed") or "0" for job in jobs} == {str(s) for s in expected_seeds}
