"""One command that tells whether ssrl's GPU path works and how fast it is (issue 13); <= 8 min on one H200.

    python scripts/gpu_check.py --out gpu_check/          # on a CUDA machine: a table, table.md, results.json
    python scripts/gpu_check.py --smoke --out /tmp/gc     # every part at tiny sizes on the CPU (< 1 min)

Parts, each run on its own (one that fails is reported as failed, and the rest go on):
  environment   torch, CUDA, cuDNN, device, bf16 support
  estimators    every estimator on bf16 (autocast) scores against float32 scores, within TOLERANCE nats
  views         the batched views' throughput on the device, and their share of a JMI step
  training      JMI, SDMI (gradient target), SDMI (EMA target) on 50,000 generated 32x32x3 uint8 images held
                on the device, ResNet-18 with the CIFAR stem, batch 512: ssrl (its Hydra config, module and
                Trainer) against a bare PyTorch loop (scripts/throughput.py) with the same model, views,
                optimizer and precision, in this process; img/s as the median over whole epochs after one
                to warm up, the ratio, the implied CIFAR-10 epoch time, peak GPU memory; then the same with
                trainer.compile=true (last, and skipped if the time budget is spent)
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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # repository root: ssrl
from throughput import (  # noqa: E402  (a sibling script module)
    BatchClock,
    augmentation,
    bare_images_per_second,
    cifar_like,
    compose_config,
    training_overrides,
)

REPO = Path(__file__).resolve().parent.parent
#: Largest |bf16 - float32| accepted for an estimator's joint term, marginal term and estimate, in nats.
TOLERANCE = 0.05
#: A resumed run's held-out metrics may differ from the uninterrupted run's by this much on a GPU, whose
#: kernels (cuDNN's convolution backward, bf16 reductions) are not bitwise reproducible; on the CPU they
#: must be equal.
RESUME_TOLERANCE = {"probe_acc": 0.01, "knn_acc": 0.01, "mi": 0.05}
PARADIGMS = ("jmi", "sdmi", "sdmi_ema")
CIFAR_EPOCH = 50_000

FULL = {
    "train_images": 50_000,
    "image_size": 32,
    "batch": 512,
    "epochs": 3,  # timed epochs, after one to warm up
    "model": [],
    "e2e_epochs": 2,
    "resume_images": 20_000,  # the SIGTERM-and-resume pair and its reference: 3 runs, so smaller
    "accelerator": "gpu",
    "e2e_trainer": "trainer=gpu",
    "checkpoint_every": 0,  # minutes: after every batch, so SIGTERM comes early in the first of 39 batches an epoch
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
}


class EpochClock(BatchClock):
    """BatchClock over whole epochs: the rate of each timed epoch after the first."""

    def __init__(self, per_epoch: int, epochs: int) -> None:
        super().__init__(per_epoch, per_epoch * epochs)
        self.per_epoch = per_epoch

    def epoch_seconds(self) -> list[float]:
        marks, n = self.marks, self.per_epoch
        return [marks[k + n] - marks[k] for k in range(n, len(marks) - n, n)]


def peak_memory_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def peak_memory_gib(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None


# ----------------------------------------------------------------------------------------------- parts
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


def training_case(paradigm: str, compile_: bool, device: torch.device, sizes: dict, data) -> dict[str, Any]:
    """ssrl and the bare loop on the same images, the same number of batches: the median rate over the
    timed epochs, and each one's peak GPU memory."""
    import pytorch_lightning as pl

    from ssrl.run.job import PARADIGMS as MODULES
    from ssrl.run.job import build_trainer
    from ssrl.run.tensorboard import single_run_place

    batch = sizes["batch"]
    extra = [*sizes["model"], f"trainer.compile={str(compile_).lower()}"]
    cfg = compose_config(
        training_overrides(
            paradigm, cifar_like(sizes["train_images"], size=sizes["image_size"]), batch, sizes["accelerator"], *extra
        )
    )
    per_epoch = len(data.splits.train) // batch
    clock = EpochClock(per_epoch, sizes["epochs"])
    peak_memory_reset(device)
    pl.seed_everything(0, verbose=False)
    model = MODULES[cfg.paradigm.name](cfg, data.num_classes)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = build_trainer(cfg, Path(run_dir), [clock], single_run_place(Path(run_dir), []))
        trainer.fit(model, datamodule=data)
    data.trainer = None
    ssrl_rate = batch * per_epoch / statistics.median(clock.epoch_seconds())
    ssrl_memory = peak_memory_gib(device)
    del model, trainer
    peak_memory_reset(device)
    images = data.splits.train.images
    bare_rate = bare_images_per_second(cfg, images, batch, per_epoch, per_epoch, device, windows=sizes["epochs"])
    return {
        "paradigm": paradigm,
        "compile": compile_,
        "precision": cfg.trainer.precision,
        "channels_last": cfg.trainer.channels_last,
        "ssrl_img_s": ssrl_rate,
        "bare_img_s": bare_rate,
        "ratio": ssrl_rate / bare_rate,
        "cifar10_epoch_s": CIFAR_EPOCH / ssrl_rate,
        "ssrl_peak_gib": ssrl_memory,
        "bare_peak_gib": peak_memory_gib(device),
        "epochs_timed": sizes["epochs"],
        "batches_per_epoch": per_epoch,
    }


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


def end_to_end(device: torch.device, sizes: dict, smoke: bool) -> dict[str, Any]:
    """A 2-epoch ssrl-train run, its files checked; the same run stopped by SIGTERM and resumed."""
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
    out: dict[str, Any] = {}
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
        deadline = time.time() + 300
        while not (tmp / "interrupted" / "checkpoints" / "last.ckpt").exists():
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError("the run to interrupt ended before its first checkpoint")
            time.sleep(0.02)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=300)
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


def compare(reference: dict, resumed: dict, exact: bool) -> dict[str, Any]:
    """The resumed summary against the uninterrupted one: counts equal; metrics equal on the CPU, within
    RESUME_TOLERANCE on a GPU."""
    mi = reference.get("mi") or {}
    diffs = {
        "probe_acc": abs(resumed["probe_acc"] - reference["probe_acc"]),
        "knn_acc": abs(resumed["knn_acc"] - reference["knn_acc"]),
        "mi": max((abs((resumed.get("mi") or {}).get(k, float("inf")) - v) for k, v in mi.items()), default=0.0),
    }
    counts = all(resumed[k] == reference[k] for k in ("status", "steps", "epochs"))
    identical = all(resumed[k] == reference[k] for k in ("probe_acc", "knn_acc", "mi", "history"))
    close = all(diffs[k] <= RESUME_TOLERANCE[k] for k in diffs)
    return {
        "counts_equal": counts,
        "identical": identical,
        "history_equal": resumed.get("history") == reference.get("history"),
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
    if env.get("ok", True) and "value" in env:
        lines += [
            "| environment | |",
            "| --- | --- |",
            *[f"| {k} | {fmt(v, 2)} |" for k, v in env["value"].items()],
            "",
        ]
    cases = [p["value"] for name, p in results["parts"].items() if name.startswith("training") and "value" in p]
    if cases:
        lines += [
            "| paradigm | compile | ssrl img/s | bare img/s | ratio | CIFAR-10 epoch (s) | peak GiB ssrl / bare |",
            "| --- | --- | --- | --- | --- | --- | --- |",
        ]
        for c in cases:
            memory = f"{fmt(c['ssrl_peak_gib'], 2)} / {fmt(c['bare_peak_gib'], 2)}"
            lines.append(
                f"| {c['paradigm']} | {c['compile']} | {fmt(c['ssrl_img_s'])} | {fmt(c['bare_img_s'])} | "
                f"{c['ratio']:.3f} | {fmt(c['cifar10_epoch_s'], 2)} | {memory} |"
            )
        jmi = next((c for c in cases if c["paradigm"] == "jmi" and not c["compile"]), None)
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


def run_part(results: dict, name: str, fn: Callable[[], Any], ok: Callable[[Any], bool] = lambda v: True) -> Any:
    start = time.time()
    try:
        value = fn()
        shown = value if isinstance(value, dict) else None
        results["parts"][name] = {"value": shown, "ok": bool(ok(value)), "wall_s": time.time() - start}
        print(
            f"{name}: {'ok' if ok(value) else 'NOT OK'} ({time.time() - start:.0f} s) {json.dumps(shown, default=str)}"
        )
        return value
    except Exception as exc:
        results["parts"][name] = {"error": f"{type(exc).__name__}: {exc}", "ok": False, "trace": traceback.format_exc()}
        print(f"{name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for table.md and results.json")
    parser.add_argument("--smoke", action="store_true", help="every part at tiny sizes on the CPU")
    parser.add_argument("--budget", type=float, default=360, help="seconds after which the compile cases are skipped")
    args = parser.parse_args()
    started = time.time()
    sizes = SMOKE if args.smoke else FULL
    if not args.smoke and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; use --smoke for the CPU check", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.smoke else "cuda")
    results: dict[str, Any] = {"smoke": args.smoke, "sizes": sizes, "parts": {}}
    run_part(results, "environment", lambda: environment(device, sizes))
    run_part(results, "estimators", lambda: estimators(device, sizes), ok=lambda v: v["ok"])
    data = run_part(results, "data", lambda: training_data(sizes))
    jmi = None
    if data is not None:
        for paradigm in PARADIGMS:
            case = run_part(
                results, f"training {paradigm}", lambda p=paradigm: training_case(p, False, device, sizes, data)
            )
            jmi = jmi or (case if paradigm == "jmi" else None)
        step = sizes["batch"] / jmi["ssrl_img_s"] if jmi else None
        run_part(results, "views", lambda: views(device, sizes, data, step))
    run_part(results, "end_to_end", lambda: end_to_end(device, sizes, args.smoke), ok=lambda v: v["ok"])
    if data is not None and not args.smoke:
        for paradigm in PARADIGMS:
            name = f"training {paradigm} compiled"
            if time.time() - started > args.budget:
                results["parts"][name] = {"skipped": f"time budget of {args.budget:.0f} s spent", "ok": False}
                continue
            run_part(results, name, lambda p=paradigm: training_case(p, True, device, sizes, data))
    if data is not None:
        results["parts"]["data"]["value"] = {"train_images": len(data.splits.train), "on": str(device)}
    results["wall_s"] = time.time() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=str))
    table = markdown(results)
    (args.out / "table.md").write_text(table)
    print(table)
    failed = [name for name, part in results["parts"].items() if not part["ok"] and "skipped" not in part]
    if failed:
        print(f"gpu_check: not ok: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
