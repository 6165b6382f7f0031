"""Training throughput of ssrl against a bare PyTorch loop, of the batched augmentations against
torchvision's per-sample pipeline, and of image-folder decoding, in one process.

For JMI and SDMI (default settings: cos-DV, gradient target, refresh on):
  (a) ssrl: the real configs composed by Hydra, the real LightningModule, Trainer, logger and
      checkpoint callback (validation off: it is not training);
  (b) bare: a plain loop (scripts/throughput.py) with the same networks, views, loss, backward passes
      and SGD steps on the same images, and nothing else.
Each is timed over --steps batches after --warmup, --repeats times, alternating; the medians and their
ratio are printed. Then the augmentations: images/s of ssrl's batched views against torchvision's
per-sample transforms (on uint8 tensors and on PIL images) on the same images, and the views' share of
a training step. Then image folders: generated JPEGs of ImageNet-like size (500x375) read as training
batches (two random-resized crops of each whole image, 224x224) through every decode path this machine
has (PIL in workers, torchvision's decode_jpeg in workers, nvJPEG on a CUDA device). Peak memory last.
Runs on the CPU here and on a GPU unchanged.

    python scripts/bench.py                                   # quick: digits (8x8), batch 64, 3 x 4 batches
    python scripts/bench.py --long                            # the full one: batch 256, 5 x 8 batches
    python scripts/bench.py --long --data cifar --batch 512   # CIFAR-shaped (32x32x3) synthetic images
    python scripts/bench.py --parts folders                   # image-folder decoding only

The quick defaults finish in a few minutes on 2 CPU cores; --long sets the full sizes (each option
given explicitly wins over both).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from throughput import (  # noqa: E402  (a sibling script module)
    DATA,
    augmentation,
    bare_images_per_second,
    compose_config,
    decoders,
    folder_images_per_second,
    ssrl_images_per_second,
    training_overrides,
    write_jpegs,
)

from ssrl.data.module import SSLDataModule  # noqa: E402

PARTS = ("training", "views", "folders")
#: Sizes of the quick default and of --long, for the options not given on the command line.
QUICK = {"batch": 64, "steps": 4, "warmup": 1, "repeats": 3, "folder_images": 64}
LONG = {"batch": 256, "steps": 8, "warmup": 2, "repeats": 5, "folder_images": 256}


def training(args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    step_seconds = {}
    for paradigm in ("jmi", "sdmi"):
        cfg = compose_config(training_overrides(paradigm, DATA[args.data], args.batch, args.accelerator))
        data = SSLDataModule(cfg.data, cfg.seed)
        data.setup()
        ours, bare = [], []
        for _ in range(args.repeats):
            ours.append(ssrl_images_per_second(cfg, args.batch, args.warmup, args.steps, data))
            bare.append(
                bare_images_per_second(cfg, data.splits.train.images, args.batch, args.warmup, args.steps, device)
            )
        m_ours, m_bare = statistics.median(ours), statistics.median(bare)
        step_seconds[paradigm] = args.batch / m_ours
        print(
            f"{paradigm}: ssrl {m_ours:.1f} img/s, bare loop {m_bare:.1f} img/s, ratio {m_ours / m_bare:.3f} "
            f"(median of {args.repeats}; ssrl {[round(x, 1) for x in ours]}, bare {[round(x, 1) for x in bare]}; "
            f"precision {cfg.trainer.precision}, channels_last {cfg.trainer.channels_last})"
        )
    print(f"sdmi / jmi time per batch: {step_seconds['sdmi'] / step_seconds['jmi']:.2f}")
    if args.data == "cifar":
        print(f"a CIFAR-10 epoch (50,000 images) at the JMI rate: {50000 * step_seconds['jmi'] / args.batch:.1f} s")
    return step_seconds


def views(args: argparse.Namespace, device: torch.device, step_seconds: dict[str, float]) -> None:
    cfg = compose_config(training_overrides("jmi", DATA[args.data], args.batch, args.accelerator))
    data = SSLDataModule(cfg.data, cfg.seed)
    data.setup()
    aug = augmentation(cfg, data.splits.train.images[: args.batch], device)
    batched = aug["batched"]
    for kind, value in aug.items():
        print(
            f"augmentation {kind}: {value:.0f} img/s (two views each)"
            + ("" if kind == "batched" else f"; batched is {batched / value:.1f}x")
        )
    if "jmi" in step_seconds:
        print(f"views' share of a JMI training step: {100 * (args.batch / batched) / step_seconds['jmi']:.1f}%")


def folders(args: argparse.Namespace, device: torch.device) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = write_jpegs(Path(tmp), args.folder_images)
        for decode in decoders(device):
            rates = [
                folder_images_per_second(root, decode, args.folder_batch, args.workers, device)
                for _ in range(args.repeats)
            ]
            print(
                f"image folder, decode={decode}: {statistics.median(rates):.0f} img/s (500x375 JPEGs -> two "
                f"224x224 crops each; {args.workers} workers, batch {args.folder_batch}; median of {args.repeats}: "
                f"{[round(r) for r in rates]})"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=list(DATA), default="digits")
    parser.add_argument("--long", action="store_true", help=f"full sizes {LONG} instead of the quick {QUICK}")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--accelerator", default="auto", help="auto, cpu or gpu")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--folder-images", type=int, help="generated JPEGs for the folder part")
    parser.add_argument("--folder-batch", type=int, default=64)
    parser.add_argument("--workers", type=int, default=min(16, os.cpu_count() or 1), help="DataLoader workers")
    args = parser.parse_args()
    for option, value in (LONG if args.long else QUICK).items():
        if getattr(args, option) is None:
            setattr(args, option, value)
    parts = args.parts.split(",")
    if unknown := sorted(set(parts) - set(PARTS)):
        parser.error(f"--parts: {', '.join(unknown)} unknown; allowed: {', '.join(PARTS)}")
    device = torch.device("cuda" if args.accelerator != "cpu" and torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    sizes = f"{'long' if args.long else 'quick'}: {args.repeats} x {args.steps} batches after {args.warmup}"
    print(f"device: {name}; data: {args.data}, batch {args.batch}; {sizes}; torch {torch.__version__}")

    step_seconds = training(args, device) if "training" in parts else {}
    if "views" in parts:
        views(args, device, step_seconds)
    if "folders" in parts:
        folders(args, device)
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    print(f"peak process memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")


if __name__ == "__main__":
    main()
