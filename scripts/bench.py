"""Training throughput of ssrl against a bare PyTorch loop, and of the batched augmentations against
torchvision's per-sample pipeline, in one process.

For JMI and SDMI (default settings: cos-DV, gradient target, refresh on):
  (a) ssrl: the real configs composed by Hydra, the real LightningModule, Trainer, logger and
      checkpoint callback (validation off: it is not training);
  (b) bare: a plain loop written below with the same networks, views, loss, backward passes and SGD
      steps on the same batches, and nothing else.
Each is timed over --steps batches after --warmup, --repeats times, alternating; the medians and their
ratio are printed. Then the augmentations: images/s of ssrl's batched views against torchvision's
per-sample transforms (on uint8 tensors and on PIL images) on the same images, and the views' share of
a training step. Peak memory last. Runs on the CPU here and on a GPU unchanged.

    python scripts/bench.py                                   # digits (8x8), batch 256
    python scripts/bench.py --data cifar --batch 512          # CIFAR-shaped (32x32x3) synthetic images
"""

from __future__ import annotations

import argparse
import math
import resource
import statistics
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra

from ssrl.data.module import SSLDataModule
from ssrl.data.views import per_sample_transform
from ssrl.paradigms.base import build_encoder
from ssrl.run.job import PARADIGMS, build_trainer, device_defaults
from ssrl.train import CONFIG_DIR

DATA = {
    "digits": ["data=digits"],
    "cifar": [
        "data=synthetic",
        "data.image_size=32",
        "data.num_samples=5120",
        "data.num_classes=10",
        "data.views.crop_scale=[0.08,1.0]",
        "data.views.saturation=0.4",
        "data.views.hue=0.1",
        "data.views.grayscale_p=0.2",
        "data.views.flip_p=0.5",
    ],
}


def compose_config(paradigm: str, args: argparse.Namespace):
    overrides = [
        f"paradigm={paradigm}",
        *DATA[args.data],
        f"data.batch_size={args.batch}",
        f"trainer.accelerator={args.accelerator}",
        "trainer.limit_val_batches=0",
        "trainer.max_epochs=1000",
        "trainer.enable_progress_bar=false",
    ]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    device_defaults(cfg)
    return cfg


class BatchClock(pl.Callback):
    """Times from the start of batch `warmup` to the start of batch `warmup + steps`: everything a
    training step costs, the loop's own overhead and every callback included. Then stops the fit."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.marks = warmup, steps, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.strategy.root_device.type == "cuda":
            torch.cuda.synchronize()
        self.marks.append(time.perf_counter())
        if len(self.marks) > self.warmup + self.steps:
            trainer.should_stop = True

    def seconds(self) -> float:
        return self.marks[self.warmup + self.steps] - self.marks[self.warmup]


def ssrl_images_per_second(cfg, args: argparse.Namespace) -> float:
    pl.seed_everything(0, verbose=False)
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    clock = BatchClock(args.warmup, args.steps)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(cfg, Path(run_dir), [clock])
        trainer.fit(model, datamodule=data)
    return args.batch * args.steps / clock.seconds()


def cos_dv_loss(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """-(J - M) of cos-DV, written out again: the bare loop shares no loss code with ssrl."""
    s = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / tau
    n = len(s)
    off = s[~torch.eye(n, dtype=torch.bool, device=s.device)]
    return -(s.diagonal().mean() - (torch.logsumexp(off, 0) - math.log(n * (n - 1))))


def bare_images_per_second(cfg, args: argparse.Namespace, device: torch.device) -> float:
    torch.manual_seed(0)
    data = SSLDataModule(cfg.data, cfg.seed)
    data.setup()
    images = data.splits.train.images.to(device)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)  # for its views module only
    views = model.views.to(device)
    online = build_encoder(cfg.backbone)[0].to(device)
    sdmi = cfg.paradigm.name == "sdmi"
    target = build_encoder(cfg.backbone)[0].to(device) if sdmi else None
    tau, o = cfg.estimator.tau, cfg.optim

    def sgd(module: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(module.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)

    opt_online = sgd(online)
    opt_target = sgd(target) if sdmi else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.trainer.precision == "bf16-mixed")
    g = torch.Generator(device=device).manual_seed(0)
    marks = []
    for _ in range(args.warmup + args.steps + 1):
        if device.type == "cuda":
            torch.cuda.synchronize()
        marks.append(time.perf_counter())
        index = torch.randint(0, len(images), (args.batch,), device=device)
        xa, xb = views(images[index], g)
        with autocast:
            if not sdmi:
                loss = cos_dv_loss(online(xa)[1], online(xb)[1], tau)
                opt_online.zero_grad()
                loss.backward()
                opt_online.step()
                continue
            zb = target(xb)[1]  # E-step, the target's graph kept for the M-step
            loss = cos_dv_loss(online(xa)[1], zb.detach(), tau)
            opt_online.zero_grad()
            loss.backward()
            opt_online.step()
            with torch.no_grad():  # refresh
                za = online(xa)[1]
            loss = cos_dv_loss(za, zb, tau)  # M-step
            opt_target.zero_grad()
            loss.backward()
            opt_target.step()
    return args.batch * args.steps / (marks[args.warmup + args.steps] - marks[args.warmup])


def augmentation(cfg, args: argparse.Namespace, device: torch.device) -> dict[str, float]:
    """images/s of the batched views (both views of each image) and of torchvision's per-sample ones."""
    from torchvision.transforms.functional import to_pil_image

    data = SSLDataModule(cfg.data, cfg.seed)
    data.setup()
    images = data.splits.train.images[: args.batch]
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    views, on_device = model.views.to(device), images.to(device)
    g = torch.Generator(device=device).manual_seed(0)
    results = {}

    def timed(fn, repeats: int) -> float:
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(repeats):
            fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return len(images) * repeats / (time.perf_counter() - start)

    results["batched"] = timed(lambda: views(on_device, g), 20)
    size, channels = cfg.data.image_size, cfg.data.channels
    transforms = [per_sample_transform(cfg.data.views, size, channels, i) for i in (0, 1)]
    results["per-sample tensor"] = timed(lambda: [t(x) for x in images for t in transforms], 2)
    pil = [to_pil_image(x) for x in images]
    results["per-sample PIL"] = timed(lambda: [t(x) for x in pil for t in transforms], 2)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=list(DATA), default="digits")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=8, help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--accelerator", default="auto", help="auto, cpu or gpu")
    args = parser.parse_args()
    device = torch.device("cuda" if args.accelerator != "cpu" and torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"device: {name}; data: {args.data}, batch {args.batch}; torch {torch.__version__}")

    step_seconds = {}
    for paradigm in ("jmi", "sdmi"):
        cfg = compose_config(paradigm, args)
        ours, bare = [], []
        for _ in range(args.repeats):
            ours.append(ssrl_images_per_second(cfg, args))
            bare.append(bare_images_per_second(cfg, args, device))
        m_ours, m_bare = statistics.median(ours), statistics.median(bare)
        step_seconds[paradigm] = args.batch / m_ours
        print(
            f"{paradigm}: ssrl {m_ours:.1f} img/s, bare loop {m_bare:.1f} img/s, ratio {m_ours / m_bare:.3f} "
            f"(median of {args.repeats}; ssrl {[round(x, 1) for x in ours]}, bare {[round(x, 1) for x in bare]}; "
            f"precision {cfg.trainer.precision}, channels_last {cfg.trainer.channels_last})"
        )
    print(f"sdmi / jmi time per batch: {step_seconds['sdmi'] / step_seconds['jmi']:.2f}")

    aug = augmentation(cfg, args, device)
    batched = aug["batched"]
    for kind, value in aug.items():
        print(
            f"augmentation {kind}: {value:.0f} img/s (two views each)"
            + ("" if kind == "batched" else f"; batched is {batched / value:.1f}x")
        )
    share = (args.batch / batched) / step_seconds["jmi"]
    print(f"views' share of a JMI training step: {100 * share:.1f}%")
    if device.type == "cuda":
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    print(f"peak process memory (RSS): {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    if args.data == "cifar":
        print(f"a CIFAR-10 epoch (50,000 images) at the JMI rate: {50000 / (args.batch / step_seconds['jmi']):.1f} s")


if __name__ == "__main__":
    main()
