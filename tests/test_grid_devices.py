"""A local grid (hydra/launcher=local, Hydra's joblib launcher) on one machine: a GPU per job, and
DataLoader workers that start inside the launcher's loky worker processes."""

from __future__ import annotations

import torch
from joblib import Parallel, delayed
from joblib.externals.loky import get_reusable_executor
from omegaconf import open_dict
from torch.utils.data import Dataset

import ssrl.train
from ssrl.data.module import DatasetBatches
from ssrl.run import tensorboard
from ssrl.run.grid_devices import local_grid_devices
from ssrl.run.job import build_trainer


def gpus(monkeypatch, count: int) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: count > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)


def test_each_job_of_a_local_grid_takes_the_next_gpu(config, monkeypatch):
    gpus(monkeypatch, 3)
    cfg = config("hydra/launcher=local", "trainer=gpu", with_hydra=True)
    target = cfg.hydra.launcher._target_
    assert [local_grid_devices(cfg.trainer, target, n, True) for n in range(5)] == [[0], [1], [2], [0], [1]]
    assert local_grid_devices(cfg.trainer, target, 4, False) is None  # a single run: as configured
    assert local_grid_devices(cfg.trainer, "hydra._internal.core_plugins.basic_launcher.BasicLauncher", 4, True) is None
    cfg.trainer.devices = 2  # a job of several GPUs: as configured
    assert local_grid_devices(cfg.trainer, target, 4, True) is None
    cfg.trainer.devices, cfg.trainer.accelerator = 1, "cpu"
    assert local_grid_devices(cfg.trainer, target, 4, True) is None
    gpus(monkeypatch, 1)
    cfg.trainer.accelerator = "gpu"
    assert local_grid_devices(cfg.trainer, target, 4, True) is None  # one GPU: Lightning's cuda:0


def test_a_job_of_a_local_grid_trains_on_its_gpu(config, monkeypatch, tmp_path):
    """run_job hands the job's GPU to the Trainer, not to the run's config (which a resume compares)."""
    gpus(monkeypatch, 4)
    cfg = config("hydra/launcher=local", "trainer=gpu", with_hydra=True)
    with open_dict(cfg):
        cfg.hydra.mode, cfg.hydra.job.num = "MULTIRUN", 6
        cfg.hydra.runtime.output_dir, cfg.hydra.sweep.dir = str(tmp_path / "6"), str(tmp_path)
    hydra_config = ssrl.train.HydraConfig.instance()
    monkeypatch.setattr(hydra_config, "cfg", hydra_config.cfg)  # put back after the test
    hydra_config.set_config(cfg)
    seen = {}
    monkeypatch.setattr(ssrl.train, "train", lambda cfg, *args, **kwargs: seen.update(kwargs, config=cfg))
    ssrl.train.run_job(cfg)
    assert seen["devices"] == [2] and seen["config"].trainer.devices == 1
    cpu = config("trainer=cpu", "trainer.precision=32-true")
    trainer = build_trainer(cpu, tmp_path, [], tensorboard.single_run_place(tmp_path, []), devices=3)
    assert trainer.num_devices == 3


class Numbers(Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, key: tuple[int, int]) -> int:
        return key[1]


def loaded_in_worker() -> list[int]:
    batches = DatasetBatches(Numbers(), batch_size=4, seed=0, num_workers=1)
    return sorted(i for batch in batches for i in batch.tolist())


def test_dataloader_workers_start_inside_the_local_launchers_workers():
    """joblib's loky workers start processes their own way ("loky"); a DataLoader with workers there
    failed with "'Process' object has no attribute 'env'" (issue 23, break 1)."""
    try:  # n_jobs=2: a loky worker process (with n_jobs=1 joblib runs the task in this process)
        assert Parallel(n_jobs=2, backend="loky")([delayed(loaded_in_worker)()]) == [list(range(8))]
    finally:
        get_reusable_executor().shutdown(wait=True)
