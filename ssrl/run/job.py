"""One training run in its folder: build, evaluate the untrained encoder, fit (or resume), evaluate,
write summary.json. A finished run is not redone; a killed one continues from its last checkpoint."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import LearningRateMonitor, ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger

from ssrl.data.module import SSLDataModule
from ssrl.evaluation.probes import evaluate_backbone
from ssrl.paradigms.base import MIParadigm
from ssrl.paradigms.jmi import JMI
from ssrl.paradigms.sdmi import SDMI
from ssrl.run.callbacks import AtomicCheckpointIO, RunningSummary, export_projector
from ssrl.run.summary import read_json, read_summary, write_json_atomic, write_summary
from ssrl.validate import validate

PARADIGMS: dict[str, type[MIParadigm]] = {"jmi": JMI, "sdmi": SDMI}
SPEED_FIELDS = ("channels_last", "compile")
CHECKPOINT = Path("checkpoints") / "last.ckpt"
INIT_METRICS = "init_metrics.json"


def device_defaults(cfg: DictConfig) -> None:
    """Fill trainer.precision=auto and trainer.channels_last=null for the device the run will use:
    bf16-mixed and channels_last on a CUDA GPU (bf16-capable), 32-true and the default layout elsewhere."""
    t = cfg.trainer
    cuda = torch.cuda.is_available() and t.accelerator in ("auto", "gpu", "cuda")
    if t.precision == "auto":
        t.precision = "bf16-mixed" if cuda and torch.cuda.is_bf16_supported() else "32-true"
    if t.channels_last is None:
        t.channels_last = cuda


def build_logger(cfg: DictConfig, run_dir: Path) -> Any:
    """TensorBoard events in <run>/tb (every run of a sweep under the sweep folder), or a CSV file."""
    if cfg.logger.name == "csv":
        return CSVLogger(save_dir=str(run_dir), name="", version="csv")
    return TensorBoardLogger(save_dir=str(run_dir), name="", version="tb", default_hp_metric=False)


def build_trainer(cfg: DictConfig, run_dir: Path, callbacks: list[pl.Callback]) -> pl.Trainer:
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if k not in SPEED_FIELDS}
    checkpoint = ModelCheckpoint(
        dirpath=str(run_dir / CHECKPOINT.parent),
        save_last=True,
        save_top_k=0,
        every_n_train_steps=cfg.checkpoint_every_n_steps,
        save_on_train_epoch_end=True,
    )
    return pl.Trainer(
        **kwargs,
        logger=build_logger(cfg, run_dir),
        callbacks=[checkpoint, LearningRateMonitor(logging_interval="step"), *callbacks],
        plugins=[AtomicCheckpointIO()],
        default_root_dir=str(run_dir),
        num_sanity_val_steps=0,
    )


def evaluate_offline(model: MIParadigm, data: SSLDataModule, device: torch.device, cfg: DictConfig) -> dict:
    model.to(device)
    labeled, test = data.eval_loaders()
    return evaluate_backbone(model.online.backbone, labeled, test, model.views.clean, device, cfg.eval)


def hparams(cfg: DictConfig) -> dict[str, Any]:
    """The config as TensorBoard's HParams view wants it: flat, scalar values."""
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        for key, value in node.items():
            name = f"{prefix}{key}"
            if isinstance(value, dict):
                walk(value, f"{name}.")
            else:
                flat[name] = value if isinstance(value, (int, float, bool, str)) else str(value)

    walk(OmegaConf.to_container(cfg, resolve=True, enum_to_str=True), "")
    return flat


def train(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """Train one run in ``run_dir`` and return its completed summary."""
    validate(cfg)
    device_defaults(cfg)
    previous = read_summary(run_dir)
    if cfg.resume and previous and previous.get("status") == "completed":
        print(f"ssrl: {run_dir} is already completed (resume=false to train it again)")
        return previous
    checkpoint = run_dir / CHECKPOINT
    resume_from = checkpoint if cfg.resume and checkpoint.exists() else None
    if not cfg.resume and checkpoint.exists():
        checkpoint.unlink()
    started = time.time() - ((previous or {}).get("wall_s", 0.0) if resume_from else 0.0)

    pl.seed_everything(cfg.seed, workers=True)
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    base = {
        "overrides": overrides,
        "run_dir": str(run_dir),
        "paradigm": cfg.paradigm.name,
        "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
    }

    def progress() -> dict[str, Any]:
        return {**base, "wall_s": time.time() - started}

    trainer = build_trainer(cfg, run_dir, [RunningSummary(run_dir, progress)])
    device = trainer.strategy.root_device
    init = read_json(run_dir / INIT_METRICS) if resume_from else None
    if init is None:
        init = evaluate_offline(model, data, device, cfg)
        write_json_atomic(run_dir / INIT_METRICS, init)
    if resume_from is None:
        trainer.validate(model, datamodule=data, verbose=False)  # the held-out metrics before training
    trainer.fit(model, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
    trainer.save_checkpoint(run_dir / CHECKPOINT)  # the final weights, which ssrl-eval reads
    if not model.history or model.history[-1]["step"] != model.batches_trained:
        trainer.validate(model, datamodule=data, verbose=False)
    final = evaluate_offline(model, data, device, cfg)

    last = model.history[-1]
    summary = {
        **progress(),
        "status": "completed",
        "probe_acc": final["probe_acc"],
        "probe_acc_init": init["probe_acc"],
        "knn_acc": final["knn_acc"],
        "knn_acc_init": init["knn_acc"],
        **{
            k: last[k]
            for k in (
                "effective_rank",
                "embedding_std",
                "effective_rank_backbone",
                "alignment",
                "uniformity",
                "mi",
                "collapsed",
            )
            if k in last
        },
        "mi_init": model.history[0].get("mi"),
        "epochs": last["epoch"],
        "steps": model.batches_trained,
        "history": model.history,
        "protocol": {
            "probe": "logistic regression (scikit-learn, L-BFGS, C=1) on standardised frozen backbone features; "
            "trained on the labeled split, scored on the held-out split",
            "knn": {
                "k": cfg.eval.knn_k,
                "temperature": cfg.eval.knn_temperature,
                "similarity": "cosine",
                "weights": "exp(similarity / temperature)",
            },
            "mi": f"mean over held-out batches of N={cfg.data.batch_size} pairs of fixed random views",
        },
    }
    if trainer.is_global_zero:
        if isinstance(trainer.logger, TensorBoardLogger):
            metrics = {
                f"hparam/{k}": float(summary[k]) for k in ("probe_acc", "knn_acc", "effective_rank", "embedding_std")
            }
            metrics.update({f"hparam/mi/{k}": v for k, v in (summary.get("mi") or {}).items()})
            trainer.logger.log_hyperparams(hparams(cfg), metrics)
            export_projector(trainer.logger, model.to(device), data.eval_loaders()[1], model.batches_trained)
            trainer.logger.finalize("success")
        write_summary(run_dir, summary)
    return summary
