"""How much of the digit the views of styled digits keep: the share of random-resized crops that hold
most of a digit's ink, and the ink two views of one image share. A view that holds no digit cannot
teach the content; two views that share none give the critic nothing to match.

    python scripts/view_coverage.py                                  # the benchmark's canvas and crops
    python scripts/view_coverage.py data.image_size=24 data.views.crop_scale=[0.5,1]

Any data=styled_digits override works. Ink is the digit's intensity mask on the canvas
(ssrl.data.styled_digits.place_glyphs); a crop box's share of it is integrated exactly over the
pixels it covers (partial pixels pro rata), as the crop's bilinear resampling sees them up to interpolation.
"""

from __future__ import annotations

import sys

import torch
from hydra import compose, initialize_config_dir

from ssrl.config import register_schemas
from ssrl.data.styled_digits import place_glyphs
from ssrl.data.views import sample_crops
from ssrl.train import CONFIG_DIR

SAMPLES = 4000
THRESHOLDS = (0.05, 0.5, 0.9)


def pixel_overlap(low: torch.Tensor, high: torch.Tensor, size: int) -> torch.Tensor:
    """(n, size): the share of each of ``size`` pixels along one axis that [low, high) (fractions of the
    side, one interval per row) covers."""
    edges = torch.arange(size + 1, dtype=torch.float64) / size
    left = torch.maximum(low[:, None], edges[None, :-1])
    right = torch.minimum(high[:, None], edges[None, 1:])
    return (right - left).clamp(min=0) * size


def ink_in_boxes(mask: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """(n, size, size) coverage weights of each box (x0, y0, w, h as fractions) over the canvas pixels."""
    size = mask.shape[-1]
    x0, y0, w, h = boxes.double().unbind(1)
    ox, oy = pixel_overlap(x0, x0 + w, size), pixel_overlap(y0, y0 + h, size)
    return oy[:, :, None] * ox[:, None, :]


def main(argv: list[str]) -> None:
    register_schemas()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=["data=styled_digits", *argv])
    from sklearn.datasets import load_digits

    d, r = cfg.data, cfg.data.views
    g = torch.Generator().manual_seed(0)
    digits = torch.from_numpy(load_digits().images / 16.0).float()
    pick = torch.randint(len(digits), (SAMPLES,), generator=g)
    mask = place_glyphs(digits[pick], d.image_size, (d.digit_min, d.digit_max), g)[:, 0].double()
    total = mask.sum((1, 2))
    views = [ink_in_boxes(mask, sample_crops(SAMPLES, tuple(r.crop_scale), tuple(r.crop_ratio), g)) for _ in (0, 1)]
    kept = [(v * mask).sum((1, 2)) / total for v in views]
    shared = (torch.minimum(views[0], views[1]) * mask).sum((1, 2)) / total
    print(
        f"canvas {d.image_size} px, digit {d.digit_min}-{d.digit_max} px, crop scale {list(r.crop_scale)}, "
        f"ratio {[round(x, 3) for x in r.crop_ratio]}; {SAMPLES} crops"
    )
    for t in THRESHOLDS:
        print(f"  share of views holding >= {t:.0%} of the digit's ink: {float((kept[0] >= t).double().mean()):.3f}")
    print(f"  mean share of the ink in one view: {float(kept[0].mean()):.3f}")
    print(
        f"  mean share of the ink in both views of an image: {float(shared.mean()):.3f}; "
        f"pairs sharing >= 50%: {float((shared >= 0.5).double().mean()):.3f}"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
