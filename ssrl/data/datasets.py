"""The data sets by name (``data.name``): each loader returns the three ``Splits`` (ssrl.data.splits)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ssrl.data.folders import check_folder, imagefolder
from ssrl.data.generated import digits, synthetic
from ssrl.data.splits import Splits
from ssrl.data.styled_digits import styled_digits
from ssrl.data.torchvision_sets import TORCHVISION_FOLDERS, cifar, stl10
from ssrl.errors import ConfigError

LOADERS: dict[str, Callable[[Any], Splits]] = {
    "digits": digits,
    "synthetic": synthetic,
    "styled_digits": styled_digits,
    "cifar10": cifar,
    "cifar100": cifar,
    "stl10": stl10,
    "imagefolder": imagefolder,
}


def check_available(cfg: Any) -> None:
    """Fail early, naming data.root, when the data set's folder is not where the config says."""
    if cfg.name == "imagefolder":
        check_folder(cfg)
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
