"""Never lose a run: a run killed mid-epoch (SIGKILL) or told to stop (SIGTERM) resumes when the same
command runs again, and ends with the summary an uninterrupted run with the same seed gives: with
in-memory batches, with image folders (decoded and cropped per sample in workers) and with the
per-sample pipeline, for JMI and SDMI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import TINY, ssrl_train
from tests.folders import FOLDER_ARGS, image_folder, without_data

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
    interrupt_and_resume(tmp_path, [f"paradigm={paradigm}", *ARGS], sig)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("paradigm", "sig", "workers"),
    [("jmi", signal.SIGTERM, 0), ("sdmi", signal.SIGKILL, 2)],
)
def test_image_folder_run_resumes_to_the_same_summary(tmp_path, paradigm, sig, workers):
    root = image_folder(tmp_path / "images")
    folder = [*FOLDER_ARGS, f"data.root={root}", f"data.num_workers={workers}"]
    interrupt_and_resume(tmp_path, [f"paradigm={paradigm}", *without_data(ARGS), *folder], sig)


@pytest.mark.slow
@pytest.mark.parametrize(("paradigm", "sig"), [("jmi", signal.SIGKILL), ("sdmi", signal.SIGTERM)])
def test_per_sample_run_resumes_to_the_same_summary(tmp_path, paradigm, sig):
    # workers draw the same views as the main process (keys carry (epoch, index)): covered with image folders
    args = [f"paradigm={paradigm}", *ARGS, "data.pipeline=per_sample", "data.num_workers=0"]
    interrupt_and_resume(tmp_path, args, sig)


def interrupt_and_resume(tmp_path, args, sig):
    """Run ``args`` uninterrupted; run them again, send ``sig`` once the first (mid-epoch) checkpoint is
    written, rerun the same command; the two summaries must agree."""
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
    else:
        assert process.returncode == -signal.SIGKILL
    assert summary_of(interrupted).get("status") != "completed"

    ssrl_train(*args, cwd=interrupted)  # the same command again
    resumed, uninterrupted = summary_of(interrupted), summary_of(reference)
    assert resumed["status"] == "completed"
    for key in SAME:
        assert resumed[key] == uninterrupted[key], key
