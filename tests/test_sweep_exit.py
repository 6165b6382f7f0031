"""A multirun's exit status says what failed (issue 25, cases 3 and 4): in-process sweeps whose jobs do
not train (ssrl.train.train replaced), so only the sweep's own mechanics run."""

from __future__ import annotations

import sys

import pytest

from ssrl import report, train
from ssrl.errors import RunFolderBusy
from tests.conftest import TINY


def sweep(tmp_path, monkeypatch, capsys, job) -> tuple[int, str]:
    """Run ``ssrl-train -m estimator.tau=0.1,0.001 TINY`` into tmp_path/sweep with ``job`` as each job's
    training: (exit status, the last line of stderr)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(train, "train", job)
    args = ["-m", "estimator.tau=0.1,0.001", *TINY, "hydra.sweep.dir=sweep"]  # relative, as Hydra's default
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *args])
    with pytest.raises(SystemExit) as exit_info:
        train.main()
    return exit_info.value.code, capsys.readouterr().err.strip().splitlines()[-1]


def test_a_sweep_with_failed_jobs_exits_1_after_its_report_naming_them(tmp_path, monkeypatch, capsys):
    def fails(cfg, run_dir, *args, **kwargs):  # one job diverges, the other is refused (and writes nothing)
        if cfg.estimator.tau == 0.1:
            raise RunFolderBusy(f"{run_dir}: in use by process 1")
        raise RuntimeError("loss is NaN")

    code, line = sweep(tmp_path, monkeypatch, capsys, fails)
    assert code == 1
    jobs = sorted(p.parent.name for p in (tmp_path / "sweep").glob("*/.hydra"))
    assert len(jobs) == 2 and "estimator.tau=0.001" in jobs[0] and "estimator.tau=0.1" in jobs[1]
    assert line == f"ssrl-train: error: the sweep in {tmp_path / 'sweep'}: 2 failed job(s): {', '.join(jobs)} " + (
        "(errors above and in results.md)"
    )
    assert "0 completed, 1 failed" in (tmp_path / "sweep" / "results.md").read_text()  # the refused one: not started


def test_jobs_run_elsewhere_count_by_the_summaries_they_wrote_since_the_sweep_started(tmp_path, capsys):
    """Jobs that a launcher ran in other processes (joblib, SLURM): failed by their summary.json, written
    since the multirun started; a failure left from an earlier sweep in the folder does not count."""
    from omegaconf import OmegaConf

    from ssrl.run.hydra_callbacks import ExitStatus
    from ssrl.run.summary import write_summary

    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    write_summary(tmp_path / "seed=0", {"status": "failed"})  # an earlier sweep's
    status = ExitStatus()
    status.on_multirun_start(config)
    write_summary(tmp_path / "seed=1", {"status": "failed"})
    write_summary(tmp_path / "seed=2", {"status": "completed"})
    (tmp_path / "results.md").write_text("the report")
    with pytest.raises(SystemExit) as exit_info:
        status.on_multirun_end(config)
    assert exit_info.value.code == 1
    assert capsys.readouterr().err == (
        f"ssrl-train: error: the sweep in {tmp_path}: 1 failed job(s): seed=1 (errors above and in results.md)\n"
    )


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
