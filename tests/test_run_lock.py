"""One process per run folder (issue 25, case 6): a second process gets one line and exit status 2,
before any work; a killed holder leaves no lock behind."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time

import pytest

from ssrl import train
from ssrl.errors import RunFolderBusy
from ssrl.run.lock import one_process
from tests.conftest import TINY

#: A process that holds the folder sys.argv[1] until it is killed.
HOLD = """import sys
from ssrl.run.lock import one_process
with one_process(sys.argv[1]):
    print("held", flush=True)
    sys.stdin.read()
"""


def test_a_run_folder_is_held_by_one_process_and_a_killed_one_leaves_no_lock(
    tmp_path, monkeypatch, capsys, config, repo_root
):
    folder = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(repo_root)},
    )
    try:
        assert holder.stdout.readline() == "held\n"
        # the same command again: refused before Hydra writes its record into the folder
        monkeypatch.chdir(tmp_path)
        monkeypatch.setattr(sys, "argv", ["ssrl-train", *TINY, f"hydra.run.dir={folder}"])
        with pytest.raises(SystemExit) as exit_info:
            train.main()
        assert exit_info.value.code == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(f"ssrl-train: error: {folder}: in use by process {holder.pid} (started ")
        assert line.endswith("wait for it to end, or give this run another folder (hydra.run.dir=...)")
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]
        # a job started without the command line (a launcher, the compose API) is refused too
        with pytest.raises(RunFolderBusy, match=f"in use by process {holder.pid}"):
            train.train(config(), folder, [])
        assert sorted(p.name for p in folder.iterdir()) == [".lock"]
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with one_process(folder), one_process(folder):  # free again; a process may hold its folder twice
        assert (folder / ".lock").read_text().startswith(f"process {os.getpid()} ")


def _worker(started) -> None:
    started.set()
    time.sleep(60)


def test_a_forked_worker_does_not_keep_the_lock(tmp_path):
    """A DataLoader worker forked while the job holds its folder: once the job's process lets go (or is
    killed), the folder is free, whether or not the worker has ended yet."""
    from ssrl.run.lock import check_free

    fork = multiprocessing.get_context("fork")
    started = fork.Event()
    with one_process(tmp_path):
        worker = fork.Process(target=_worker, args=(started,))
        worker.start()
        assert started.wait(60)  # the worker runs (its fork handlers are done)
    try:
        check_free(tmp_path)  # this process holds nothing now; the worker lives
        assert worker.is_alive()
    finally:
        worker.kill()
        worker.join()
