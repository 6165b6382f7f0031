"""The job README's first command runs: JMI + cos-DV on the bundled digits, with every default."""

from __future__ import annotations

import pytest

from ssrl.run.job import train
from tests.conftest import compose_config


@pytest.mark.slow
def test_default_job_learns(tmp_path):
    summary = train(compose_config(tiny=False), tmp_path, [])
    assert summary["status"] == "completed" and not summary["collapsed"]
    assert summary["probe_acc"] >= 0.97
    assert summary["probe_acc"] > summary["probe_acc_init"]
    mi = [h["mi"]["dv"] for h in summary["history"]]
    assert mi[-1] > mi[0] + 2.0, mi  # the DV estimate rises by nats, not by noise
