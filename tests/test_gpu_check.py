"""scripts/gpu_check.py never rots: its --smoke mode runs every part (environment, estimators in bf16,
training throughput of ssrl and the bare loop for JMI, SDMI and SDMI-EMA, batched views, an end-to-end
ssrl-train run stopped by SIGTERM and resumed) at tiny sizes on the CPU, through the code a GPU runs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.xfail(
    reason="open (issue 23): the resumed smoke run's history differs from the uninterrupted one's", strict=False
)
@pytest.mark.timeout(1800)  # it ran past 900 s on 2 cores shared with four other jobs
def test_gpu_check_smoke_runs_every_part(tmp_path, repo_root):
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, str(repo_root / "scripts" / "gpu_check.py"), "--smoke", "--out", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1700,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    parts = results["parts"]
    expected = {"environment", "estimators", "data", "views", "end_to_end"}
    expected |= {f"training {p}" for p in ("jmi", "sdmi", "sdmi_ema")}
    assert set(parts) == expected
    assert all(part["ok"] for part in parts.values())
    for paradigm in ("jmi", "sdmi", "sdmi_ema"):
        case = parts[f"training {paradigm}"]["value"]
        assert case["ssrl_img_s"] > 0 and case["bare_img_s"] > 0
    assert parts["estimators"]["value"]["worst"] <= parts["estimators"]["value"]["tolerance"]
    e2e = parts["end_to_end"]["value"]
    assert e2e["status"] == "completed" and e2e["loss_finite"] and e2e["tensorboard_losses"] > 0
    assert e2e["sigterm_exit"] == 143 and "SIGTERM" in e2e["stopped"]
    assert e2e["resume"]["identical"]  # on the CPU the resumed run equals the uninterrupted one exactly
    table = (out / "table.md").read_text()
    assert "| jmi | False |" in table and "end_to_end | ok" in table
