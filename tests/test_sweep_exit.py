"""A multirun's exit status says what failed (issue 25, cases 3 and 4): in-process sweeps whose jobs do
not train (ssrl.train.train replaced), so only the sweep's own mechanics run."""

from __future__ import annotations

import sys

import pytest

from ssrl import report, train
from tests.conftest import TINY


def sweep(tmp_path, monkeypatch, capsys, job) -> tuple[int, str]:
    """Run ``ssrl-train -m estimator.tau=0.1,0.001 TINY`` into tmp_path/sweep with ``job`` as each job's
    training: (exit status, the last line of stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "train", job)
    args = ["-m", "estimator.tau=0.1,0.001", *TINY, f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *args])
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()[-1]


def test_a_sweep_with_failed_jobs_exits_1_after_its_report_naming_them(tmp_path, monkeypatch, capsys):
    def diverges(cfg, run_dir, *args, **kwargs):
        raise RuntimeError("loss is NaN")

    code, line = sweep(tmp_path, monkeypatch, capsys, diverges)
    assert code == 1
    jobs = sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/summary.json"))
    assert len(jobs) == 2 and "estimator.tau=0.001" in jobs[0] and "estimator.tau=0.1" in jobs[1]
    assert line == f"ssrl-train: error: the sweep in {tmp_path / 'sweep'}: 2 failed job(s): {', '.join(jobs)} " + (
        "(errors in results.md)"
    )
    assert "0 completed, 2 failed" in (tmp_path / "sweep" / "results.md").read_text()


def test_a_failed_report_leaves_no_older_report_and_the_sweep_exits_1(tmp_path, monkeypatch, capsys):
    old = tmp_path / "sweep"
    old.mkdir()
    for name in ("results.md", "mi_curves.png", "phase_estimator.tau.png"):
        (old / name).write_text("an older report")

    def broken_plot(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(report, "plot_curves", broken_plot)
    code, line = sweep(tmp_path, monkeypatch, capsys, lambda cfg, run_dir, *args, **kwargs: {})
    assert code == 1
    assert line == f"ssrl-train: error: the sweep in {old}: the report was not written (retry: ssrl-report {old})"
    assert not list(old.glob("*.md")) and not list(old.glob("*.png")) and not list(old.glob("*.csv"))
    assert not list(old.glob(".report.*"))  # nor a half-written one
