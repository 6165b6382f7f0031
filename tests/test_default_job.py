"""The job README's first command runs: JMI + cos-DV on styled digits, with every default."""

from __future__ import annotations

import pytest

from ssrl.run.job import train
from tests.conftest import compose_config


@pytest.mark.slow
def test_default_job_learns(tmp_path):
    summary = train(compose_config(tiny=False), tmp_path, [])
    assert summary["config"]["data"]["name"] == "styled_digits" and summary["config"]["backbone"]["width"] == 32
    assert summary["status"] == "completed" and not summary["collapsed"]
    assert summary["probe_acc_init"] <= 0.5  # the untrained encoder cannot read the digit through its style
    assert summary["probe_acc"] >= summary["probe_acc_init"] + 0.15, summary["probe_acc"]
    mi = [h["mi"]["dv"] for h in summary["history"]]
    assert mi[-1] > mi[0] + 1.5, mi  # the DV estimate rises by nats, not by noise
