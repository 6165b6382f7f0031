"""Never lose a run: a run killed mid-epoch (SIGKILL) or told to stop (SIGTERM) resumes when the same
command runs again, and ends with the summary an uninterrupted run with the same seed gives."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import TINY, ssrl_train

# 4 batches an epoch, 3 epochs, a checkpoint every 2 batches: the first lands mid-epoch.
ARGS = [*TINY, "trainer.limit_train_batches=4", "trainer.max_epochs=3", "checkpoint_every_n_steps=2"]
SAME = ("probe_acc", "knn_acc", "mi", "effective_rank", "embedding_std", "steps", "epochs", "history", "collapsed")


def summary_of(cwd):
    paths = list((cwd / "outputs" / "runs").glob("*/summary.json"))
    return json.loads(paths[0].read_text()) if paths else {}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("paradigm", "sig"), [("jmi", signal.SIGKILL), ("sdmi", signal.SIGKILL), ("sdmi", signal.SIGTERM)]
)
def test_interrupted_run_resumes_to_the_same_summary(tmp_path, paradigm, sig):
    args = [f"paradigm={paradigm}", *ARGS]
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    reference.mkdir()
    interrupted.mkdir()
    ssrl_train(*args, cwd=reference)

    process = subprocess.Popen(
        [sys.executable, "-m", "ssrl.train", *args],
        cwd=interrupted,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not list(interrupted.glob("outputs/runs/*/checkpoints/last.ckpt")):
        assert process.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=300)
    if sig == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
        stopped = summary_of(interrupted)
        assert stopped["status"] == "running" and "SIGTERM" in stopped["stopped"]
        # issue 12, case 1: resuming it with another estimator and lambda is refused, the folder untouched
        other = ssrl_train(*args, "estimator=jsd", "marginal.weight=0.5", cwd=interrupted, check=False)
        assert other.returncode == 2 and "estimator.name=jsd, marginal.weight=0.5: " in other.stderr
        assert "trained with estimator.name=cos_dv, marginal.weight=1.0" in other.stderr
        assert summary_of(interrupted) == stopped
    else:
        assert process.returncode == -signal.SIGKILL
    assert summary_of(interrupted).get("status") != "completed"

    again = ssrl_train(*args, cwd=interrupted)  # the same command again
    assert "weights_only" not in again.stdout + again.stderr  # loaded with weights_only=True, no warning
    resumed, uninterrupted = summary_of(interrupted), summary_of(reference)
    assert resumed["status"] == "completed"
    for key in SAME:
        assert resumed[key] == uninterrupted[key], key


# ------------------------------------------------------------------ issue 12: the same experiment, or refused
@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A completed TINY run in R, as a user starts it: (cwd, R, its output)."""
    cwd = tmp_path_factory.mktemp("cwd")
    result = ssrl_train(*TINY, "hydra.run.dir=R", cwd=cwd)
    return cwd, cwd / "R", result


def _state(run):
    return {
        name: (run / name).read_bytes()
        for name in ("summary.json", ".hydra/overrides.yaml", ".hydra/config.yaml", "checkpoints/last.ckpt")
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ["estimator=jsd", "marginal.weight=0.5"],
            "estimator.name=jsd, marginal.weight=0.5: R holds a run trained with estimator.name=cos_dv, "
            "marginal.weight=1.0; a resumed run must be the same experiment",
        ),
        (  # a longer run under the cosine schedule is another experiment
            ["trainer.max_epochs=3"],
            "trainer.max_epochs=3: R holds a run trained with trainer.max_epochs=1 (trainer.max_epochs / max_steps "
            "may only grow, and only under optim.schedule=constant)",
        ),
        (["seed=1"], "seed=1: R holds a run trained with seed=0"),
    ],
)
def test_rerun_with_another_config_is_refused(finished, monkeypatch, capsys, change, message):
    """Issue 12, case 1: one line naming the fields and the way out, exit 2, the run folder untouched."""
    from ssrl import train as ssrl_train_module

    cwd, run, _ = finished
    before = _state(run)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["ssrl-train", *TINY, *change, "hydra.run.dir=R"])
    with pytest.raises(SystemExit) as exit_info:
        ssrl_train_module.main()
    assert exit_info.value.code == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("ssrl-train: error: ") and message in lines[0], lines
    assert "resume=false" in lines[0] and "another folder" in lines[0]
    assert _state(run) == before


def test_refused_job_in_a_multirun_leaves_its_folder_as_it_was(finished):
    """The check in the job itself (a multirun's jobs are not checked before Hydra starts them): the
    summary stays, and Hydra's record of the run (.hydra/), rewritten for the refused job, is restored."""
    from omegaconf import OmegaConf

    from ssrl.errors import ResumeRefused
    from ssrl.run.job import train
    from ssrl.run.resume import restore_hydra_record
    from tests.conftest import compose_config

    _, run, _ = finished
    summary = (run / "summary.json").read_bytes()
    overrides = OmegaConf.load(run / ".hydra" / "overrides.yaml")
    with pytest.raises(ResumeRefused, match="estimator.name=nwj: .* trained with estimator.name=cos_dv"):
        train(compose_config("estimator=nwj"), run, [*TINY, "estimator=nwj"])
    (run / ".hydra" / "overrides.yaml").write_text("- estimator=nwj\n")  # what Hydra writes before the job
    restore_hydra_record(run, run / "checkpoints" / "last.ckpt", ".hydra")
    assert OmegaConf.load(run / ".hydra" / "overrides.yaml") == overrides
    assert OmegaConf.load(run / ".hydra" / "config.yaml").estimator.name == "cos_dv"
    assert (run / "summary.json").read_bytes() == summary


def test_logging_and_launcher_fields_may_change(finished):
    """Fields that do not change what the run computes: the finished run is reported, not redone."""
    cwd, run, _ = finished
    before = (run / "summary.json").read_bytes()
    allowed = ["trainer.log_every_n_steps=2", "checkpoint_every_n_steps=7", "data.num_workers=0", "logger=csv"]
    result = ssrl_train(*TINY, *allowed, "hydra.run.dir=R", cwd=cwd)
    assert "R is already completed" in result.stdout
    assert (run / "summary.json").read_bytes() == before


def test_a_run_ends_with_its_summary_block(finished):
    """Issue 12, cases 10 and 11: the output ends with what the run found and where; train.log holds the
    run's log (Lightning's messages too); no weights_only warning."""
    _, run, result = finished
    summary = json.loads((run / "summary.json").read_text())
    block = result.stdout.strip().splitlines()[-12:]
    assert block[0] == block[-1] == "=" * 72 and block[1] == "ssrl run R"
    rows = dict(line.strip().split("  ", 1) for line in block[2:-1])
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    assert rows["status"] == "completed"
    assert rows["probe accuracy"] == f"{summary['probe_acc']:.3f} (untrained encoder {summary['probe_acc_init']:.3f})"
    assert rows["kNN accuracy"] == f"{summary['knn_acc']:.3f} (untrained encoder {summary['knn_acc_init']:.3f})"
    start, end = summary["mi_init"]["cos_dv"], summary["mi"]["cos_dv"]
    assert rows["MI held out, nats"].startswith(f"start -> end: cos_dv {start:.2f} -> {end:.2f}")
    assert rows["collapsed"].startswith("yes" if summary["collapsed"] else "no")
    assert rows["wall time"] == f"{summary['wall_s']:.1f} s"
    assert rows["summary"] == str(run.resolve() / "summary.json")
    assert rows["TensorBoard"] == f"tensorboard --logdir {run.resolve() / 'tb'}"
    assert "weights_only" not in result.stdout + result.stderr
    log = (run / "train.log").read_text()
    assert "`Trainer.fit` stopped: `max_epochs=1` reached." in log and "probe accuracy" in log


@pytest.mark.slow
def test_a_longer_run_extends_under_a_constant_schedule(tmp_path):
    """trainer.max_epochs may grow on resume when the learning rate does not depend on the run's length:
    1 epoch, then extended to 2, ends as a 2-epoch run does."""
    from ssrl.run.job import train
    from tests.conftest import compose_config

    train(compose_config("optim.schedule=constant"), tmp_path / "extended", [])
    extended = train(compose_config("optim.schedule=constant", "trainer.max_epochs=2"), tmp_path / "extended", [])
    reference = train(compose_config("optim.schedule=constant", "trainer.max_epochs=2"), tmp_path / "reference", [])
    assert extended["steps"] == 4 and extended["epochs"] == 2
    for key in SAME:
        assert extended[key] == reference[key], key
