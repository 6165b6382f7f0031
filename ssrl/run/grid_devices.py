"""Which GPU a job of a local grid trains on (``hydra/launcher=local``: Hydra's joblib launcher).

The joblib launcher runs hydra.launcher.n_jobs jobs at a time in worker processes of one machine; left
alone, every one of them would take cuda:0. A one-device job of such a grid on a machine with G visible
GPUs (CUDA_VISIBLE_DEVICES counts) trains on GPU ``job number mod G`` instead, so jobs that run together
spread over the GPUs; with n_jobs > G several jobs share a GPU (each with its own memory: size n_jobs
to fit). Jobs of several devices each (trainer.devices > 1), SLURM jobs (their own allocation), single
runs and CPU runs are left as they are. The device is not part of the run's config (a job may resume on
another GPU); summary.json's ``ran.device`` records it.
"""

from __future__ import annotations

from typing import Any

import torch

JOBLIB = "JoblibLauncher"


def job_gpu(job_num: int, visible: int) -> int:
    """The GPU index of job ``job_num`` (0, 1, ...) among ``visible`` GPUs: round robin."""
    return job_num % visible


def local_grid_devices(trainer: Any, launcher_target: str, job_num: int, multirun: bool) -> list[int] | None:
    """Lightning's ``devices`` for this job, ``[job_gpu(...)]``, when it is a one-device CUDA job of a
    joblib multirun on a machine with several GPUs; None (trainer.devices as configured) otherwise.
    ``trainer``: the config's trainer node; ``launcher_target``: hydra.launcher._target_."""
    if not multirun or not str(launcher_target).endswith(JOBLIB):
        return None
    if str(trainer.accelerator) not in ("auto", "gpu", "cuda") or str(trainer.devices) != "1":
        return None
    if not torch.cuda.is_available() or torch.cuda.device_count() < 2:
        return None
    return [job_gpu(job_num, torch.cuda.device_count())]
