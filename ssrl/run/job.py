"""One training run in its folder: build, evaluate the untrained encoder, fit (or resume), evaluate,
write summary.json. A finished run is not redone; a killed one continues from its last checkpoint."""

from __future__ import annotations

import signal
import sys
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
from ssrl.run.callbacks import AtomicCheckpointIO, RunningSummary, StopOnSignal, export_projector
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
        every_n_train_steps=cfg.checkpoint_every_n_steps,  # global_step counts batches in both paradigms
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


PROTOCOL = {
    "probe": "logistic regression (scikit-learn, L-BFGS, C=1) on standardised frozen backbone features; "
    "trained on the labeled split, scored on the held-out split",
    "knn": "the k nearest labeled features by cosine similarity s vote with weight exp(s / temperature)",
}
FINAL_FIELDS = (
    "effective_rank",
    "embedding_std",
    "effective_rank_backbone",
    "alignment",
    "uniformity",
    "mi",
    "collapsed",
)


def completed_summary(cfg: DictConfig, model: MIParadigm, init: dict, final: dict) -> dict[str, Any]:
    """The fields of a completed run (see ssrl.run.summary) from the model's held-out history and
    the offline evaluations of the untrained and trained encoder."""
    last = model.history[-1]
    return {
        "status": "completed",
        "probe_acc": final["probe_acc"],
        "probe_acc_init": init["probe_acc"],
        "knn_acc": final["knn_acc"],
        "knn_acc_init": init["knn_acc"],
        **{k: last[k] for k in FINAL_FIELDS if k in last},
        "mi_init": model.history[0].get("mi"),
        "epochs": last["epoch"],
        "steps": model.batches_trained,
        "skipped_steps": model.skipped_steps,
        "history": model.history,
        "protocol": {
            **PROTOCOL,
            "knn_k": cfg.eval.knn_k,
            "knn_temperature": cfg.eval.knn_temperature,
            "mi": f"mean over held-out batches of N={cfg.data.batch_size} pairs of fixed random views",
        },
    }


def log_final(trainer: pl.Trainer, cfg: DictConfig, model: MIParadigm, data: SSLDataModule, summary: dict) -> None:
    """The HParams view (config + final metrics) and the embedding projector, in TensorBoard."""
    if not isinstance(trainer.logger, TensorBoardLogger):
        return
    metrics = {f"hparam/{k}": float(summary[k]) for k in ("probe_acc", "knn_acc", "effective_rank", "embedding_std")}
    metrics.update({f"hparam/mi/{k}": v for k, v in (summary.get("mi") or {}).items()})
    trainer.logger.log_hyperparams(hparams(cfg), metrics)
    export_projector(trainer.logger, model, data.eval_loaders()[1], model.batches_trained)
    trainer.logger.finalize("success")


def train(cfg: DictConfig, run_dir: Path, overrides: list[str]) -> dict[str, Any]:
    """Train one run in ``run_dir`` and return its completed summary. Only rank 0 evaluates offline
    and writes files; every process trains."""
    validate(cfg)
    device_defaults(cfg)
    previous = read_summary(run_dir)
    if cfg.resume and previous and previous.get("status") == "completed":
        print(f"ssrl: {run_dir} is already completed (resume=false to train it again)")
        return previous
    checkpoint = run_dir / CHECKPOINT
    resume_from = checkpoint if cfg.resume and checkpoint.exists() else None
    started = time.time() - ((previous or {}).get("wall_s", 0.0) if resume_from else 0.0)

    pl.seed_everything(cfg.seed, workers=True)
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    base = {"overrides": overrides, "run_dir": str(run_dir), "paradigm": cfg.paradigm.name, "config": config}

    def progress() -> dict[str, Any]:
        return {**base, "wall_s": time.time() - started}

    stop = StopOnSignal(checkpoint)
    trainer = build_trainer(cfg, run_dir, [RunningSummary(run_dir, progress), stop])
    device, lead = trainer.strategy.root_device, trainer.is_global_zero
    init = read_json(run_dir / INIT_METRICS) if resume_from else None
    if init is None and lead:
        init = evaluate_offline(model, data, device, cfg)
        write_json_atomic(run_dir / INIT_METRICS, init)
    if resume_from is None:
        trainer.validate(model, datamodule=data, verbose=False)  # the held-out metrics before training
    trainer.fit(model, datamodule=data, ckpt_path=str(resume_from) if resume_from else None)
    if stop.signal is not None:
        name = signal.Signals(stop.signal).name
        if lead:
            write_summary(
                run_dir,
                {
                    **progress(),
                    "status": "running",
                    "history": model.history,
                    "stopped": f"{name} after batch {model.batches_trained}; rerun to resume",
                },
            )
        print(f"ssrl: stopped by {name}; checkpoint {checkpoint}; rerun the same command to resume")
        sys.exit(128 + stop.signal)
    trainer.save_checkpoint(checkpoint)  # the final weights, which ssrl-eval reads
    if not model.history or model.history[-1]["step"] != model.batches_trained:
        trainer.validate(model, datamodule=data, verbose=False)
    if not lead:
        return {}
    summary = {**progress(), **completed_summary(cfg, model, init, evaluate_offline(model, data, device, cfg))}
    log_final(trainer, cfg, model.to(device), data, summary)
    write_summary(run_dir, summary)
    return summary
