"""Grids that lose nothing: a failing job is recorded and the rest go on, a rerun of the same multirun
redoes only what did not complete; the SLURM launcher composes and runs (locally); DDP under Hydra keeps
one folder per job."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from tests.conftest import TINY, ssrl_train


def image_folder(root, corrupt: bool):
    for split in ("train", "val"):
        for label in ("a", "b"):
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(8):
                Image.new("RGB", (8, 8), color=(40 * i, 100 if label == "a" else 200, 0)).save(folder / f"{i}.png")
    if corrupt:
        (root / "train" / "a" / "0.png").write_bytes(b"not a png")


def summaries(sweep):
    return {p.parent.name: json.loads(p.read_text()) for p in sweep.glob("*/summary.json")}


@pytest.mark.slow
def test_failed_job_is_recorded_and_only_it_reruns(tmp_path):
    image_folder(tmp_path / "good", corrupt=False)
    image_folder(tmp_path / "bad", corrupt=True)
    args = [
        "-m",
        "data=imagefolder",
        f"data.root={tmp_path / 'good'},{tmp_path / 'bad'}",
        "data.image_size=8",
        "data.decode_size=8",
        "data.batch_size=8",
        "data.val_fraction=0.5",  # 16 images in train/: 8 to train on, 8 for val (one batch each)
        "data.num_workers=0",
        *[a for a in TINY if not a.startswith("data=")],
    ]
    run = ssrl_train(*args, cwd=tmp_path, check=False)
    assert run.returncode == 1 and "1 failed job(s)" in run.stderr  # the sweep's exit says a job failed
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    first = summaries(sweep)
    assert len(first) == 2
    (failed,) = [s for s in first.values() if s["status"] == "failed"]
    (done,) = [s for s in first.values() if s["status"] == "completed"]
    assert "cannot decode image" in failed["error"] and "0.png" in failed["error"]
    assert "failed" in (sweep / "results.md").read_text()

    rerun = ssrl_train(*args, cwd=tmp_path, check=False)
    assert rerun.returncode == 1 and rerun.stdout.count("already completed") == 1
    second = summaries(sweep)
    assert second[next(k for k, s in first.items() if s is done)]["wall_s"] == done["wall_s"]  # not redone
    assert [s["status"] for s in second.values()].count("failed") == 1


@pytest.mark.slow
def test_submitit_launcher_runs_locally(tmp_path):
    ssrl_train("-m", "hydra/launcher=submitit_local", "estimator=cos_dv,jsd", *TINY, cwd=tmp_path)
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    assert sorted(s["status"] for s in summaries(sweep).values()) == ["completed", "completed"]


def test_slurm_launcher_config_composes(config):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from ssrl.train import CONFIG_DIR

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(
            "train", overrides=["hydra/launcher=slurm", "hydra.launcher.partition=gpu"], return_hydra_config=True
        )
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.array_parallelism) == ("gpu", 1, 64)
    assert {"timeout_min", "cpus_per_task", "mem_gb", "tasks_per_node"} <= set(launcher)


@pytest.mark.slow
def test_ddp_under_hydra_multirun_keeps_one_folder_per_job(tmp_path):
    ssrl_train(
        "-m",
        "estimator=cos_dv,jsd",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.strategy=ddp",
        *TINY,
        cwd=tmp_path,
    )
    assert not (tmp_path / "outputs" / "runs").exists()
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    folders = [p for p in sweep.iterdir() if p.is_dir() and p.name != "tensorboard"]  # the run folders
    assert len(folders) == 2
    assert all(s["status"] == "completed" for s in summaries(sweep).values()) and len(summaries(sweep)) == 2
