"""An axis that cannot change a run does not multiply it: such jobs of a sweep reuse the run."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from ssrl.run.same_run import training_identity
from tests.conftest import TINY, compose_config, ssrl_train


def identity(*overrides: str) -> dict:
    return training_identity(OmegaConf.to_container(compose_config(*overrides), resolve=True, enum_to_str=True))


def test_the_axes_that_cannot_change_a_run():
    assert identity("marginal=barlow", "estimator=cos_dv") == identity("marginal=barlow", "estimator=infonce")
    assert identity("marginal=vicreg", "estimator=jsd") == identity("marginal=vicreg", "estimator=nwj")
    lambda_zero = identity("marginal=none", "estimator=cos_dv")
    assert lambda_zero == identity("marginal=none", "estimator=infonce")
    assert lambda_zero == identity("marginal=exact", "marginal.weight=0", "estimator=nwj")
    assert lambda_zero == identity("marginal=none", "estimator=cos_dv", "logger=csv", "+expected=collapses")
    no_predictor = identity("paradigm=sdmi", "predictor=none")
    assert no_predictor == identity("paradigm=sdmi", "predictor=none", "predictor.lr_scale=10")


def test_the_axes_that_can():
    assert identity("marginal=none", "estimator=jsd") != identity("marginal=none", "estimator=cos_dv")
    assert identity("estimator=cos_dv") != identity("estimator=infonce")  # lambda = 1: different losses
    assert identity("marginal=none", "estimator.tau=0.2") != identity("marginal=none")  # the val MI's critic
    assert identity("marginal=barlow", "seed=1") != identity("marginal=barlow")
    assert identity("marginal=none", "marginal.weight=0.05") != identity("marginal=none")
    with_predictor = identity("paradigm=sdmi", "predictor=mlp")
    assert with_predictor != identity("paradigm=sdmi", "predictor=mlp", "predictor.lr_scale=10")


@pytest.mark.slow
def test_a_sweep_runs_each_distinct_run_once(tmp_path):
    args = ["-m", "marginal=none", "estimator=cos_dv,infonce,jsd", *TINY]
    ssrl_train(*args, cwd=tmp_path)
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    summaries = {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}
    by_estimator = {s["config"]["estimator"]["name"]: s for s in summaries.values()}
    cos_dv, infonce, jsd = (by_estimator[e] for e in ("cos_dv", "infonce", "jsd"))
    assert "same_run_as" not in cos_dv and "same_run_as" not in jsd  # JSD's joint term differs: trained
    assert summaries[infonce["same_run_as"]] is cos_dv
    assert infonce["probe_acc"] == cos_dv["probe_acc"] and infonce["history"] == cos_dv["history"]
    assert infonce["overrides"] != cos_dv["overrides"]  # its own folder's fields
    assert not (sweep / infonce["run_dir"].split("/")[-1] / "checkpoints").exists()
