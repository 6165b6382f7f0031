"""The batched two-view pipeline: per-sample randomness, determinism, and the same crop and flip
statistics as torchvision's per-sample RandomResizedCrop and RandomHorizontalFlip."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import ks_2samp
from torch import Tensor
from torchvision.transforms import RandomResizedCrop

from ssrl.data.views import BatchedViews, crop_and_flip, sample_crops


def test_crop_scales_and_ratios_match_torchvision():
    scale, ratio, size, n = (0.08, 1.0), (3 / 4, 4 / 3), 224, 20000
    ours = sample_crops(n, scale, ratio, torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    image = torch.zeros(1, size, size)
    theirs = (
        torch.tensor(
            [RandomResizedCrop.get_params(image, list(scale), list(ratio))[2:] for _ in range(n)], dtype=torch.float
        )
        / size
    )  # (h, w) as fractions
    ours_area, theirs_area = ours[:, 2] * ours[:, 3], theirs[:, 0] * theirs[:, 1]
    ours_ratio, theirs_ratio = ours[:, 2] / ours[:, 3], theirs[:, 1] / theirs[:, 0]
    assert ks_2samp(ours_area.numpy(), theirs_area.numpy()).statistic < 0.02
    assert ks_2samp(ours_ratio.numpy(), theirs_ratio.numpy()).statistic < 0.03
    assert (ours[:, 0] >= 0).all() and (ours[:, 0] + ours[:, 2] <= 1 + 1e-6).all()
    # crops are centred uniformly over the room left, as torchvision's integer offsets are
    centre = ours[:, 0] + ours[:, 2] / 2
    assert abs(centre.mean().item() - 0.5) < 0.01


def test_crop_and_flip_resample_the_box():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    whole = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    torch.testing.assert_close(crop_and_flip(x, whole, torch.tensor([False]), 4), x)
    torch.testing.assert_close(crop_and_flip(x, whole, torch.tensor([True]), 4), x.flip(-1))
    left_half = torch.tensor([[0.0, 0.0, 0.5, 1.0]])
    out = crop_and_flip(x, left_half, torch.tensor([False]), 4)
    assert out[0, 0, :, 0].tolist() == pytest.approx(x[0, 0, :, 0].tolist(), abs=0.5)
    assert out.max() < x[0, 0, :, 2:].max()


def test_flip_rate_and_per_sample_parameters(config):
    cfg = config(
        "data=cifar10",
        "data.root=/unused",
        "data.views.crop_scale=[1.0,1.0]",
        "data.views.crop_ratio=[1.0,1.0]",
        "data.views.jitter_p=0",
        "data.views.grayscale_p=0",
    )
    views = BatchedViews(cfg.data.views, 32, 3)
    half = torch.zeros(4000, 3, 32, 32, dtype=torch.uint8)
    half[:, :, :, :16] = 255  # left half white: a flipped view is brighter on the right
    a, b = views(half, torch.Generator().manual_seed(0))
    flipped = torch.cat([(v[..., 16:].mean((1, 2, 3)) > v[..., :16].mean((1, 2, 3))) for v in (a, b)]).float()
    assert abs(flipped.mean().item() - cfg.data.views.flip_p) < 0.02
    assert (flipped[:4000] != flipped[4000:]).any()  # the two views flip independently

    views = BatchedViews(config("data=cifar10", "data.root=/unused").data.views, 32, 3)
    a, b = views(torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8), torch.Generator().manual_seed(1))
    assert a.shape == b.shape == (64, 3, 32, 32)
    assert not torch.allclose(a, b)
    # every sample draws its own parameters: from identical images, the views differ within the batch
    same = torch.full((64, 3, 32, 32), 128, dtype=torch.uint8)
    a, _ = views(same, torch.Generator().manual_seed(2))
    assert a.mean((1, 2, 3)).std() > 0.01


def test_same_seed_same_views(config):
    cfg = config()
    views = BatchedViews(cfg.data.views, cfg.data.image_size, cfg.data.channels)
    images = torch.randint(0, 256, (32, 3, 8, 8), dtype=torch.uint8)
    first = views(images, torch.Generator().manual_seed(5))
    second = views(images, torch.Generator().manual_seed(5))
    assert all(torch.equal(x, y) for x, y in zip(first, second, strict=True))
    assert math.isfinite(first[0].sum().item())


def test_each_ddp_rank_draws_its_own_crops(config, monkeypatch):
    """Issue 12, case 5: the crop boxes of DDP ranks 0 and 1 on the same batch index differ, each rank's
    are reproducible (so a resume redraws them), and rank 0 draws what a single process draws. The rank
    is the one Lightning's trainer reports to the module (its global_rank), set here directly."""
    from types import SimpleNamespace

    import ssrl.data.views as views_module
    from ssrl.paradigms.jmi import JMI

    drawn = []

    def recording(*args, **kwargs):
        drawn.append(sample_crops(*args, **kwargs))
        return drawn[-1]

    monkeypatch.setattr(views_module, "sample_crops", recording)
    model = JMI(config(), num_classes=4)
    batch = (torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8), torch.zeros(16, dtype=torch.long))

    def boxes(rank: int | None, epoch: int = 0, batch_idx: int = 3) -> Tensor:
        model._trainer = None if rank is None else SimpleNamespace(global_rank=rank, current_epoch=epoch)
        drawn.clear()
        model.training_views(batch, batch_idx)
        return torch.cat(drawn)  # view A's boxes, then view B's

    rank0, rank1 = boxes(0), boxes(1)
    assert not torch.allclose(rank0, rank1)
    assert torch.equal(boxes(1), rank1) and torch.equal(boxes(0), rank0)
    assert torch.equal(boxes(None), rank0)
    assert not torch.allclose(boxes(1, epoch=1), rank1)
    model._trainer = None
