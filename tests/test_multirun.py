"""The command researchers type: a Hydra multirun of the paper's axes, as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import TINY
from tests.tb_reader import read_hparams


@pytest.mark.slow
def test_multirun_runs_every_job(tmp_path):
    args = ["-m", "paradigm=jmi,sdmi", "estimator=cos_dv,infonce,jsd", *TINY]
    result = subprocess.run(
        [sys.executable, "-m", "ssrl.train", *args], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    summaries = [json.loads(p.read_text()) for p in sweep.glob("*/summary.json")]
    assert len(summaries) == 6
    assert all(s["status"] == "completed" for s in summaries)
    jobs = {(s["config"]["paradigm"]["name"], s["config"]["estimator"]["name"]) for s in summaries}
    assert jobs == {(p, e) for p in ("jmi", "sdmi") for e in ("cos_dv", "infonce", "jsd")}
    # TensorBoard: one experiment for the sweep, one session per run named by its swept values
    experiment, groups = read_hparams(sweep / "tensorboard")
    assert [h.name for h in experiment.hparam_infos if h.differs] == ["estimator", "paradigm"]
    assert {"paradigm.e_steps", "estimator.symmetric"} <= {h.name for h in experiment.hparam_infos}
    assert {g.name for g in groups} == {f"{p},{e}" for p in ("jmi", "sdmi") for e in ("cos_dv", "infonce", "jsd")}
    measured = {m.name.tag for m in experiment.metric_infos if not m.name.tag.startswith("MI/probe/")}  # TINY: no probe
    assert all({v.name.tag for v in g.sessions[0].metric_values} == measured for g in groups)
