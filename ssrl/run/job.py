"""One training run in its folder: build, evaluate the untrained encoder, fit (or resume), evaluate,
write summary.json. A finished run is not redone; a killed one continues from its last checkpoint."""

from __future__ import annotations

import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from ssrl.data.module import SSLDataModule
from ssrl.evaluation.probes import evaluate_features, extract_splits
from ssrl.paradigms.base import MIParadigm
from ssrl.paradigms.jmi import JMI
from ssrl.paradigms.sdmi import SDMI
from ssrl.run import baseline, loggers, mi_probe, tensorboard
from ssrl.run.callbacks import AtomicCheckpointIO, PeriodicCheckpoint, RunningSummary, StopOnSignal
from ssrl.run.checkpoint import CHECKPOINT
from ssrl.run.lock import one_process
from ssrl.run.resume import check_resume
from ssrl.run.same_run import find_same_run, reuse
from ssrl.run.summary import read_json, read_summary, write_json_atomic, write_summary
from ssrl.run.summary_block import summary_block
from ssrl.run.what_ran import what_ran
from ssrl.validate import check_device, check_sizes, validate

log = logging.getLogger("ssrl")
PARADIGMS: dict[str, type[MIParadigm]] = {"jmi": JMI, "sdmi": SDMI}
SPEED_FIELDS = ("channels_last", "compile")
#: Fields SDMI applies itself, under manual optimization (Lightning refuses them there).
MANUAL_FIELDS = ("accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm")
INIT_METRICS = "init_metrics.json"


def native_bf16() -> bool:
    """Whether every visible CUDA GPU computes in bf16 natively: compute capability 8.0 or above
    (Ampere on). torch.cuda.is_bf16_supported() also says True on a V100 or T4 (7.x), which emulate it
    slowly. Every GPU, so that the jobs of a local grid run in one precision whichever GPU they take."""
    count = torch.cuda.device_count()
    return count > 0 and all(torch.cuda.get_device_capability(i)[0] >= 8 for i in range(count))


def device_defaults(cfg: DictConfig) -> None:
    """Fill trainer.precision=auto for the device the run will use: bf16-mixed on a CUDA GPU that
    computes in bf16 natively (``native_bf16``), 32-true elsewhere (an older GPU included: 16-mixed
    there is the user's choice)."""
    t = cfg.trainer
    cuda = torch.cuda.is_available() and t.accelerator in ("auto", "gpu", "cuda")
    if t.precision == "auto":
        t.precision = "bf16-mixed" if cuda and native_bf16() else "32-true"


def build_trainer(
    cfg: DictConfig,
    run_dir: Path,
    callbacks: list[pl.Callback],
    place: tensorboard.Place,
    devices: int | list[int] | None = None,
) -> pl.Trainer:
    """The run's Trainer; ``devices`` replaces trainer.devices (a local grid's job GPU, ssrl.run.grid_devices)."""
    skip = SPEED_FIELDS + (MANUAL_FIELDS if cfg.paradigm.name == "sdmi" else ())
    kwargs = {k: v for k, v in OmegaConf.to_container(cfg.trainer, resolve=True).items() if k not in skip}
    if devices is not None:
        kwargs["devices"] = devices
    checkpoint = PeriodicCheckpoint(run_dir / CHECKPOINT, cfg.checkpoint_every_minutes)
    return pl.Trainer(
        **kwargs,
        logger=loggers.build_loggers(cfg.logger, run_dir, place.name, place),
        callbacks=[checkpoint, tensorboard.learning_rates_callback(), *callbacks],
        enable_checkpointing=False,  # PeriodicCheckpoint writes checkpoints/last.ckpt, no other file
        # under SLURM, ssrl's StopOnSignal and submitit handle the time limit, not Lightning's auto-requeue
        plugins=[AtomicCheckpointIO(), *([SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else [])],
        default_root_dir=str(run_dir),
        num_sanity_val_steps=0,
    )


def offline_features(model: MIParadigm, data: SSLDataModule, device: torch.device) -> dict:
    """The frozen backbone's features of the labeled, val and test splits, on ``device``, extracted once."""
    model.to(device)
    return extract_splits(model.online.backbone, data.eval_loaders(), model.views.clean, device)


def evaluate_offline(model: MIParadigm, data: SSLDataModule, device: torch.device, cfg: DictConfig) -> dict:
    """Probe and kNN accuracy of the frozen backbone, fit on the labeled split: {"val": ..., "test": ...}."""
    return evaluate_features(offline_features(model, data, device), cfg.eval)


PROTOCOL = {
    "splits": "train (self-supervised training; its labeled images fit the probes), val (a seeded, stratified "
    "slice held out of the training data: the per-epoch diagnostics in history, and every choice), test "
    "(the top-level probe_acc and knn_acc, reported once); disjoint",
    "probe": "logistic regression (scikit-learn's objective at C=1, in torch on the run's device, full-batch "
    "L-BFGS) on standardised frozen backbone features; scaler and classifier fit on the labeled split only, "
    "scored on val and test",
    "knn": "the k nearest labeled features by cosine similarity s vote with weight exp(s / temperature)",
    "baseline": "the same probe and kNN on untrained backbones over eval.baseline_inits random initialisations, "
    "cached per data set and backbone (ssrl.run.baseline); intervals over the inits and the test images, gains "
    "against the inits' mean (ssrl.analysis.accuracy)",
}
FINAL_FIELDS = (
    "bound",
    "effective_rank",
    "embedding_std",
    "effective_rank_backbone",
    "alignment",
    "uniformity",
    "mi",
    "mi_probe",
    "collapsed",
)


PER_IMAGE = ("probe_correct", "knn_correct")


def without_per_image(result: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """An offline evaluation's accuracies per split, its per-image correctness left out."""
    return {split: {k: v for k, v in r.items() if k not in PER_IMAGE} for split, r in result.items()}


def per_image(result: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    """summary.json's per_image: {split: {"probe_correct", "knn_correct"}}, strings of 0/1 in the split's
    fixed order (ssrl.evaluation.probes.bits), what ssrl.analysis.accuracy reads."""
    return {split: {k: r[k] for k in PER_IMAGE} for split, r in result.items()}


def accuracies(init: dict[str, float], final: dict[str, float]) -> dict[str, float]:
    """probe_acc, probe_acc_init, knn_acc, knn_acc_init on one split."""
    return {**final, **{f"{k}_init": v for k, v in init.items()}}


def completed_summary(cfg: DictConfig, model: MIParadigm, init: dict, final: dict, pinned: dict) -> dict[str, Any]:
    """The fields of a completed run (see ssrl.run.summary) from the model's held-out history, the
    offline evaluations of the untrained and trained encoder and the pinned baseline (ssrl.run.baseline)."""
    last = model.history[-1]
    init, scores = without_per_image(init), without_per_image(final)
    return {
        "status": "completed",
        **accuracies(init["test"], scores["test"]),
        "val": accuracies(init["val"], scores["val"]),
        "per_image": per_image(final),
        **baseline.summary_fields(pinned, per_image(final)),
        **{k: last[k] for k in FINAL_FIELDS if k in last},
        "mi_init": model.history[0].get("mi"),
        "mi_probe_init": model.history[0].get("mi_probe"),
        "mi_probe_s": sum(h.get("mi_probe_s", 0.0) for h in model.history),
        "epochs": last["epoch"],
        "steps": model.batches_trained,
        "skipped_steps": model.skipped_steps,
        "history": model.history,
        "protocol": {
            **PROTOCOL,
            "knn_k": cfg.eval.knn_k,
            "knn_temperature": cfg.eval.knn_temperature,
            "mi": f"nats: DV and symmetric InfoNCE on the training critic's scores, mean over val batches of "
            f"N={cfg.data.batch_size} pairs of fixed random views; bound: each estimator's own J - M there "
            "(JSD's and NWJ's are not MI)",
            "mi_probe": mi_probe.protocol(cfg),
            "collapse_rule": {
                "std_fraction": cfg.eval.collapse_std_fraction,
                "min_rank": cfg.eval.collapse_min_rank,
            },
        },
    }


def log_final(
    trainer: pl.Trainer, cfg: DictConfig, model: MIParadigm, data: SSLDataModule, summary: dict, bank: tuple
) -> None:
    """The final results (at the last step) in every logger (ssrl.run.loggers); in TensorBoard, also the
    summary as text, the end of the HParams session and the embedding projector (its kNN reads ``bank``,
    the labeled split's features of the final evaluation)."""
    step = max(0, trainer.fit_loop.epoch_loop._batches_that_stepped - 1)  # the step of the last batch's scalars
    loggers.log_final(trainer.loggers, summary, step)
    for logger in trainer.loggers:
        if isinstance(logger, tensorboard.GridTensorBoardLogger):
            tensorboard.export_projector(logger, model, data.eval_loaders(), cfg.eval, step, bank)


def train(
    cfg: DictConfig,
    run_dir: Path,
    overrides: list[str],
    in_sweep: bool = False,
    place: tensorboard.Place | None = None,
    devices: list[int] | None = None,
) -> dict[str, Any]:
    """Train one run in ``run_dir`` and return its completed summary. Only rank 0 evaluates offline
    and writes files; every process trains. ``in_sweep``: a job of a multirun, which reuses a sibling
    folder's completed run when it is the same run (ssrl.run.same_run). TensorBoard events go to
    ``place`` (in a multirun, the sweep's; by default ``<run_dir>/tensorboard/<name from the overrides>``).
    The folder is held by this process while the job runs: RunFolderBusy, before any work, when another
    process holds it (ssrl.run.lock).
    ``devices``: the GPUs of a local grid's job (ssrl.run.grid_devices), in place of trainer.devices."""
    validate(cfg)
    check_device(cfg.trainer)
    loggers.check_loggers(cfg.logger)
    with one_process(run_dir):
        return _train(cfg, run_dir, overrides, in_sweep, place, devices)


def _train(
    cfg: DictConfig,
    run_dir: Path,
    overrides: list[str],
    in_sweep: bool,
    place: tensorboard.Place | None,
    devices: list[int] | None,
) -> dict[str, Any]:
    device_defaults(cfg)
    place = place or tensorboard.single_run_place(run_dir, overrides)
    checkpoint = run_dir / CHECKPOINT
    previous = read_summary(run_dir) if cfg.resume else None
    longer = check_resume(cfg, run_dir, checkpoint) if cfg.resume else []  # the same experiment, or refused
    if previous and previous.get("status") == "completed" and not longer:
        log.info(f"ssrl: {run_dir} is already completed (resume=false to train it again)")
        logger = (previous.get("config") or {}).get("logger") or OmegaConf.to_container(cfg.logger)  # the run's own
        log.info(summary_block(previous, run_dir, logger, place.logdir))
        return previous
    resume_from = checkpoint if cfg.resume and checkpoint.exists() else None
    if resume_from and longer:
        log.info(f"ssrl: extending {run_dir}: " + ", ".join(f"{k}={OmegaConf.select(cfg, k)}" for k in longer))
    started = time.time() - ((previous or {}).get("wall_s", 0.0) if resume_from else 0.0)
    config = OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)
    base = {"overrides": overrides, "run_dir": str(run_dir), "paradigm": cfg.paradigm.name, "config": config}
    same = find_same_run(run_dir, config) if in_sweep and cfg.resume and resume_from is None else None
    if same is not None:
        summary = reuse(*same, base)
        if tensorboard.in_config(cfg.logger):
            tensorboard.copy_same_run(place, same[0], same[1].get("overrides") or [], config)
        write_summary(run_dir, summary)
        log.info(f"ssrl: {run_dir.name} is the same run as {same[0].name} (ssrl/run/same_run.py); not trained again")
        return summary

    pl.seed_everything(cfg.seed, workers=True)
    data = SSLDataModule(cfg.data, cfg.seed)
    model = PARADIGMS[cfg.paradigm.name](cfg, data.num_classes)

    def progress() -> dict[str, Any]:
        return {**base, "wall_s": time.time() - started}

    stop = StopOnSignal(checkpoint)
    # the probe first: it adds to the epoch's history entry before RunningSummary writes it
    probe = mi_probe.MIProbe(cfg.eval.mi_probe_every_n_epochs)
    trainer = build_trainer(cfg, run_dir, [probe, RunningSummary(run_dir, progress), stop], place, devices)
    check_sizes(cfg, len(data.splits.train), len(data.splits.val), trainer.world_size)  # before any work
    device, lead = trainer.strategy.root_device, trainer.is_global_zero
    base["ran"] = what_ran(trainer)  # the precision Lightning runs, the device, the threads
    # the config in (with what ran), and closed at the end
    with loggers.logging_to(trainer.loggers if lead else [], {**config, "ran": base["ran"]}):
        init = read_json(run_dir / INIT_METRICS) if resume_from else None
        if init is None and lead:
            init = evaluate_offline(model, data, device, cfg)
            write_json_atomic(run_dir / INIT_METRICS, init)
        if resume_from is None:
            trainer.validate(model, datamodule=data, verbose=False)  # the held-out metrics before training
        # weights_only=True: a checkpoint holds tensors, plain containers and strings only, no other type
        trainer.fit(model, datamodule=data, ckpt_path=str(resume_from) if resume_from else None, weights_only=True)
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
            log.info(f"ssrl: stopped by {name}; checkpoint {checkpoint}; rerun the same command to resume")
            if lead:
                log.info(summary_block(read_summary(run_dir) or {}, run_dir, config["logger"], place.logdir))
            stop.hand_over()  # under submitit: its handler requeues the job and exits
            sys.exit(128 + stop.signal)
        base["ran"] = what_ran(trainer)  # again after fit: a CPU DDP strategy sets the threads as it starts
        trainer.save_checkpoint(checkpoint, weights_only=False)  # the whole state; ssrl-eval reads its weights
        if not model.history or model.history[-1]["step"] != model.batches_trained:
            trainer.validate(model, datamodule=data, verbose=False)
        if not lead:
            return {}
        features = offline_features(model, data, device)  # once: the probes, kNN and the projector's kNN
        final = evaluate_features(features, cfg.eval)
        pinned = baseline.pinned(cfg, data.eval_loaders, model.views.clean, device, PROTOCOL["probe"])
        summary = {**progress(), **completed_summary(cfg, model, init, final, pinned)}
        log_final(trainer, cfg, model.to(device), data, summary, features["labeled"])
        write_summary(run_dir, summary)
        log.info(summary_block(summary, run_dir, config["logger"], place.logdir))
        return summary
