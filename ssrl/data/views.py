"""Two-view augmentations: batched on the model's device (default), or per sample with torchvision.

The batched pipeline draws every random parameter per sample and per view, and runs each operation on
the whole batch with torch ops (affine_grid + grid_sample for crop and flip, 3x3 colour matrices for
the jitter, a grouped convolution for blur). It follows the SimCLR / BYOL recipe of torchvision's
transforms, with two documented differences: crops are continuous (sub-pixel) rather than rounded to
whole pixels, and the colour-jitter operations run in a fixed order (brightness, contrast, saturation,
hue) with hue as a rotation of the chroma plane in YIQ space.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

_LUMA = (0.299, 0.587, 0.114)
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def seed_of(seed: int, *keys: int) -> int:
    """One 63-bit seed from a run's seed and integer keys (epoch, batch, rank, sample index, ...): every
    random draw of a view is a function of such keys, never of what ran before, so a resumed run draws
    what an uninterrupted one does."""
    for k in keys:
        seed = seed * 1_000_003 + k
    return seed % (2**63)


def _uniform(n: int, low: float, high: float, g: torch.Generator) -> Tensor:
    return low + (high - low) * torch.rand(n, generator=g, device=g.device)


def _chance(n: int, p: float, g: torch.Generator) -> Tensor:
    return torch.rand(n, generator=g, device=g.device) < p


def sample_crops(
    n: int, scale: tuple[float, float], ratio: tuple[float, float], g: torch.Generator, tries: int = 10
) -> Tensor:
    """Random-resized-crop boxes as fractions of a square image: (n, 4) = (x0, y0, w, h).

    As torchvision: area fraction ~ U(scale), log aspect ratio ~ U(log ratio), the first of ``tries``
    draws that fits in the image is kept, else the whole image.
    """
    area = _uniform(n * tries, *scale, g).view(n, tries)
    log_ratio = _uniform(n * tries, math.log(ratio[0]), math.log(ratio[1]), g).view(n, tries)
    w = torch.sqrt(area * torch.exp(log_ratio))
    h = torch.sqrt(area / torch.exp(log_ratio))
    fits = (w <= 1) & (h <= 1)
    first = fits.float().argmax(dim=1, keepdim=True)
    any_fit = fits.any(dim=1)
    w = torch.where(any_fit, w.gather(1, first).squeeze(1), torch.ones_like(any_fit, dtype=w.dtype))
    h = torch.where(any_fit, h.gather(1, first).squeeze(1), torch.ones_like(any_fit, dtype=h.dtype))
    x0 = torch.rand(n, generator=g, device=g.device) * (1 - w)
    y0 = torch.rand(n, generator=g, device=g.device) * (1 - h)
    return torch.stack([x0, y0, w, h], dim=1)


def pixel_crop_boxes(
    width: int, height: int, n: int, scale: tuple[float, float], ratio: tuple[float, float], g: torch.Generator
) -> list[tuple[int, int, int, int]]:
    """``n`` random-resized-crop boxes (left, top, width, height) in whole pixels of a width x height
    image, drawn from the whole image as torchvision's RandomResizedCrop draws them: area fraction ~
    U(scale), log of the box's aspect ratio in pixels ~ U(log ratio)."""
    aspect = height / width  # a ratio of fractions (w/W) / (h/H) = pixel ratio * H / W
    boxes = sample_crops(n, scale, (ratio[0] * aspect, ratio[1] * aspect), g).tolist()
    out = []
    for x0, y0, w, h in boxes:
        pw, ph = max(1, min(width, round(w * width))), max(1, min(height, round(h * height)))
        left, top = min(int(x0 * width), width - pw), min(int(y0 * height), height - ph)
        out.append((left, top, pw, ph))
    return out


def crop_and_flip(x: Tensor, boxes: Tensor, flip: Tensor, size: int) -> Tensor:
    """Bilinear resampling of each box to size x size, mirrored where ``flip`` is true."""
    x0, y0, w, h = boxes.unbind(1)
    sign = 1.0 - 2.0 * flip.to(x.dtype)
    theta = torch.zeros(len(x), 2, 3, device=x.device, dtype=x.dtype)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = 2 * x0 + w - 1
    theta[:, 1, 1] = h
    theta[:, 1, 2] = 2 * y0 + h - 1
    grid = F.affine_grid(theta, [len(x), x.shape[1], size, size], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _luma(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    r, g, b = x.unbind(1)
    return (_LUMA[0] * r + _LUMA[1] * g + _LUMA[2] * b).unsqueeze(1)


def _per_sample(v: Tensor) -> Tensor:
    return v.view(-1, 1, 1, 1)


def yiq_pair() -> Tensor:
    """(2, 3, 3): the RGB -> YIQ matrix and its inverse, built once (``BatchedViews`` keeps them as a
    buffer on the model's device, so no view builds, copies or inverts a matrix)."""
    return torch.stack([_RGB_TO_YIQ, torch.linalg.inv(_RGB_TO_YIQ)])


def _hue_matrices(hue: Tensor, yiq: Tensor) -> Tensor:
    """(n, 3, 3) RGB -> RGB rotations of the chroma plane by 2*pi*hue in YIQ space; ``yiq`` from ``yiq_pair``."""
    to_yiq, from_yiq = yiq.to(hue.dtype).unbind(0)
    angle = 2 * math.pi * hue
    rot = torch.zeros(len(hue), 3, 3, device=hue.device, dtype=hue.dtype)
    rot[:, 0, 0] = 1
    rot[:, 1, 1] = rot[:, 2, 2] = torch.cos(angle)
    rot[:, 1, 2] = -torch.sin(angle)
    rot[:, 2, 1] = torch.sin(angle)
    return from_yiq @ rot @ to_yiq


def _factor(n: int, strength: float, apply: Tensor, g: torch.Generator) -> Tensor:
    return torch.where(
        apply, _uniform(n, max(0.0, 1 - strength), 1 + strength, g), torch.ones_like(apply, dtype=torch.float)
    )


def color_jitter(
    x: Tensor,
    p: float,
    brightness: float,
    contrast: float,
    saturation: float,
    hue: float,
    g: torch.Generator,
    yiq: Tensor,
) -> Tensor:
    """With probability p per sample: brightness, contrast, saturation factors ~ U(1 -+ s), hue ~ U(-+ hue);
    ``yiq`` from ``yiq_pair``, on x's device."""
    n = len(x)
    apply = _chance(n, p, g)
    x = (x * _per_sample(_factor(n, brightness, apply, g))).clamp(0, 1)
    c = _per_sample(_factor(n, contrast, apply, g))
    x = (c * x + (1 - c) * _luma(x).mean(dim=(1, 2, 3), keepdim=True)).clamp(0, 1)
    if x.shape[1] == 3:
        s = _per_sample(_factor(n, saturation, apply, g))
        x = (s * x + (1 - s) * _luma(x)).clamp(0, 1)
        if hue > 0:
            shift = torch.where(apply, _uniform(n, -hue, hue, g), torch.zeros(n, device=x.device))
            x = torch.einsum("nij,njhw->nihw", _hue_matrices(shift, yiq), x).clamp(0, 1)
    return x


def gaussian_blur(x: Tensor, sigma: Tensor) -> Tensor:
    """Separable Gaussian blur with a sigma per sample; kernel size about a tenth of the image, odd."""
    n, c, h, w = x.shape
    k = max(3, int(0.1 * h) // 2 * 2 + 1)
    t = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    kernel = torch.exp(-(t**2) / (2 * sigma.view(-1, 1) ** 2))
    kernel = (kernel / kernel.sum(1, keepdim=True)).repeat_interleave(c, dim=0)
    flat = x.reshape(1, n * c, h, w)
    flat = F.conv2d(F.pad(flat, (k // 2, k // 2, 0, 0), mode="reflect"), kernel.view(n * c, 1, 1, k), groups=n * c)
    flat = F.conv2d(F.pad(flat, (0, 0, k // 2, k // 2), mode="reflect"), kernel.view(n * c, 1, k, 1), groups=n * c)
    return flat.view(n, c, h, w)


def _where(mask: Tensor, a: Tensor, b: Tensor) -> Tensor:
    return torch.where(_per_sample(mask), a, b)


class BatchedViews(nn.Module):
    """uint8 (N, C, H, W) -> two float views (N, C, size, size), normalised, on the images' device."""

    def __init__(self, recipe: Any, size: int, channels: int) -> None:
        super().__init__()
        self.recipe = recipe
        self.size = size
        self.register_buffer("mean", torch.tensor(list(recipe.mean)[:channels]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(list(recipe.std)[:channels]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("yiq", yiq_pair(), persistent=False)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def clean(self, images: Tensor) -> Tensor:
        """The un-augmented image for evaluation: scaled to [0, 1], resized to size, normalised."""
        x = images.float() / 255
        if x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True, align_corners=False)
        return self.normalize(x)

    def view(self, x: Tensor, index: int, g: torch.Generator, crop: bool = True) -> Tensor:
        """View ``index`` (0: A, 1: B) of the batch. ``crop=False``: the images are crops already (image
        folders are cropped from the whole image while decoding), so only flip and the rest follow."""
        r, n = self.recipe, len(x)
        if crop:
            x = crop_and_flip(
                x, sample_crops(n, tuple(r.crop_scale), tuple(r.crop_ratio), g), _chance(n, r.flip_p, g), self.size
            )
        else:
            x = _where(_chance(n, r.flip_p, g), x.flip(-1), x)
        if r.jitter_p > 0:
            x = color_jitter(x, r.jitter_p, r.brightness, r.contrast, r.saturation, r.hue, g, self.yiq)
        if r.grayscale_p > 0 and x.shape[1] == 3:
            x = _where(_chance(n, r.grayscale_p, g), _luma(x).expand_as(x), x)
        if r.blur_p[index] > 0:
            x = _where(_chance(n, r.blur_p[index], g), gaussian_blur(x, _uniform(n, 0.1, 2.0, g)), x)
        if r.solarize_p[index] > 0:
            x = _where(_chance(n, r.solarize_p[index], g), torch.where(x >= 0.5, 1 - x, x), x)
        return self.normalize(x)

    def forward(self, images: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
        x = images.float() / 255
        return self.view(x, 0, g), self.view(x, 1, g)

    def from_crops(self, crops: tuple[Tensor, Tensor], g: torch.Generator) -> tuple[Tensor, Tensor]:
        """Two uint8 batches already cropped to size (view A's crops, view B's) -> the two views."""
        return self.view(crops[0].float() / 255, 0, g, crop=False), self.view(crops[1].float() / 255, 1, g, crop=False)


def per_sample_transform(recipe: Any, size: int, channels: int, index: int) -> Any:
    """The same recipe as a per-sample torchvision.transforms.v2 pipeline on one uint8 image (or PIL)."""
    from torchvision.transforms import v2

    color = channels == 3
    steps = [
        v2.RandomResizedCrop(size, scale=tuple(recipe.crop_scale), ratio=tuple(recipe.crop_ratio), antialias=True),
        v2.RandomHorizontalFlip(recipe.flip_p),
        v2.RandomApply(
            [
                v2.ColorJitter(
                    recipe.brightness, recipe.contrast, recipe.saturation if color else 0, recipe.hue if color else 0
                )
            ],
            p=recipe.jitter_p,
        ),
    ]
    if color:
        steps.append(v2.RandomGrayscale(recipe.grayscale_p))
    if recipe.blur_p[index] > 0:
        k = max(3, int(0.1 * size) // 2 * 2 + 1)
        steps.append(v2.RandomApply([v2.GaussianBlur(k, sigma=(0.1, 2.0))], p=recipe.blur_p[index]))
    if recipe.solarize_p[index] > 0:
        steps.append(v2.RandomSolarize(128, p=recipe.solarize_p[index]))
    steps += [
        v2.ToImage(),
        v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(list(recipe.mean)[:channels], list(recipe.std)[:channels]),
    ]
    return v2.Compose(steps)
