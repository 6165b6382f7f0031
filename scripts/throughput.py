"""Measurements shared by scripts/bench.py and scripts/gpu_check.py: ssrl's training throughput through
its real config, LightningModule and Trainer; a bare PyTorch loop with the same networks, views, loss,
optimizer and precision; the batched views; and image-folder decoding.

The bare loop shares no loss code with ssrl (cos-DV is written out again below) and none of its
Lightning machinery: it is what the same work costs with nothing else around it.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ssrl.data.module import SSLDataModule
from ssrl.data.views import BatchedViews, per_sample_transform
from ssrl.paradigms.base import build_encoder
from ssrl.run.job import PARADIGMS, build_trainer, device_defaults
from ssrl.run.tensorboard import single_run_place
from ssrl.train import CONFIG_DIR

#: The data of a measurement: the bundled digits, or CIFAR-shaped (32x32x3) generated images with
#: SimCLR's CIFAR views. ``cifar_like(n)`` holds n training images (test and val are cut off first).
DATA = {"digits": ["data=digits"]}


def cifar_like(train_images: int, classes: int = 10, size: int = 32) -> list[str]:
    """Overrides for generated size x size x 3 images (CIFAR's 32 by default), ``train_images`` of them
    in the training split."""
    total = math.ceil(train_images / (0.8 * 0.9)) + classes  # test_fraction 0.2, then val_fraction 0.1
    return [
        "data=synthetic",
        f"data.image_size={size}",
        f"data.num_samples={total}",
        f"data.num_classes={classes}",
        "data.val_fraction=0.1",
        "data.views.crop_scale=[0.08,1.0]",
        "data.views.saturation=0.4",
        "data.views.hue=0.1",
        "data.views.grayscale_p=0.2",
        "data.views.flip_p=0.5",
    ]


DATA["cifar"] = cifar_like(5120 * 72 // 100)  # scripts/bench.py --data cifar: 5,120 generated images in all


def compose_config(overrides: list[str]):
    """conf/train.yaml with ``overrides``, the device's default precision filled in."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    device_defaults(cfg)
    return cfg


def training_overrides(paradigm: str, data: list[str], batch: int, accelerator: str, *extra: str) -> list[str]:
    """A training measurement: ``paradigm`` (jmi, sdmi, or sdmi_ema), validation off, many epochs."""
    name, ema = ("sdmi", True) if paradigm == "sdmi_ema" else (paradigm, False)
    return [
        f"paradigm={name}",
        *(["paradigm.target_update=ema"] if ema else []),
        *data,
        f"data.batch_size={batch}",
        f"trainer.accelerator={accelerator}",
        "trainer.limit_val_batches=0",
        "trainer.max_epochs=1000",
        "trainer.enable_progress_bar=false",
        *extra,
    ]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


class BatchClock(pl.Callback):
    """Times from the start of batch `warmup` to the start of batch `warmup + steps`: everything a
    training step costs, the loop's own overhead and every callback included. Then stops the fit."""

    def __init__(self, warmup: int, steps: int) -> None:
        self.warmup, self.steps, self.marks = warmup, steps, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        synchronize(trainer.strategy.root_device)
        self.marks.append(time.perf_counter())
        if len(self.marks) > self.warmup + self.steps:
            trainer.should_stop = True

    def seconds(self) -> float:
        return self.marks[self.warmup + self.steps] - self.marks[self.warmup]


def ssrl_images_per_second(cfg, batch: int, warmup: int, steps: int, data: SSLDataModule | None = None) -> float:
    """Images per second of ssrl's own training loop: the real LightningModule, Trainer, logger and
    checkpoint callback, on ``data`` (built from cfg.data if not given; pass one to reuse its images)."""
    pl.seed_everything(0, verbose=False)
    data = data or SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    clock = BatchClock(warmup, steps)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(cfg, Path(run_dir), [clock], single_run_place(Path(run_dir), []))
        trainer.fit(model, datamodule=data)
    data.trainer = None
    return batch * steps / clock.seconds()


def cos_dv_loss(a: torch.Tensor, b: torch.Tensor, tau: float) -> torch.Tensor:
    """-(J - M) of cos-DV, written out again: the bare loop shares no loss code with ssrl."""
    s = F.normalize(a, dim=1) @ F.normalize(b, dim=1).T / tau
    n = len(s)
    off = s[~torch.eye(n, dtype=torch.bool, device=s.device)]
    return -(s.diagonal().mean() - (torch.logsumexp(off, 0) - math.log(n * (n - 1))))


def bare_images_per_second(
    cfg, images: torch.Tensor, batch: int, warmup: int, steps: int, device: torch.device, windows: int = 1
) -> float:
    """The same work as ssrl's step with nothing around it: JMI, SDMI with a gradient target (E-step,
    refresh, M-step) or an EMA target, in cfg's precision, memory layout and compile setting. The rate
    over ``steps`` batches after ``warmup``, or the median over ``windows`` such spans one after another."""
    torch.manual_seed(0)
    images = images.to(device)
    views = BatchedViews(cfg.data.views, cfg.data.image_size, cfg.data.channels).to(device)
    t, p = cfg.trainer, cfg.paradigm
    layout = torch.channels_last if t.channels_last else torch.contiguous_format
    online = build_encoder(cfg.backbone)[0].to(device, memory_format=layout)
    kind = "jmi" if p.name == "jmi" else ("ema" if p.target_update == "ema" else "gradient")
    target = None
    if kind == "gradient":
        target = build_encoder(cfg.backbone)[0].to(device, memory_format=layout)
    elif kind == "ema":
        target = AveragedModel(online, multi_avg_fn=get_ema_multi_avg_fn(p.ema_momentum), use_buffers=True)
        target.requires_grad_(False)
    if t.compile:  # as ssrl compiles: the online encoder
        online.compile()
    tau, o = cfg.estimator.tau, cfg.optim

    def sgd(module: torch.nn.Module) -> torch.optim.Optimizer:
        return torch.optim.SGD(module.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)

    opt_online = sgd(online)
    opt_target = sgd(target) if kind == "gradient" else None
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=t.precision == "bf16-mixed")
    g = torch.Generator(device=device).manual_seed(0)
    marks = []
    for _ in range(warmup + steps * windows + 1):
        synchronize(device)
        marks.append(time.perf_counter())
        index = torch.randint(0, len(images), (batch,), device=device)
        xa, xb = (x.contiguous(memory_format=layout) for x in views(images[index], g))
        with autocast:
            if kind == "jmi":
                loss = cos_dv_loss(online(xa)[1], online(xb)[1], tau)
                opt_online.zero_grad()
                loss.backward()
                opt_online.step()
                continue
            if kind == "ema":
                with torch.no_grad():
                    zb = target(xb)[1]
                loss = cos_dv_loss(online(xa)[1], zb, tau)
                opt_online.zero_grad()
                loss.backward()
                opt_online.step()
                target.update_parameters(online)
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
    spans = [marks[warmup + (k + 1) * steps] - marks[warmup + k * steps] for k in range(windows)]
    return batch * steps / statistics.median(spans)


def timed(fn: Callable[[], Any], count: int, repeats: int, device: torch.device) -> float:
    """``count * repeats`` items per second of ``fn`` (``count`` items a call), after one call to warm up."""
    fn()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    synchronize(device)
    return count * repeats / (time.perf_counter() - start)


def augmentation(cfg, images: torch.Tensor, device: torch.device, repeats: int = 20, per_sample: bool = True):
    """images/s of the batched views (both views of each image) and of torchvision's per-sample ones."""
    from torchvision.transforms.functional import to_pil_image

    views = BatchedViews(cfg.data.views, cfg.data.image_size, cfg.data.channels).to(device)
    on_device = images.to(device)
    g = torch.Generator(device=device).manual_seed(0)
    results = {"batched": timed(lambda: views(on_device, g), len(images), repeats, device)}
    if per_sample:
        size, channels = cfg.data.image_size, cfg.data.channels
        transforms = [per_sample_transform(cfg.data.views, size, channels, i) for i in (0, 1)]
        cpu = torch.device("cpu")
        results["per-sample tensor"] = timed(lambda: [t(x) for x in images for t in transforms], len(images), 2, cpu)
        pil = [to_pil_image(x) for x in images]
        results["per-sample PIL"] = timed(lambda: [t(x) for x in pil for t in transforms], len(images), 2, cpu)
    return results


# ----------------------------------------------------------------------------------------- image folders
def write_jpegs(root: Path, count: int, size: tuple[int, int] = (500, 375), classes: int = 4) -> Path:
    """``count`` JPEGs of ImageNet-like size (width, height) under root/train/<class>/ (and a few under
    root/val/): smooth random colour fields with noise, quality 90, about as costly to decode as photos."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", count), ("val", classes)):
        for i in range(n):
            folder = root / split / f"c{i % classes}"
            folder.mkdir(parents=True, exist_ok=True)
            coarse = rng.uniform(0, 255, (size[1] // 25 + 1, size[0] // 25 + 1, 3))
            smooth = np.kron(coarse, np.ones((25, 25, 1)))[: size[1], : size[0]]
            pixels = (smooth + rng.normal(0, 20, smooth.shape)).clip(0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{i}.jpg", quality=90)
    return root


def folder_images_per_second(
    root: Path, decode: str, batch: int, workers: int, device: torch.device, image_size: int = 224, epochs: int = 2
) -> float:
    """Training images per second read from an image folder through ``decode`` (pil, cpu, cuda): the
    loader's batches of two random-resized crops of each whole image, resized to ``image_size``, ready
    in the main process (on the device for cuda). The first epoch warms up (worker start, nvJPEG's
    handles); the others are timed."""
    from ssrl.data.folders import FolderCrops, FolderImages, list_classes, list_images
    from ssrl.data.module import DatasetBatches

    recipe = compose_config(["data=imagefolder"]).data.views
    classes = list_classes(root / "train")
    folder = FolderImages(list_images(root / "train", classes), classes, image_size, image_size * 8 // 7, 3)
    crops = FolderCrops(folder, recipe, seed=0, decode=decode)
    loader = DatasetBatches(crops, batch, 0, workers, collate=crops.collate, finish=crops.finish(device))
    count, start = 0, 0.0
    for epoch in range(epochs):
        if epoch == 1:
            synchronize(device)
            start = time.perf_counter()
        for (a, _), _ in loader:
            count += len(a) if epoch >= 1 else 0
    synchronize(device)
    return count / (time.perf_counter() - start)


def decoders(device: torch.device) -> list[str]:
    """The image-folder decode paths this machine has: the worker paths, and nvJPEG on a CUDA device."""
    return ["pil", "cpu"] + (["cuda"] if device.type == "cuda" else [])
