"""Styled digits: a CPU-scale benchmark on which self-supervised learning is visible.

Content is the class: one of scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes).
Style is what the two-view augmentations vary, drawn once per image from a seed: the digit is resized
to ``s`` x ``s`` pixels (s uniform in [data.digit_min, data.digit_max]), placed at a uniform random
position on a ``data.image_size`` square canvas, painted in a random bright foreground colour on a
random dark background colour, and given light Gaussian pixel noise:

    canvas = background + (foreground - background) * digit_intensity,   + N(0, noise^2), clipped to [0, 1]
    background ~ U(0, 0.4)^3,   foreground ~ U(0.6, 1)^3   (per image, RGB)

On the raw pixels the class hides behind position, scale and colour (a linear probe scores far below
its score on the bare digits), so a representation has to become invariant to style to expose the
content. The split is by source digit: the train, val and test splits (``three_splits``' fractions,
seeded by data.split_seed) never share a handwritten digit, and each source is rendered
``data.renders`` times in the train split (once in val and test) with independent styles.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ssrl.data.splits import ImageSet, Splits, stratified_holdout

BACKGROUND = (0.0, 0.4)
FOREGROUND = (0.6, 1.0)


def place_glyphs(digits: Tensor, size: int, digit_range: tuple[int, int], g: torch.Generator) -> Tensor:
    """Digit intensities (N, 8, 8) in [0, 1], each resized to s x s (s uniform in ``digit_range``) at a
    uniform random position on a size x size canvas: the ink masks (N, 1, size, size) in [0, 1]."""
    n = len(digits)
    scales = torch.randint(digit_range[0], digit_range[1] + 1, (n,), generator=g)
    corners = (torch.rand(n, 2, generator=g) * (size - scales + 1).unsqueeze(1)).long()
    mask = torch.zeros(n, 1, size, size)
    for i, (s, (y, x)) in enumerate(zip(scales.tolist(), corners.tolist(), strict=True)):
        glyph = F.interpolate(digits[i][None, None], size=(s, s), mode="bilinear", antialias=True)
        mask[i, :, y : y + s, x : x + s] = glyph[0].clamp(0, 1)
    return mask


def render(digits: Tensor, size: int, digit_range: tuple[int, int], noise: float, g: torch.Generator) -> Tensor:
    """Styled uint8 images (N, 3, size, size) of digit intensities (N, 8, 8) in [0, 1], drawn from ``g``."""
    n = len(digits)
    mask = place_glyphs(digits, size, digit_range, g)
    background = BACKGROUND[0] + (BACKGROUND[1] - BACKGROUND[0]) * torch.rand(n, 3, 1, 1, generator=g)
    foreground = FOREGROUND[0] + (FOREGROUND[1] - FOREGROUND[0]) * torch.rand(n, 3, 1, 1, generator=g)
    canvas = background + (foreground - background) * mask + noise * torch.randn(n, 3, size, size, generator=g)
    return (canvas.clamp(0, 1) * 255).round().to(torch.uint8)


def source_split(labels: np.ndarray, cfg: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Indices of the source digits of (train, val, test): stratified data.test_fraction, then
    data.val_fraction of the rest, both drawn from data.split_seed."""
    rest, test = stratified_holdout(labels, cfg.test_fraction, cfg.split_seed)
    kept, held = stratified_holdout(labels[rest], cfg.val_fraction, cfg.split_seed)
    return rest[kept], rest[held], test


def styled_digits(cfg: Any) -> Splits:
    """The three splits of styled digits (module docstring), all drawn from data.split_seed."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    digits, labels = torch.from_numpy(bunch.images / 16.0).float(), bunch.target
    train, val, test = source_split(labels, cfg)
    digit_range = (cfg.digit_min, cfg.digit_max)

    def part(index: np.ndarray, renders: int, stream: int) -> ImageSet:
        g = torch.Generator().manual_seed(cfg.split_seed * 1_000 + stream)
        index = np.tile(index, renders)
        images = render(digits[torch.from_numpy(index)], cfg.image_size, digit_range, cfg.noise, g)
        return ImageSet(images, torch.from_numpy(labels[index]).long())

    train_set = part(train, cfg.renders, 0)
    return Splits(train_set, train_set, part(val, 1, 1), part(test, 1, 2), 10)
