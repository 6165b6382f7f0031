"""Never lose a run: a run killed mid-epoch (SIGKILL) or told to stop (SIGTERM) resumes when the same
command runs again, and ends with the summary an uninterrupted run with the same seed gives: with
in-memory batches, with image folders (decoded and cropped per sample in workers) and with the
per-sample pipeline, for JMI and SDMI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import TINY, ssrl_train
from tests.folders import FOLDER_ARGS, image_folder, without_data

# 4 batches an epoch, 3 epochs, a checkpoint every 2 batches: the first lands mid-epoch. (The clock is
# checked on every log_every_n_steps-th batch; 0.0001 minutes have always passed by the next check.)
ARGS = [
    *TINY,
    "trainer.limit_train_batches=4",
    "trainer.max_epochs=3",
    "trainer.log_every_n_steps=2",
    "checkpoint_every_minutes=0.0001",
]
SAME = ("probe_acc", "knn_acc", "mi", "effective_rank", "embedding_std", "steps", "epochs", "history", "collapsed")


def summary_of(cwd, folder="outputs/runs/*"):
    paths = list(cwd.glob(f"{folder}/summary.json"))
    return json.loads(paths[0].read_text()) if paths else {}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """paradigm -> the summary of an uninterrupted run with ARGS (each run once per module)."""
    runs: dict[str, dict] = {}

    def summary(paradigm: str) -> dict:
        if paradigm not in runs:
            cwd = tmp_path_factory.mktemp(f"reference_{paradigm}")
            ssrl_train(f"paradigm={paradigm}", *ARGS, cwd=cwd)
            runs[paradigm] = summary_of(cwd)
        return runs[paradigm]

    return summary


@pytest.mark.slow
@pytest.mark.parametrize(
    ("paradigm", "sig"), [("jmi", signal.SIGKILL), ("sdmi", signal.SIGKILL), ("sdmi", signal.SIGTERM)]
)
def test_interrupted_run_resumes_to_the_same_summary(tmp_path, uninterrupted, paradigm, sig):
    args = [f"paradigm={paradigm}", *ARGS]
    interrupted = interrupt(tmp_path, args, sig)
    if sig == signal.SIGTERM:
        stopped = summary_of(interrupted)
        # issue 12, case 1: resuming it with another estimator and lambda is refused, the folder untouched
        folder = next(interrupted.glob("outputs/runs/*/summary.json")).parent
        other = ssrl_train(
            *args, "estimator=jsd", "marginal.weight=0.5", f"hydra.run.dir='{folder}'", cwd=interrupted, check=False
        )
        assert other.returncode == 2 and "estimator.name=jsd, marginal.weight=0.5: " in other.stderr
        assert "trained with estimator.name=cos_dv, marginal.weight=1.0" in other.stderr
        assert summary_of(interrupted) == stopped
    resume_as(interrupted, args, uninterrupted(paradigm))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("paradigm", "sig", "workers"),
    [("jmi", signal.SIGTERM, 0), ("sdmi", signal.SIGKILL, 2)],
)
def test_image_folder_run_resumes_to_the_same_summary(tmp_path, paradigm, sig, workers):
    root = image_folder(tmp_path / "images")
    folder = [*FOLDER_ARGS, f"data.root={root}", f"data.num_workers={workers}"]
    args = [f"paradigm={paradigm}", *without_data(ARGS), *folder]
    reference = tmp_path / "reference"
    reference.mkdir()
    ssrl_train(*args, cwd=reference)
    resume_as(interrupt(tmp_path, args, sig), args, summary_of(reference))


@pytest.mark.slow
@pytest.mark.parametrize(("paradigm", "sig"), [("jmi", signal.SIGKILL), ("sdmi", signal.SIGTERM)])
def test_per_sample_run_resumes_to_the_same_summary(tmp_path, paradigm, sig):
    # workers draw the same views as the main process (keys carry (epoch, index)): covered with image folders
    args = [f"paradigm={paradigm}", *ARGS, "data.pipeline=per_sample", "data.num_workers=0"]
    reference = tmp_path / "reference"
    reference.mkdir()
    ssrl_train(*args, cwd=reference)
    resume_as(interrupt(tmp_path, args, sig), args, summary_of(reference))


def start_until_checkpoint(args, cwd, checkpoint_glob, stdout):
    """``python -m ssrl.train ARGS`` started in ``cwd``, returned once its first checkpoint exists."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ssrl.train", *args], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 300
    while not list(cwd.glob(checkpoint_glob)):
        assert process.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    return process


def interrupt(tmp_path, args, sig):
    """Start ``args`` in a new folder and send ``sig`` once the first (mid-epoch) checkpoint is written;
    the folder, with a run that did not complete."""
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    process = start_until_checkpoint(args, interrupted, "outputs/runs/*/checkpoints/last.ckpt", subprocess.DEVNULL)
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=300)
    if sig == signal.SIGTERM:
        assert process.returncode == 128 + signal.SIGTERM, stderr[-2000:]
        stopped = summary_of(interrupted)
        assert stopped["status"] == "running" and "SIGTERM" in stopped["stopped"]
    else:
        assert process.returncode == -signal.SIGKILL
    assert summary_of(interrupted).get("status") != "completed"
    return interrupted


def resume_as(interrupted, args, reference):
    """Rerun the same command in ``interrupted``: it ends with the ``reference`` summary."""
    again = ssrl_train(*args, cwd=interrupted)
    assert "weights_only" not in again.stdout + again.stderr  # loaded with weights_only=True, no warning
    resumed = summary_of(interrupted)
    assert resumed["status"] == "completed"
    for key in SAME:
        assert resumed[key] == reference[key], key


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the job's process in /proc")
def test_time_limit_under_submitit_checkpoints_requeues_and_resumes(tmp_path, uninterrupted):
    """Issue 12, case 4: submitit's own protocol, through Hydra's submitit launcher (its local executor
    stands in for SLURM: same signal handler, same checkpoint-and-requeue). The job gets SIGUSR2, as
    SLURM sends it signal_delay_s before the time limit: ssrl writes its checkpoint after the current
    batch, submitit requeues the job, and the requeued job resumes to the summary of an uninterrupted run."""
    args = ["-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "paradigm=sdmi", *ARGS]
    process = start_until_checkpoint(args, tmp_path, "outputs/multirun/*/*/checkpoints/last.ckpt", subprocess.PIPE)
    (job_folder,) = [p for p in tmp_path.glob("outputs/multirun/*/.submitit/*") if p.name.isdigit()]
    (task,) = _children(int(job_folder.name))  # the job id of submitit's local executor is its controller's pid
    os.kill(task, signal.SIGUSR2)
    stdout, stderr = process.communicate(timeout=600)
    assert process.returncode == 0, stderr[-3000:]

    run = "outputs/multirun/*/*"
    log = (job_folder / f"{job_folder.name}_0_log.out").read_text()
    assert "Caught signal SIGUSR2" in log and "Requeued job" in log and "Job completed successfully" in log
    train_log = next(tmp_path.glob(f"{run}/train.log")).read_text()
    stopped_after = int(train_log.split("stopped: SIGUSR2 after batch ")[1].split(";")[0])
    assert 2 <= stopped_after < 12  # stopped mid-run, then resumed
    resumed, reference = summary_of(tmp_path, run), uninterrupted("sdmi")
    assert resumed["status"] == "completed" and resumed["steps"] == 12
    for key in SAME:
        assert resumed[key] == reference[key], key


def test_a_launcher_that_will_not_requeue_is_reported():
    """submitit's handler raises when the job timed out more than max_num_timeout times: the run says so,
    and that its checkpoint is written."""
    from ssrl.run.callbacks import NotRequeued, StopOnSignal

    def submitit_gives_up(signum, frame):
        raise RuntimeError("Job not requeued because: timed-out too many times.")

    stop = StopOnSignal(Path("R/checkpoints/last.ckpt"))
    stop.launcher_handlers[signal.SIGUSR2] = submitit_gives_up
    stop.signal = signal.SIGUSR2
    with pytest.raises(NotRequeued, match="timed-out too many times.; the checkpoint R/checkpoints/last.ckpt is"):
        stop.hand_over()
    stop.signal = signal.SIGTERM  # no launcher handler of its own: ssrl exits 128 + 15 itself
    stop.launcher_handlers[signal.SIGTERM] = signal.SIG_DFL
    stop.hand_over()


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
    allowed = ["trainer.log_every_n_steps=2", "checkpoint_every_minutes=7", "data.num_workers=0", "logger=csv"]
    result = ssrl_train(*TINY, *allowed, "hydra.run.dir=R", cwd=cwd)
    assert "R is already completed" in result.stdout
    assert (run / "summary.json").read_bytes() == before


def test_a_run_ends_with_its_summary_block(finished):
    """Issue 12, cases 10 and 11: the output ends with what the run found and where; train.log holds the
    run's log (Lightning's messages too); no weights_only warning."""
    _, run, result = finished
    summary = json.loads((run / "summary.json").read_text())
    lines = result.stdout.strip().splitlines()
    block = lines[len(lines) - 1 - lines[::-1].index("ssrl run R") - 1 :]
    assert block[0] == block[-1] == "=" * 72 and block[1] == "ssrl run R"
    rows = dict(line.strip().split("  ", 1) for line in block[2:-1])
    rows = {k.strip(): v.strip() for k, v in rows.items()}
    assert rows["status"] == "completed"
    assert rows["probe accuracy"] == f"{summary['probe_acc']:.3f} (untrained encoder {summary['probe_acc_init']:.3f})"
    assert rows["kNN accuracy"] == f"{summary['knn_acc']:.3f} (untrained encoder {summary['knn_acc_init']:.3f})"
    start, end = summary["mi_init"]["dv"], summary["mi"]["dv"]
    assert rows["MI held out, nats"].startswith(f"start -> end: dv {start:.2f} -> {end:.2f}")
    assert "jsd" not in rows["MI held out, nats"] and "nwj" not in rows["MI held out, nats"]  # nats only
    assert rows["collapsed"].startswith("yes" if summary["collapsed"] else "no")
    assert rows["wall time"] == f"{summary['wall_s']:.1f} s"
    assert rows["summary"] == str(run.resolve() / "summary.json")
    assert rows["TensorBoard"] == f"tensorboard --logdir {run.resolve() / 'tensorboard'}"
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
