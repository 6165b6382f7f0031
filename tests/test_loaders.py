"""Every training loader resumes mid-epoch exactly (issue 12, case 2): a loader restored from the state
saved after batch k hands out the batches k+1.. that the uninterrupted loader hands out, views and all:
the in-memory batches, the per-sample pipeline, and image folders through either."""

from __future__ import annotations

import pytest
import torch

from ssrl.data.module import SSLDataModule
from tests.folders import FOLDER_ARGS, image_folder


def flat(batch) -> list[torch.Tensor]:
    images, labels = batch
    return [*(images if isinstance(images, (tuple, list)) else [images]), labels]


def epochs_of(loader, epochs: int) -> list[list[torch.Tensor]]:
    return [flat(batch) for _ in range(epochs) for batch in loader]


@pytest.mark.parametrize("kind", ["in_memory", "per_sample", "imagefolder", "imagefolder_per_sample"])
def test_a_loader_restored_mid_epoch_continues_as_the_uninterrupted_one(tmp_path, config, kind):
    per_sample = ["data.pipeline=per_sample"] if kind.endswith("per_sample") else []
    if kind.startswith("imagefolder"):
        cfg = config(*FOLDER_ARGS, f"data.root={image_folder(tmp_path / 'images')}", *per_sample, tiny=False)
    else:
        cfg = config(*per_sample, "data.batch_size=4")
    fresh = SSLDataModule(cfg.data, seed=3)
    whole = epochs_of(fresh.train_dataloader(), 2)

    interrupted = SSLDataModule(cfg.data, seed=3).train_dataloader()
    first = iter(interrupted)
    before = [flat(next(first)), flat(next(first))]  # two batches of epoch 0, then the run is killed
    state = interrupted.state_dict()
    assert state == {"epoch": 0, "served": 2}

    resumed = SSLDataModule(cfg.data, seed=3)
    resumed.load_state_dict(state)
    after = epochs_of(resumed.train_dataloader(), 2)  # the rest of epoch 0, then epoch 1
    assert len(before) + len(after) == len(whole)
    for ours, theirs in zip(before + after, whole, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    # a different seed, different batches
    other = epochs_of(SSLDataModule(cfg.data, seed=4).train_dataloader(), 1)
    assert not all(torch.equal(a, b) for a, b in zip(other[0], whole[0], strict=True))
