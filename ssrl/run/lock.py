"""One process per run folder: an exclusive lock (fcntl.flock) on <run>/.lock while a job runs there.

The kernel releases the lock when the process ends, however it ends (a killed process leaves no lock
behind); the file stays, holding the last holder's process id and start time, which the refusal names.
A process may take the lock again while it holds it; its forked children (DataLoader workers) do not
keep it; the ranks > 0 of a DDP job (RANK_VARIABLES), which re-run the job in rank 0's folder, take none.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ssrl.errors import RunFolderBusy

LOCK = ".lock"
RANK_VARIABLES = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID")
#: The folders this process holds, with their lock file's descriptor and how many holds are open.
_HELD: dict[Path, list[int]] = {}


def _forget_in_child() -> None:
    """In a forked child (a DataLoader worker): close its copies of the lock files, so that the lock ends
    with the process that took it, not with its last worker."""
    for fd, _ in _HELD.values():
        os.close(fd)
    _HELD.clear()


os.register_at_fork(after_in_child=_forget_in_child)


def _first_process() -> bool:
    """Whether this is a job's first process (global rank 0), by what launchers set (torchrun, Lightning's
    DDP launcher, SLURM): any other rank runs in its first process's folder."""
    return all(os.environ.get(name, "0").strip() in ("", "0") for name in RANK_VARIABLES)


def _refusal(run_dir: Path, fd: int) -> RunFolderBusy:
    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
    return RunFolderBusy(
        f"{run_dir}: in use by {holder}; wait for it to end, or give this run another folder (hydra.run.dir=...)"
    )


def check_free(run_dir: Path) -> None:
    """Raise RunFolderBusy (one line naming the folder and the holder) if another process holds
    ``run_dir``; take nothing."""
    path = Path(run_dir) / LOCK
    if not _first_process() or Path(run_dir).resolve() in _HELD or not path.exists():
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _refusal(run_dir, fd) from None
    finally:
        os.close(fd)  # also releases the shared lock


@contextmanager
def one_process(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir`` for this process while the block runs; RunFolderBusy if another process holds it."""
    key = Path(run_dir).resolve()
    if not _first_process():
        yield
        return
    if key not in _HELD:
        key.mkdir(parents=True, exist_ok=True)
        fd = os.open(key / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            error = _refusal(Path(run_dir), fd)
            os.close(fd)
            raise error from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} (started {time.strftime('%Y-%m-%d %H:%M:%S')})".encode(), 0)
        _HELD[key] = [fd, 0]
    _HELD[key][1] += 1
    try:
        yield
    finally:
        _HELD[key][1] -= 1
        if _HELD[key][1] == 0:
            os.close(_HELD.pop(key)[0])  # releases the lock
