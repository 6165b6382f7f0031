"""The three splits every data set is cut into, and the seeded, stratified cuts that make them.

``train`` feeds self-supervised training and (its labeled part, ``labeled``) fits the probes; ``val``,
a fixed seeded slice held out of the training data, is where the per-epoch diagnostics run and every
choice is made; ``test`` is what tables report. They are disjoint (docs/method.md, "The three
splits"). Images are uint8, (C, H, W).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset


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
    """train (self-supervised), labeled (fits the probes; within train), val and test (held out)."""

    train: Part
    labeled: Part
    val: Part
    test: Part
    num_classes: int


def stratified_holdout(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (kept, held out), the held-out ones a stratified ``fraction`` of ``labels`` drawn from
    ``seed``: the same seed gives the same split on every machine."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    kept, held = train_test_split(index, test_size=fraction, stratify=labels, random_state=seed)
    return np.sort(kept), np.sort(held)


def subset(part: Part, index: np.ndarray) -> Part:
    """The images of ``part`` at ``index``: in memory, the part's own ``subset`` (image folders), or a
    torch Subset."""
    if isinstance(part, ImageSet):
        at = torch.from_numpy(index)
        return ImageSet(part.images[at], part.labels[at])
    if hasattr(part, "subset"):
        return part.subset(index)
    return torch.utils.data.Subset(part, index.tolist())


def split_off_val(train: Part, labels: np.ndarray, cfg: Any) -> tuple[Part, Part]:
    """(train without val, val): val is a stratified data.val_fraction of train, seeded by data.split_seed."""
    kept, held = stratified_holdout(labels, cfg.val_fraction, cfg.split_seed)
    return subset(train, kept), subset(train, held)


def three_splits(images: np.ndarray, labels: np.ndarray, cfg: Any) -> Splits:
    """A set without splits of its own: a stratified data.test_fraction is the test split, then a
    stratified data.val_fraction of the rest is val (both seeded by data.split_seed)."""
    rest, test = stratified_holdout(labels, cfg.test_fraction, cfg.split_seed)
    whole = ImageSet(torch.from_numpy(images), torch.from_numpy(labels).long())
    train, val = split_off_val(subset(whole, rest), labels[rest], cfg)
    return Splits(train, train, val, subset(whole, test), int(labels.max()) + 1)
