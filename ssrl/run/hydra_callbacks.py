"""Hydra callbacks of a multirun (registered in conf/train.yaml under hydra.callbacks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from ssrl.report import write_report
from ssrl.run import tensorboard

DEFAULT_SWEEP_DIR = "outputs/multirun/${ssrl_name:${hydra.overrides.task}}"


class PinSweepFolder(Callback):
    """Every job of a sweep lands in the folder named by the command line's sweep overrides.

    Hydra re-composes each job's config, which would re-resolve hydra.sweep.dir with that job's
    overrides; resolving it once here and passing it on as a Hydra override keeps one folder, and the
    same command finds the same folder again (so a rerun skips what completed).
    """

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        raw = OmegaConf.to_container(config.hydra.sweep, resolve=False)["dir"]
        given = [o for o in config.hydra.overrides.hydra if o.lstrip("+~").startswith("hydra.sweep.dir=")]
        if raw != DEFAULT_SWEEP_DIR or given:
            return
        folder = str(config.hydra.sweep.dir).replace("'", "")
        with open_dict(config):
            config.hydra.sweep.dir = folder
            config.hydra.overrides.hydra.append(f"hydra.sweep.dir='{folder}'")


class ReportOnMultirunEnd(Callback):
    """Writes the sweep's report (``ssrl.report``) when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        runs = write_report(Path(str(config.hydra.sweep.dir)))
        print(f"ssrl-report: {len(runs)} runs -> {config.hydra.sweep.dir}/results.md")


class TensorBoardSweep(Callback):
    """The sweep's one HParams experiment in ``<sweep>/tensorboard``: when the multirun starts, from the
    swept keys (so a sweep in progress already reads right, and each job is named by its values of
    them); when it ends, rewritten with every key of every run, from their summaries."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        params = config.hydra.sweeper.get("params")
        swept = tensorboard.swept_keys(config.hydra.overrides.task, OmegaConf.to_container(params) if params else {})
        tensorboard.write_sweep_experiment(Path(str(config.hydra.sweep.dir)), swept, [])

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        try:
            swept = json.loads((sweep / tensorboard.FOLDER / tensorboard.SWEEP_FILE).read_text())["swept"]
        except (OSError, ValueError, KeyError):
            return
        tensorboard.write_sweep_experiment(sweep, swept, tensorboard.sweep_runs(sweep, swept))
        print(f"ssrl: tensorboard --logdir {sweep / tensorboard.FOLDER}")
