"""Image folders (ImageNet-100, TinyImageNet): data.root/{train,val}/<class>/<image>, decoded on the fly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor
from torch.utils.data import Dataset

from ssrl.data.splits import Splits, split_off_val
from ssrl.errors import ConfigError


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
    """ImageNet-100, TinyImageNet or any folder laid out as data.root/{train,val}/<class>/<image>.

    The folder's val/ is the test split (as ImageNet's is reported); ssrl's val is a seeded slice of
    train/."""
    check_folder(cfg)
    root = Path(str(cfg.root)).expanduser()
    parts = {}
    for split in ("train", "val"):
        folder = root / split
        try:
            parts[split] = FolderImages(folder, cfg.decode_size)
        except (FileNotFoundError, RuntimeError) as exc:
            raise ConfigError(f"data.root={root}: {folder} has no readable images ({exc})") from exc
    train, val = split_off_val(parts["train"], np.asarray(parts["train"].folder.targets), cfg)
    return Splits(train, train, val, parts["val"], len(parts["train"].folder.classes))


def check_folder(cfg: Any) -> None:
    """Fail early, naming data.root, when the folder lacks train/ or val/ class folders."""
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
