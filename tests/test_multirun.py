"""The command researchers type: a Hydra multirun of the paper's axes, as a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import TINY


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
    assert len(list(sweep.glob("*/tb/events.out.tfevents.*"))) >= 6  # one log root for TensorBoard
