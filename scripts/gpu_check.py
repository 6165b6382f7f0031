"""One command that tells whether ssrl's GPU path works and how fast it is (issue 13); <= 8 min on one GPU.

    python scripts/gpu_check.py --out gpu_check/          # on a CUDA machine: a table, table.md, results.json
    python scripts/gpu_check.py --smoke --out /tmp/gc     # every part at tiny sizes on the CPU
    bash scripts/gpu_check.sh                             # on the borrowed GPU machine (docs/gpu_machine.md)

Parts, each run on its own under its time cap (CAPS, BUDGET: a part past its cap is stopped and keeps
what it measured; one that fails is reported as failed, and the rest go on); results.json and table.md
are written after every part:
  environment   torch, CUDA, cuDNN, device, bf16 support, ssrl's requirements the installed versions miss
  estimators    every estimator on bf16 (autocast) scores against float32 scores, within TOLERANCE nats
  training      JMI, SDMI (gradient target), SDMI (EMA target) on 50,000 generated 32x32x3 uint8 images held
                on the device, ResNet-18 with the CIFAR stem, batch 512: ssrl (its Hydra config, module and
                Trainer, each epoch validated and the validation timed apart) against a bare PyTorch loop
                (scripts/throughput.py) with the same model, views, optimizer and precision, in this
                process, the device synchronised only where a timed span starts or ends; img/s as the
                median over whole epochs after one to warm up (as many as fit the cap, at most 3), the
                ratio, the implied CIFAR-10 epoch time, the epoch with its validation, the share of the
                step spent waiting for input, peak GPU memory; each case then with trainer.compile=true
  views         the batched views' throughput on the device, and their share of a JMI step
  image_folder  (CUDA only) generated JPEGs, one CMYK: each decode path's img/s, nvJPEG's batched decode
                against the CPU's while other kernels are queued, a JMI step's input-wait share
  end_to_end    `ssrl-train ... trainer=gpu` for 2 epochs on that data: summary.json and TensorBoard events
                written, loss finite, held-out MI rising; then a run stopped by SIGTERM mid-epoch and
                resumed, compared with the same run uninterrupted (on 20,000 images: three runs)
Goals (issue 13): a CIFAR-10 epoch of JMI in <= 5 s, ssrl >= 0.98 of the bare loop.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # repository root: ssrl
from throughput import (  # noqa: E402  (a sibling script module)
    augmentation,
    bare_images_per_second,
    cifar_like,
    compose_config,
    decoders,
    folder_images_per_second,
    synchronize,
    training_overrides,
    write_jpegs,
)

REPO = Path(__file__).resolve().parent.parent
#: Largest |bf16 - float32| accepted for an estimator's joint term, marginal term and estimate, in nats.
TOLERANCE = 0.05
#: A resumed run's held-out metrics may differ from the uninterrupted run's by this much on a GPU, whose
#: kernels (cuDNN's convolution backward, bf16 reductions) are not bitwise reproducible; on the CPU they
#: must be equal.
RESUME_TOLERANCE = {"probe_acc": 0.01, "knn_acc": 0.01, "mi": 0.05}
#: History keys in wall-clock seconds (the MI probe's own time, ssrl/run/mi_probe.py): no two runs agree on
#: them, so histories are compared without them.
WALL_CLOCK = ("mi_probe_s",)
PARADIGMS = ("jmi", "sdmi", "sdmi_ema")
CIFAR_EPOCH = 50_000

#: Every part's time cap in seconds on the GPU: they add up to BUDGET, and the command's start (imports,
#: CUDA's context) takes well under 480 - BUDGET, so the whole check ends within 8 minutes by construction.
CAPS = {
    "environment": 10,
    "estimators": 10,
    "data": 10,
    "training jmi": 35,
    "training jmi compiled": 95,  # compiles the online encoder twice (ssrl, the bare loop)
    "training sdmi": 35,
    "training sdmi compiled": 40,
    "training sdmi_ema": 35,
    "training sdmi_ema compiled": 40,
    "views": 5,
    "image_folder": 40,
    "end_to_end": 95,  # four ssrl-train runs
}
BUDGET = 450
#: The largest mean |nvJPEG - libjpeg-turbo| over an image's pixels accepted, in 8-bit levels (their IDCTs
#: and chroma upsampling differ slightly; a race with queued kernels, pytorch/vision#9606, gives far more).
DECODE_TOLERANCE = 2.0

FULL = {
    "train_images": 50_000,
    "image_size": 32,
    "batch": 512,
    "epochs": 3,  # timed epochs at most, after one to warm up; fewer when the part's cap comes first
    "model": [],
    "e2e_epochs": 2,
    "resume_images": 20_000,  # the SIGTERM-and-resume pair and its reference: 3 runs, so smaller
    "accelerator": "gpu",
    "e2e_trainer": "trainer=gpu",
    "checkpoint_every": 0,  # minutes: after every batch, so SIGTERM comes early in the first of 39 batches an epoch
    "jpegs": 1024,  # 500x375, as ImageNet's
    "folder_batch": 256,
    "folder_workers": 8,
    "folder_image_size": 224,
    "decode_repeats": 50,
    "caps": CAPS,
    "budget": BUDGET,
}
SMOKE = {
    "train_images": 80,
    "image_size": 8,
    "batch": 8,
    "epochs": 1,
    "model": ["backbone.projector_hidden_dim=64", "backbone.projector_dim=32", "predictor.hidden_dim=64"],
    "e2e_epochs": 2,
    "resume_images": 80,  # as train_images: the end-to-end run is the pair's reference
    "accelerator": "cpu",
    "e2e_trainer": "trainer=cpu",
    "checkpoint_every": 0,
    "caps": dict.fromkeys(CAPS, 600),  # 2 shared CPU cores: generous, under the test's 1700 s
    "budget": 1650,
}


class EpochClock(pl.Callback):
    """Marks the start of each epoch's first batch and the start and end of each validation during the
    fit, synchronising the device there alone. After the first epoch (the warm-up) and one more, it stops
    the fit once ``epochs`` have run, or when one more would end past ``deadline`` (time.perf_counter())."""

    def __init__(self, epochs: int, deadline: float) -> None:
        self.epochs, self.deadline = epochs, deadline
        self.starts: list[float] = []
        self.validations: list[tuple[float, float]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if batch_idx != 0:
            return
        synchronize(trainer.strategy.root_device)
        self.starts.append(time.perf_counter())
        # one timed epoch at least (the warm-up, which may compile, says little of the next); the cap is
        # the hard limit
        if len(self.starts) > 2:
            last = self.starts[-1] - self.starts[-2]
            if len(self.starts) > self.epochs + 1 or self.starts[-1] + last > self.deadline:
                trainer.should_stop = True

    def on_validation_start(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            synchronize(trainer.strategy.root_device)
            self.validations.append((time.perf_counter(), float("nan")))

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            synchronize(trainer.strategy.root_device)
            self.validations[-1] = (self.validations[-1][0], time.perf_counter())

    def timed(self) -> list[tuple[float, float]]:
        """(seconds of the whole epoch, of its validation) for each complete epoch after the first."""
        return [
            (self.starts[k + 1] - self.starts[k], end - start)
            for k, (start, end) in enumerate(self.validations[: len(self.starts) - 1])
            if k >= 1
        ]


class InputWait(pl.Callback):
    """How long the device waits between steps: from the end of one training step to the start of the
    next in the same epoch (the next batch's fetch, decode and copy, and the loop's own work between
    batches), as a share of the step's whole time, over every epoch after the first. On a GPU through
    CUDA events recorded in stream order, so nothing is synchronised and a gap the queued kernels cover
    counts as none; on the CPU through the host clock."""

    def __init__(self) -> None:
        self.marks: list[tuple[int, int, str, Any]] = []

    def mark(self, trainer, batch_idx: int, what: str) -> None:
        if trainer.strategy.root_device.type == "cuda":
            event = torch.cuda.Event(enable_timing=True)
            event.record()
        else:
            event = time.perf_counter()
        self.marks.append((trainer.current_epoch, batch_idx, what, event))

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.current_epoch >= 1:
            self.mark(trainer, batch_idx, "start")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.current_epoch >= 1:
            self.mark(trainer, batch_idx, "end")

    def share(self) -> float | None:
        """Waiting time / step time (0 to 1) over consecutive batches; None before any such pair."""

        def seconds(a: Any, b: Any) -> float:
            return a.elapsed_time(b) / 1000 if isinstance(a, torch.cuda.Event) else b - a

        if self.marks and isinstance(self.marks[0][3], torch.cuda.Event):
            torch.cuda.synchronize()
        starts = {(e, i): m for e, i, what, m in self.marks if what == "start"}
        ends = {(e, i): m for e, i, what, m in self.marks if what == "end"}
        wait = total = 0.0
        for (epoch, i), start in starts.items():
            following = starts.get((epoch, i + 1))
            if following is not None and (epoch, i) in ends:
                wait += seconds(ends[(epoch, i)], following)
                total += seconds(start, following)
        return wait / total if total > 0 else None


def peak_memory_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


# ----------------------------------------------------------------------------------------------- parts
def unmet_requirements(distribution: str) -> list[str] | None:
    """``distribution``'s requirements (extras left out) that what is installed does not meet, each as
    "<requirement> (installed: <version or none>)"; None if ``distribution`` is not installed. On the GPU
    machine an empty list means pip would reinstall nothing (torch, Lightning) even without --no-deps."""
    from importlib import metadata

    from packaging.requirements import Requirement

    try:
        required = [Requirement(r) for r in metadata.requires(distribution) or []]
    except metadata.PackageNotFoundError:
        return None
    unmet = []
    for req in required:
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            installed = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed is None or not req.specifier.contains(installed, prereleases=True):
            unmet.append(f"{req} (installed: {installed or 'none'})")
    return unmet


def environment(device: torch.device, sizes: dict) -> dict[str, Any]:
    import pytorch_lightning
    import torchvision

    cuda = device.type == "cuda"
    return {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightning": pytorch_lightning.__version__,
        "python": platform.python_version(),
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "device": torch.cuda.get_device_name() if cuda else f"CPU ({os.cpu_count()} cores)",
        "capability": ".".join(map(str, torch.cuda.get_device_capability())) if cuda else None,
        "bf16": torch.cuda.is_bf16_supported() if cuda else True,
        "gpu_memory_gib": torch.cuda.get_device_properties(0).total_memory / 2**30 if cuda else None,
        "ssrl_requirements_unmet": unmet_requirements("ssrl"),
    }


def estimators(device: torch.device, sizes: dict) -> dict[str, Any]:
    """Each estimator on scores of correlated embeddings (N = batch, d = 128, cosine critic, tau 0.1),
    computed under bf16 autocast as training computes them, against float32."""
    from ssrl.mi.critics import Critic
    from ssrl.mi.estimators import ESTIMATORS

    g = torch.Generator(device="cpu").manual_seed(0)
    n = sizes["batch"]
    a = torch.randn(n, 128, generator=g)
    b = a + 0.5 * torch.randn(n, 128, generator=g)
    a, b = a.to(device), b.to(device)
    critic = Critic("cosine", 128, 0.1).to(device)
    out = {}
    for name, fn in ESTIMATORS.items():
        exact = fn(critic(a, b))
        with torch.autocast(device.type, dtype=torch.bfloat16):
            low = fn(critic(a, b))
        diffs = {
            term: abs(float(getattr(low, term)) - float(getattr(exact, term)))
            for term in ("joint", "marginal", "estimate")
        }
        out[name] = {"float32": float(exact.estimate), "bf16": float(low.estimate), "max_abs_diff": max(diffs.values())}
    worst = max(v["max_abs_diff"] for v in out.values())
    return {"per_estimator": out, "worst": worst, "tolerance": TOLERANCE, "ok": worst <= TOLERANCE}


def training_data(sizes: dict):
    from ssrl.data.module import SSLDataModule

    cfg = compose_config(
        training_overrides("jmi", cifar_like(sizes["train_images"], size=sizes["image_size"]), sizes["batch"], "cpu")
    )
    data = SSLDataModule(cfg.data, cfg.seed)
    data.setup()
    return data


def views(device: torch.device, sizes: dict, data, step_seconds: float | None) -> dict[str, Any]:
    cfg = compose_config(
        training_overrides(
            "jmi", cifar_like(sizes["train_images"], size=sizes["image_size"]), sizes["batch"], sizes["accelerator"]
        )
    )
    rate = augmentation(cfg, data.splits.train.images[: sizes["batch"]], device, per_sample=False)["batched"]
    share = (sizes["batch"] / rate) / step_seconds if step_seconds else None
    return {"batched_img_s": rate, "share_of_jmi_step": share}


def training_case(
    paradigm: str, compile_: bool, device: torch.device, sizes: dict, data, partial: dict, deadline: float
) -> dict[str, Any]:
    """ssrl and the bare loop on the same images, the same number of batches: the median rate over the
    timed epochs (scaled from the warm-up epoch's time to end by ``deadline``, time.perf_counter()), each
    one's peak GPU memory, ssrl's epoch with its validation, and the share of ssrl's step spent waiting
    for input. Figures go into ``partial`` as they come, so a part stopped at its cap keeps them."""
    from ssrl.run.job import PARADIGMS as MODULES
    from ssrl.run.job import build_trainer
    from ssrl.run.tensorboard import single_run_place

    batch = sizes["batch"]
    extra = [*sizes["model"], f"trainer.compile={str(compile_).lower()}"]
    overrides = training_overrides(
        paradigm, cifar_like(sizes["train_images"], size=sizes["image_size"]), batch, sizes["accelerator"], *extra
    )
    cfg = compose_config([*overrides, "trainer.limit_val_batches=1.0"])  # each epoch validated, timed apart
    per_epoch = len(data.splits.train) // batch
    partial.update(paradigm=paradigm, compile=compile_, precision=cfg.trainer.precision, batches_per_epoch=per_epoch)
    partial.update(channels_last=cfg.trainer.channels_last)
    start = time.perf_counter()
    # ssrl first, with half the time left: the bare loop's epochs take about as long
    clock, wait = EpochClock(sizes["epochs"], start + (deadline - start) / 2), InputWait()
    peak_memory_reset(device)
    pl.seed_everything(0, verbose=False)
    model = MODULES[cfg.paradigm.name](cfg, data.num_classes)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(cfg, Path(run_dir), [clock, wait], single_run_place(Path(run_dir), []))
        trainer.fit(model, datamodule=data)
    data.trainer = None
    timed = clock.timed()
    if not timed:
        raise RuntimeError(f"no epoch after the warm-up fitted in the time left ({deadline - start:.0f} s)")
    train_s = statistics.median(epoch - val for epoch, val in timed)
    ssrl_rate = batch * per_epoch / train_s
    partial.update(
        ssrl_img_s=ssrl_rate,
        cifar10_epoch_s=CIFAR_EPOCH / ssrl_rate,
        epoch_with_val_s=statistics.median(epoch for epoch, _ in timed),
        val_s=statistics.median(val for _, val in timed),
        val_images=len(data.splits.val),
        input_wait_share=wait.share(),
        ssrl_peak_gib=peak_memory_gib(device),
        epochs_timed=len(timed),
    )
    del model, trainer
    peak_memory_reset(device)
    images = data.splits.train.images
    bare_rate = bare_images_per_second(cfg, images, batch, per_epoch, per_epoch, device, windows=len(timed))
    partial.update(bare_img_s=bare_rate, ratio=ssrl_rate / bare_rate, bare_peak_gib=peak_memory_gib(device))
    return partial


def image_folder(device: torch.device, sizes: dict, partial: dict) -> dict[str, Any]:
    """Generated JPEGs (sizes["jpegs"] of 500x375 and one CMYK) in an image folder: the img/s of each
    decode path (``throughput.folder_images_per_second``); nvJPEG's batched decode (ssrl's
    ``decode_batch``) against the CPU's, sizes["decode_repeats"] times, each just after queueing a large
    matrix product whose memory is freed at once (the race of pytorch/vision#9606); the share of an ssrl
    JMI step on that folder (data.decode=auto) spent waiting for input. Figures go into ``partial``."""
    from PIL import Image

    batch, workers = sizes["folder_batch"], sizes["folder_workers"]
    with tempfile.TemporaryDirectory() as tmp:
        root = write_jpegs(Path(tmp), sizes["jpegs"])
        first = root / "train" / "c0" / "0.jpg"
        cmyk = root / "train" / "c0" / "cmyk.jpg"
        Image.open(first).convert("CMYK").save(cmyk, quality=90)
        for decode in decoders(device):
            size = sizes["folder_image_size"]
            rate = lambda d=decode, s=size: {f"{d}_img_s": folder_images_per_second(root, d, batch, workers, device, s)}
            attempt(partial, decode, rate)
        paths = [str(p) for p in sorted((root / "train").rglob("*.jpg"))[: batch - 1]] + [str(cmyk)]
        attempt(partial, "decode", lambda: compare_decodes(paths, sizes["decode_repeats"], device))
        attempt(partial, "input_wait", lambda: folder_input_wait(root, sizes))
    partial["ok"] = partial.get("decode_batches_over_tolerance") == 0 and not any(k.endswith("_error") for k in partial)
    return partial


def attempt(partial: dict, name: str, fn: Callable[[], dict]) -> None:
    """``partial`` updated with what ``fn`` returns, or with ``<name>_error`` naming what it raised."""
    try:
        partial.update(fn())
    except Exception as exc:
        partial[f"{name}_error"] = f"{type(exc).__name__}: {exc}"[:300]


def compare_decodes(paths: list[str], repeats: int, device: torch.device) -> dict[str, Any]:
    """The JPEGs at ``paths`` decoded in one batch on ``device`` (ssrl's ``decode_batch``: nvJPEG on
    CUDA) ``repeats`` times, each just after queueing a large matrix product whose memory is freed at
    once (the race of pytorch/vision#9606), against the CPU's decode: the worst per-image mean |difference|
    in 8-bit levels, and how many batches had an image over DECODE_TOLERANCE."""
    from torchvision.io import read_file

    from ssrl.data.folders import decode_batch

    files = [read_file(p) for p in paths]
    reference = decode_batch(files, paths, 3, torch.device("cpu"))
    worst, over = 0.0, 0
    for _ in range(repeats):
        busy = torch.randn(8192, 8192, device=device)
        busy = busy @ busy
        del busy  # its memory goes back to the allocator while the product may still run
        decoded = decode_batch(files, paths, 3, device)
        diffs = [(d.cpu().float() - r.float()).abs().mean().item() for d, r in zip(decoded, reference, strict=True)]
        worst, over = max(worst, max(diffs)), over + (max(diffs) > DECODE_TOLERANCE)
    return {
        "decode_batch_images": len(paths),
        "decode_repeats": repeats,
        "decode_worst_mean_abs_diff": worst,
        "decode_batches_over_tolerance": over,
        "decode_tolerance": DECODE_TOLERANCE,
    }


def folder_input_wait(root: Path, sizes: dict) -> dict[str, Any]:
    """The share of an ssrl JMI step (3 epochs) on the image folder at ``root`` spent waiting for input,
    with data.decode=auto, and the decode path that resolved to."""
    from ssrl.data.module import SSLDataModule
    from ssrl.run.job import PARADIGMS as MODULES
    from ssrl.run.job import build_trainer
    from ssrl.run.tensorboard import single_run_place

    data_args = ["data=imagefolder", f"data.root={root}"]
    overrides = training_overrides("jmi", data_args, sizes["folder_batch"], sizes["accelerator"], *sizes["model"])
    extra = [f"data.image_size={sizes['folder_image_size']}", f"data.num_workers={sizes['folder_workers']}"]
    cfg = compose_config([*overrides, *extra, "trainer.max_epochs=3"])
    data, wait = SSLDataModule(cfg.data, cfg.seed), InputWait()
    pl.seed_everything(0, verbose=False)
    model = MODULES[cfg.paradigm.name](cfg, data.num_classes)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(cfg, Path(run_dir), [wait], single_run_place(Path(run_dir), []))
        trainer.fit(model, datamodule=data)
    return {"input_wait_share": wait.share(), "input_wait_decode": data.decoder()}


def folder_part(device: torch.device, sizes: dict, partial: dict) -> dict[str, Any]:
    """``image_folder`` where nvJPEG is: on a CUDA device."""
    if device.type != "cuda":
        raise Skipped("no CUDA device: the part compares nvJPEG's decode with the CPU's")
    return image_folder(device, sizes, partial)


def run_train(args: list[str], cwd: Path, wait: bool = True) -> Any:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "ssrl.train", *args]
    if not wait:
        return subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def tensorboard_losses(run_dir: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from ssrl.run.tensorboard import FOLDER

    (log_dir,) = {p.parent for p in (run_dir / FOLDER).rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    tag = "training/loss"
    return [e.value for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def end_to_end(device: torch.device, sizes: dict, smoke: bool, out: dict) -> dict[str, Any]:
    """A 2-epoch ssrl-train run, its files checked; the same run stopped by SIGTERM and resumed. Figures
    go into ``out`` as they come."""
    import math

    def args_for(images: int, every: int) -> list[str]:
        return [
            *cifar_like(images, size=sizes["image_size"]),
            f"data.batch_size={sizes['batch']}",
            sizes["e2e_trainer"],
            f"trainer.max_epochs={sizes['e2e_epochs']}",
            "trainer.enable_progress_bar=false",
            f"checkpoint_every_minutes={every}",
            *sizes["model"],
        ]

    separate = sizes["resume_images"] != sizes["train_images"]  # else this run is the pair's reference
    args = args_for(sizes["train_images"], 10 if separate else sizes["checkpoint_every"])
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        start = time.time()
        result = run_train([*args, "hydra.run.dir=reference"], tmp)
        out["wall_s"] = time.time() - start
        if result.returncode != 0:
            raise RuntimeError(f"ssrl-train exited {result.returncode}: {result.stderr[-1500:]}")
        reference = json.loads((tmp / "reference" / "summary.json").read_text())
        losses = tensorboard_losses(tmp / "reference")
        mi_start, mi_end = (reference.get("mi_init") or {}).get("dv"), (reference.get("mi") or {}).get("dv")
        out.update(
            {
                "status": reference["status"],
                "steps": reference.get("steps"),
                "probe_acc": reference.get("probe_acc"),
                "tensorboard_losses": len(losses),
                "loss_finite": bool(losses) and all(math.isfinite(v) for v in losses),
                "mi_dv_start": mi_start,
                "mi_dv_end": mi_end,
                "mi_rising": mi_start is not None and mi_end is not None and mi_end > mi_start,
            }
        )
        if separate:
            args = args_for(sizes["resume_images"], sizes["checkpoint_every"])
            result = run_train([*args, "hydra.run.dir=reference_small"], tmp)
            if result.returncode != 0:
                raise RuntimeError(f"ssrl-train exited {result.returncode}: {result.stderr[-1500:]}")
            reference = json.loads((tmp / "reference_small" / "summary.json").read_text())
        process = run_train([*args, "hydra.run.dir=interrupted"], tmp, wait=False)
        try:  # a part stopped at its cap stops this run too
            while not (tmp / "interrupted" / "checkpoints" / "last.ckpt").exists():
                if process.poll() is not None:
                    raise RuntimeError("the run to interrupt ended before its first checkpoint")
                time.sleep(0.02)
            process.send_signal(signal.SIGTERM)
            process.communicate()
        finally:
            process.kill()
        stopped = json.loads((tmp / "interrupted" / "summary.json").read_text())
        out["sigterm_exit"] = process.returncode
        out["stopped"] = stopped.get("stopped")
        result = run_train([*args, "hydra.run.dir=interrupted"], tmp)
        if result.returncode != 0:
            raise RuntimeError(f"the resumed ssrl-train exited {result.returncode}: {result.stderr[-1500:]}")
        resumed = json.loads((tmp / "interrupted" / "summary.json").read_text())
    out["resume"] = compare(reference, resumed, exact=smoke or device.type != "cuda")
    out["ok"] = (
        out["status"] == "completed"
        and out["loss_finite"]
        and (out["mi_rising"] or smoke)  # 2 epochs of a few tiny batches need not learn: smoke checks the path
        and out["sigterm_exit"] == 128 + signal.SIGTERM
        and out["resume"]["ok"]
    )
    return out


def without_wall_clock(history: list[dict]) -> list[dict]:
    """``history`` (summary.json's list of per-evaluation dicts) without its WALL_CLOCK keys."""
    return [{k: v for k, v in entry.items() if k not in WALL_CLOCK} for entry in history]


def compare(reference: dict, resumed: dict, exact: bool) -> dict[str, Any]:
    """The resumed summary against the uninterrupted one: counts equal; metrics and history (without its
    wall-clock seconds) equal on the CPU, within RESUME_TOLERANCE on a GPU."""
    mi = reference.get("mi") or {}
    diffs = {
        "probe_acc": abs(resumed["probe_acc"] - reference["probe_acc"]),
        "knn_acc": abs(resumed["knn_acc"] - reference["knn_acc"]),
        "mi": max((abs((resumed.get("mi") or {}).get(k, float("inf")) - v) for k, v in mi.items()), default=0.0),
    }
    counts = all(resumed[k] == reference[k] for k in ("status", "steps", "epochs"))
    history_equal = without_wall_clock(resumed.get("history", [])) == without_wall_clock(reference.get("history", []))
    identical = history_equal and all(resumed[k] == reference[k] for k in ("probe_acc", "knn_acc", "mi"))
    close = all(diffs[k] <= RESUME_TOLERANCE[k] for k in diffs)
    return {
        "counts_equal": counts,
        "identical": identical,
        "history_equal": history_equal,
        "diffs": diffs,
        "tolerance": None if exact else RESUME_TOLERANCE,
        "ok": counts and (identical if exact else close),
    }


# ----------------------------------------------------------------------------------------------- report
def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    lines = [f"# GPU check ({'smoke, CPU' if results['smoke'] else 'full'})", ""]
    env = results["parts"].get("environment", {})
    if env.get("value"):
        lines += [
            "| environment | |",
            "| --- | --- |",
            *[f"| {k} | {fmt(v, 2)} |" for k, v in env["value"].items()],
            "",
        ]
    cases = [p["value"] for name, p in results["parts"].items() if name.startswith("training") and p.get("value")]
    if cases:
        lines += [
            "| paradigm | compile | ssrl img/s | bare img/s | ratio | CIFAR-10 epoch (s) | epoch + val (s) "
            "| input wait | peak GiB ssrl / bare |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for c in cases:
            memory = f"{fmt(c.get('ssrl_peak_gib'), 2)} / {fmt(c.get('bare_peak_gib'), 2)}"
            lines.append(
                f"| {c['paradigm']} | {c['compile']} | {fmt(c.get('ssrl_img_s'))} | {fmt(c.get('bare_img_s'))} | "
                f"{fmt(c.get('ratio'), 3)} | {fmt(c.get('cifar10_epoch_s'), 2)} | {fmt(c.get('epoch_with_val_s'), 2)} "
                f"| {fmt(c.get('input_wait_share'), 3)} | {memory} |"
            )
        jmi = next((c for c in cases if c["paradigm"] == "jmi" and not c["compile"] and "ratio" in c), None)
        if jmi is not None:
            lines += [
                "",
                f"Goals (issue 13), JMI without compile: CIFAR-10 epoch <= 5 s: "
                f"{'met' if jmi['cifar10_epoch_s'] <= 5 else 'not met'} ({jmi['cifar10_epoch_s']:.2f} s); "
                f"ssrl >= 0.98 of the bare loop: {'met' if jmi['ratio'] >= 0.98 else 'not met'} ({jmi['ratio']:.3f}).",
            ]
        lines.append("")
    lines += ["| part | outcome | details |", "| --- | --- | --- |"]
    for name, part in results["parts"].items():
        outcome = (
            "failed" if "error" in part else ("skipped" if "skipped" in part else ("ok" if part["ok"] else "NOT OK"))
        )
        detail = part.get("error") or part.get("skipped") or json.dumps(part.get("value"), default=str)
        lines.append(f"| {name} | {outcome} | {detail[:600].replace('|', '/')} |")
    lines += ["", f"Total wall time: {results['wall_s']:.0f} s."]
    return "\n".join(lines) + "\n"


class Skipped(Exception):
    """Raised by a part that cannot run here; its message says why."""


class Capped(BaseException):
    """Raised in the main thread when a part reaches its time cap: a BaseException, so that no
    ``except Exception`` in the code under test holds it up."""


@contextmanager
def time_cap(seconds: float) -> Iterator[None]:
    """Raises Capped once ``seconds`` have passed (SIGALRM: Unix, the main thread)."""

    def expire(signum: int, frame: Any) -> None:
        raise Capped(f"stopped at its cap of {seconds:.1f} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Check:
    """The results so far, written to ``out`` (results.json, table.md) after every part. Each part runs
    under its cap, cut to what is left of ``budget`` seconds since the check started."""

    def __init__(self, out: Path, smoke: bool, sizes: dict, budget: float) -> None:
        self.out, self.budget, self.started = out, budget, time.time()
        self.results: dict[str, Any] = {"smoke": smoke, "sizes": sizes, "budget_s": budget, "parts": {}}

    def part(
        self, name: str, fn: Callable[[dict, float], Any], cap: float, ok: Callable[[Any], bool] = lambda v: True
    ) -> Any:
        """``fn(partial, deadline)``: ``partial`` a dict it may fill as it goes (kept if it fails or is
        capped), ``deadline`` the time.perf_counter() its cap ends at. Returns its value, or None."""
        seconds = min(cap, self.budget - (time.time() - self.started))
        start, partial, value = time.time(), {}, None
        if seconds <= 0:
            entry: dict[str, Any] = {"skipped": f"the budget of {self.budget:.0f} s is spent", "ok": False}
        else:
            try:
                with time_cap(seconds):
                    value = fn(partial, time.perf_counter() + seconds)
                entry = {"value": value if isinstance(value, dict) else None, "ok": bool(ok(value))}
            except Skipped as exc:
                entry = {"skipped": str(exc), "ok": False}
            except (Capped, Exception) as exc:
                error = str(exc) if isinstance(exc, Capped) else f"{type(exc).__name__}: {exc}"
                entry = {"error": error, "value": partial or None, "ok": False, "trace": traceback.format_exc()}
        entry["wall_s"] = time.time() - start
        self.results["parts"][name] = entry
        outcome = entry.get("error") or entry.get("skipped") or ("ok" if entry["ok"] else "NOT OK")
        print(f"{name}: {outcome} ({entry['wall_s']:.0f} s) {json.dumps(entry.get('value'), default=str)}", flush=True)
        self.write()
        return value

    def write(self) -> str:
        self.results["wall_s"] = time.time() - self.started
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2, default=str))
        table = markdown(self.results)
        (self.out / "table.md").write_text(table)
        return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for table.md and results.json")
    parser.add_argument("--smoke", action="store_true", help="every part at tiny sizes on the CPU")
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else FULL
    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --smoke for the CPU check", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.smoke else "cuda")
    check, caps = Check(args.out, args.smoke, sizes, sizes["budget"]), sizes["caps"]
    check.part(
        "environment",
        lambda p, d: environment(device, sizes),
        caps["environment"],
        ok=lambda v: not v["ssrl_requirements_unmet"],
    )
    check.part("estimators", lambda p, d: estimators(device, sizes), caps["estimators"], ok=lambda v: v["ok"])
    data = check.part("data", lambda p, d: training_data(sizes), caps["data"])
    jmi = None
    if data is not None:
        check.results["parts"]["data"]["value"] = {"train_images": len(data.splits.train), "on": str(device)}
        for paradigm in PARADIGMS:
            # the compiled case straight after its eager one (the smoke leaves it out: inductor takes minutes)
            for compile_ in (False,) if args.smoke else (False, True):
                name = f"training {paradigm}" + (" compiled" if compile_ else "")
                case = check.part(
                    name,
                    lambda p, d, par=paradigm, c=compile_: training_case(par, c, device, sizes, data, p, d),
                    caps[name],
                )
                jmi = jmi or (case if name == "training jmi" else None)
        step = sizes["batch"] / jmi["ssrl_img_s"] if jmi else None
        check.part("views", lambda p, d: views(device, sizes, data, step), caps["views"])
    check.part("image_folder", lambda p, d: folder_part(device, sizes, p), caps["image_folder"], ok=lambda v: v["ok"])
    e2e = caps["end_to_end"]
    check.part("end_to_end", lambda p, d: end_to_end(device, sizes, args.smoke, p), e2e, ok=lambda v: v["ok"])
    print(check.write())
    parts = check.results["parts"]
    failed = [name for name, part in parts.items() if not part["ok"] and "skipped" not in part]
    if failed:
        print(f"gpu_check: not ok: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
