"""ssrl-train: the Hydra entry point (primary config conf/train.yaml).

ssrl-train paradigm=sdmi estimator=jsd trainer.max_epochs=5
ssrl-train -m paradigm=jmi,sdmi estimator=cos_dv,infonce,jsd
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import hydra
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, read_write

from ssrl.config import register_schemas
from ssrl.errors import ConfigError, DiskFull, FolderRefused, message_of
from ssrl.run import tensorboard
from ssrl.run.callbacks import NotRequeued
from ssrl.run.cli import check, command_line_overrides, single_run
from ssrl.run.grid_devices import local_grid_devices
from ssrl.run.help import register_help_resolver
from ssrl.run.job import CHECKPOINT, device_defaults, train
from ssrl.run.lock import check_free
from ssrl.run.naming import register_resolvers
from ssrl.run.resume import check_resume, restore_hydra_record
from ssrl.run.summary import read_summary, write_summary

CONFIG_DIR = str(Path(__file__).resolve().parent.parent / "conf")
register_schemas()
register_resolvers()
register_help_resolver(CONFIG_DIR)


@contextmanager
def this_job_command_line(hc: Any, run_dir: Path) -> Iterator[None]:
    """Lightning's DDP launcher starts ranks > 0 by re-running the command line with
    hydra.run.dir=<HydraConfig's run.dir>. Pointing both at this job makes such a rank run this job in
    this folder: not the whole sweep of a multirun, and no second run folder."""
    argv, run = sys.argv, hc.run.dir
    sys.argv = [argv[0], *hc.overrides.task]
    with read_write(hc):
        hc.run.dir = str(run_dir)
    try:
        yield
    finally:
        sys.argv = argv
        with read_write(hc):
            hc.run.dir = run


@contextmanager
def one_process_group() -> Iterator[None]:
    """A DDP job's ranks end with the job: its process group is destroyed and the environment that
    Lightning's launcher set for its children (LOCAL_RANK, WORLD_SIZE, MASTER_PORT, ...) is undone, so
    the next job of a multirun launches ranks of its own instead of waiting for the old ones."""
    environment = dict(os.environ)
    try:
        yield
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
        os.environ.clear()
        os.environ.update(environment)


def one_log() -> None:
    """Lightning's messages and Python warnings go where Hydra sends the run's log: the console and
    <run>/train.log. (Lightning gives its loggers a handler of their own when it is imported before
    Hydra configures logging, and stops them from propagating.)"""
    if not logging.getLogger().handlers:
        return
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning.fabric"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.captureWarnings(True)


def in_run_log(line: str) -> None:
    """Add ``line`` to the run's log file (Hydra's file handler: <run>/train.log) only: the console has
    it on stderr already."""
    log = logging.getLogger("ssrl")
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, line, None, None)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)


def run_job(cfg: DictConfig) -> dict[str, Any] | None:
    """Hydra's task function. A failing job leaves a summary with status "failed" and its error; in a
    multirun the other jobs go on, in a single run the exit status is non-zero. A job refused because its
    folder holds another experiment, or another process runs there, leaves that folder as it was."""
    hc = HydraConfig.get()
    run_dir = Path(hc.runtime.output_dir)
    overrides = list(hc.overrides.task)
    one_log()
    multirun = hc.mode == RunMode.MULTIRUN
    place = tensorboard.sweep_place(Path(hc.sweep.dir), run_dir, overrides) if multirun else None
    devices = local_grid_devices(cfg.trainer, hc.launcher.get("_target_", ""), int(hc.job.get("num") or 0), multirun)
    try:
        with this_job_command_line(hc, run_dir), one_process_group():
            return train(cfg, run_dir, overrides, in_sweep=multirun, place=place, devices=devices)
    except FolderRefused as exc:
        restore_hydra_record(run_dir, run_dir / CHECKPOINT, hc.output_subdir)  # Hydra rewrote it for this job
        print(f"ssrl-train: error: {exc}", file=sys.stderr)
        if hc.mode == RunMode.MULTIRUN:
            return None
        sys.exit(2)
    except Exception as exc:
        message = message_of(exc)  # of an exception in a DataLoader worker, its own message, not the traceback
        error = message if isinstance(exc, (ConfigError, DiskFull)) else f"{type(exc).__name__}: {message}"
        previous = read_summary(run_dir) or {}
        write_summary(
            run_dir,
            {
                **previous,
                "status": "failed",
                "error": error,
                "overrides": overrides,
                "run_dir": str(run_dir),
                "traceback": traceback.format_exc(),
            },
        )
        print(f"ssrl-train: {run_dir.name} failed: {error}", file=sys.stderr)
        in_run_log(f"ssrl-train: {run_dir.name} failed: {error}")
        if isinstance(exc, NotRequeued):
            raise  # submitit records the job as ended, not requeued
        if hc.mode == RunMode.MULTIRUN:
            return None
        if isinstance(exc, ConfigError):
            sys.exit(2)
        if isinstance(exc, DiskFull):
            sys.exit(1)
        raise


_app = hydra.main(config_path=CONFIG_DIR, config_name="train", version_base="1.3")(run_job)


def main() -> None:
    """Check the command line (each override value composed and validated), then hand it to Hydra."""
    overrides, runs = command_line_overrides(sys.argv[1:])
    if runs:
        multirun = "-m" in sys.argv or "--multirun" in sys.argv
        try:
            check(CONFIG_DIR, "train", overrides, multirun)
            one = single_run(CONFIG_DIR, "train", overrides, multirun)
            if one is not None:  # before Hydra writes .hydra/ into the run folder
                cfg, run_dir = one
                check_free(run_dir)  # no other process runs there
                if cfg.resume:
                    device_defaults(cfg)
                    check_resume(cfg, run_dir, run_dir / CHECKPOINT)
        except ConfigError as exc:
            print(f"ssrl-train: error: {exc}", file=sys.stderr)
            sys.exit(2)
    _app()


if __name__ == "__main__":
    main()
