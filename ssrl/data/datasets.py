"""Data sets as uint8 image tensors (small sets, held in memory) or as folders decoded on the fly.

Every loader returns ``Splits``: ``train`` feeds self-supervised training, ``labeled`` trains the
probes, ``test`` is the held-out split of every evaluation. Images are uint8, (C, H, W).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ssrl.errors import ConfigError


@dataclass
class ImageSet:
    """Images held in memory: uint8 (N, C, H, W) and int64 labels (N,)."""

    images: Tensor
    labels: Tensor

    def __len__(self) -> int:
        return len(self.labels)


Part = ImageSet | Dataset


@dataclass
class Splits:
    train: Part
    labeled: Part
    test: Part
    num_classes: int


def _stratified_split(images: np.ndarray, labels: np.ndarray, holdout: float, seed: int) -> Splits:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(images, labels, test_size=holdout, stratify=labels, random_state=seed)
    train = ImageSet(torch.from_numpy(x_tr), torch.from_numpy(y_tr).long())
    test = ImageSet(torch.from_numpy(x_te), torch.from_numpy(y_te).long())
    return Splits(train, train, test, int(labels.max()) + 1)


def digits(cfg: Any) -> Splits:
    """scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), 0..16 -> 0..255."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    return _stratified_split(images, bunch.target, cfg.holdout, cfg.split_seed)


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
    return _stratified_split(images.numpy(), labels.numpy(), cfg.holdout, cfg.split_seed)


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
    """CIFAR-10 or CIFAR-100 through torchvision, held in memory as uint8."""
    import torchvision

    cls, label, num_classes = {
        "cifar10": (torchvision.datasets.CIFAR10, "CIFAR-10", 10),
        "cifar100": (torchvision.datasets.CIFAR100, "CIFAR-100", 100),
    }[cfg.name]

    def part(train: bool) -> ImageSet:
        ds = _torchvision_set(cfg, label, lambda dl: cls(cfg.root, train=train, download=dl))
        images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        return ImageSet(images, torch.tensor(ds.targets, dtype=torch.long))

    train = part(True)
    return Splits(train, train, part(False), num_classes)


def stl10(cfg: Any) -> Splits:
    """STL-10 through torchvision: train+unlabeled for SSL, train (labeled) for probes, test held out."""
    import torchvision

    def part(split: str) -> ImageSet:
        ds = _torchvision_set(cfg, "STL-10", lambda dl: torchvision.datasets.STL10(cfg.root, split=split, download=dl))
        return ImageSet(torch.from_numpy(ds.data), torch.from_numpy(ds.labels).long())

    return Splits(part("train+unlabeled"), part("train"), part("test"), 10)


class FolderImages(Dataset):
    """An ImageFolder whose images are decoded to uint8 (C, size, size): resize then centre crop."""

    def __init__(self, root: Path, size: int) -> None:
        import torchvision
        from torchvision.transforms import v2

        transform = v2.Compose([v2.PILToTensor(), v2.Resize(size, antialias=True), v2.CenterCrop(size)])
        self.folder = torchvision.datasets.ImageFolder(str(root), transform=transform)

    def __len__(self) -> int:
        return len(self.folder)

    def __getitem__(self, index: int) -> tuple[Tensor, int]:
        try:
            return self.folder[index]
        except Exception as exc:  # a corrupt or unreadable file: name it, never train on garbage
            path = self.folder.samples[index][0]
            raise ConfigError(f"data.root: cannot decode image {path} ({exc}); remove or replace it") from exc


def imagefolder(cfg: Any) -> Splits:
    """ImageNet-100, TinyImageNet or any folder laid out as data.root/{train,val}/<class>/<image>."""
    check_available(cfg)
    root = Path(str(cfg.root)).expanduser()
    parts = {}
    for split in ("train", "val"):
        folder = root / split
        try:
            parts[split] = FolderImages(folder, cfg.decode_size)
        except (FileNotFoundError, RuntimeError) as exc:
            raise ConfigError(f"data.root={root}: {folder} has no readable images ({exc})") from exc
    return Splits(parts["train"], parts["train"], parts["val"], len(parts["train"].folder.classes))


LOADERS: dict[str, Callable[[Any], Splits]] = {
    "digits": digits,
    "synthetic": synthetic,
    "cifar10": cifar,
    "cifar100": cifar,
    "stl10": stl10,
    "imagefolder": imagefolder,
}


#: The folder torchvision keeps each downloadable data set in, under data.root.
TORCHVISION_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "stl10": "stl10_binary"}


def check_available(cfg: Any) -> None:
    """Fail early, naming data.root, when the data set's folder is not where the config says."""
    if cfg.name == "imagefolder":
        if cfg.root is None:
            raise ConfigError("data.root is required for data=imagefolder: a folder with train/ and val/ inside")
        root = Path(str(cfg.root)).expanduser()
        for split in ("train", "val"):
            folder = root / split
            if not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
                raise ConfigError(
                    f"data.root={root}: expected class folders under {folder} (layout: "
                    "data.root/train/<class>/<image> and data.root/val/<class>/<image>)"
                )
    elif cfg.name in TORCHVISION_FOLDERS and not cfg.download:
        folder = Path(str(cfg.root)).expanduser() / TORCHVISION_FOLDERS[cfg.name]
        if not folder.is_dir():
            raise ConfigError(
                f"data.root={cfg.root}: {folder} does not exist; put torchvision's copy of "
                f"{cfg.name} there, or add data.download=true where the internet is reachable"
            )


def load_splits(cfg: Any) -> Splits:
    """The three splits of the data set that ``cfg.name`` names."""
    if cfg.name not in LOADERS:
        raise ConfigError(f"data={cfg.name} is unknown; allowed: {', '.join(LOADERS)}")
    return LOADERS[cfg.name](cfg)
