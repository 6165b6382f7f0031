"""Tiny image folders written with PIL for the tests: data.root/{train,val}/<class>/<image>."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

#: A colour per class, far apart: a linear probe separates them perfectly.
COLOURS = {"a": (220, 30, 30), "b": (30, 220, 30), "c": (30, 30, 220), "d": (220, 220, 30)}
#: data=imagefolder at 8x8 in batches of 8: with image_folder's defaults, 4 training batches an epoch
#: and one held-out batch for the MI. Use with without_data(TINY).
FOLDER_ARGS = [
    "data=imagefolder",
    "data.image_size=8",
    "data.decode_size=10",
    "data.batch_size=8",
    "data.val_fraction=0.25",
    "data.num_workers=0",
]


def image_folder(
    root: Path,
    train: tuple[str, ...] = ("a", "b", "c"),
    val: tuple[str, ...] = ("a", "b", "c"),
    per_class: int = 16,
    size: tuple[int, int] = (20, 15),
    grayscale: bool = False,
    fmt: str = "jpg",
) -> Path:
    """Images of (width, height) ``size``: each class its own colour (or grey level) plus noise."""
    rng = np.random.default_rng(0)
    for split, classes in (("train", train), ("val", val)):
        for label in classes:
            folder = root / split / label
            folder.mkdir(parents=True)
            colour = np.array(COLOURS[label], dtype=float)
            for i in range(per_class if split == "train" else max(2, per_class // 4)):
                pixels = colour + rng.normal(0, 12, (size[1], size[0], 3))
                image = Image.fromarray(pixels.clip(0, 255).astype(np.uint8))
                (image.convert("L") if grayscale else image).save(folder / f"{i}.{fmt}", quality=95)
    return root


def without_data(args: list[str]) -> list[str]:
    """``args`` without their data=... choice (a second one would clash with data=imagefolder)."""
    return [a for a in args if not a.startswith("data=")]
