"""CIFAR-10/100 and STL-10 through torchvision, held in memory as uint8, cut into three ``Splits``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ssrl.data.splits import ImageSet, Splits, split_off_val, stratified_holdout, subset
from ssrl.errors import ConfigError

#: The folder torchvision keeps each downloadable data set in, under data.root.
TORCHVISION_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "stl10": "stl10_binary"}


def _torchvision_set(cfg: Any, label: str, build: Callable[[bool], Any]) -> Any:
    try:
        return build(cfg.download)
    except (RuntimeError, OSError) as exc:
        how = "it could not be downloaded" if cfg.download else "data.download=false"
        raise ConfigError(
            f"data.root={cfg.root}: {label} is not there and {how} ({exc}). Put the torchvision copy of "
            f"{label} under data.root, or run once with data.download=true where the internet is reachable."
        ) from exc


def cifar(cfg: Any) -> Splits:
    """CIFAR-10 or CIFAR-100 through torchvision, held in memory as uint8; val is a seeded slice of the
    training set, test is the official test set."""
    import torchvision

    cls, label, num_classes = {
        "cifar10": (torchvision.datasets.CIFAR10, "CIFAR-10", 10),
        "cifar100": (torchvision.datasets.CIFAR100, "CIFAR-100", 100),
    }[cfg.name]

    def part(train: bool) -> ImageSet:
        ds = _torchvision_set(cfg, label, lambda dl: cls(cfg.root, train=train, download=dl))
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return ImageSet(images, torch.tensor(ds.targets, dtype=torch.long))

    whole = part(True)
    train, val = split_off_val(whole, whole.labels.numpy(), cfg)
    return Splits(train, train, val, part(False), num_classes)


def stl10(cfg: Any) -> Splits:
    """STL-10 through torchvision: val is a seeded slice of the labeled train split; SSL trains on
    train+unlabeled without the val images, the probes on the rest of train; test held out."""
    import torchvision

    def part(split: str) -> ImageSet:
        ds = _torchvision_set(cfg, "STL-10", lambda dl: torchvision.datasets.STL10(cfg.root, split=split, download=dl))
        return ImageSet(torch.from_numpy(ds.data), torch.from_numpy(ds.labels).long())

    labeled = part("train")
    kept, held = stratified_holdout(labeled.labels.numpy(), cfg.val_fraction, cfg.split_seed)
    everything = part("train+unlabeled")  # torchvision puts the labeled train images first
    unlabeled = np.arange(len(labeled), len(everything))
    train = subset(everything, np.concatenate([kept, unlabeled]))
    return Splits(train, subset(labeled, kept), subset(labeled, held), part("test"), 10)
