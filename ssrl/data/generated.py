"""Data sets that ship with a package or are generated: no download. Each returns three ``Splits``."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ssrl.data.splits import Splits, three_splits


def digits(cfg: Any) -> Splits:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), 0..16 -> 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return three_splits(images, bunch.target, cfg)


def synthetic(cfg: Any) -> Splits:
    """Generated classes: a smooth random prototype per class, shifted by up to a pixel and noised."""
    g = torch.Generator().manual_seed(cfg.split_seed)
    size, channels, k = cfg.image_size, cfg.channels, cfg.num_classes
    coarse = torch.rand(k, channels, max(2, size // 4), max(2, size // 4), generator=g)
    prototypes = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")
    labels = torch.arange(cfg.num_samples) % k
    shifts = torch.randint(-1, 2, (cfg.num_samples, 2), generator=g)
    images = torch.stack(
        [prototypes[y].roll(tuple(s.tolist()), dims=(1, 2)) for y, s in zip(labels, shifts, strict=True)]
    )
    images = images + cfg.noise * torch.randn(images.shape, generator=g)
    images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return three_splits(images.numpy(), labels.numpy(), cfg)
