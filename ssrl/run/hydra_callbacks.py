"""Hydra callbacks of a multirun (registered in conf/train.yaml under hydra.callbacks)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf, open_dict

from ssrl.report import write_report
from ssrl.run import tensorboard
from ssrl.run.summary import SUMMARY, read_summary

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
    """Writes the sweep's report (``ssrl.report``) when a multirun ends; a report that fails leaves none
    (not the previous one) and one line saying why (ExitStatus then ends the sweep non-zero)."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(str(config.hydra.sweep.dir))
        try:
            runs = write_report(sweep)
        except Exception as exc:
            print(f"ssrl-report: error: {type(exc).__name__}: {exc}; no report in {sweep}", file=sys.stderr)
            return
        print(f"ssrl-report: {len(runs)} runs -> {sweep}/results.md")


def _written(sweep: Path) -> dict[Path, int]:
    """The modification time (ns) of every summary.json and of results.md under ``sweep``."""
    files = [*sweep.rglob(SUMMARY), sweep / "results.md"]
    return {path: path.stat().st_mtime_ns for path in files if path.exists()}


class ExitStatus(Callback):
    """A multirun ends with exit status 1, after its report, when a job of this sweep failed or the report
    was not written, and one line names them. A failed job is one whose summary.json, written since the
    sweep started, says "failed", or (for a job run in this process: Hydra's basic launcher) one that
    returned no summary, such as a job refused because its folder holds another experiment or another
    process runs there. Listed in conf/train.yaml after PinSweepFolder (which fixes the sweep folder this
    reads) and before the others: Hydra calls on_multirun_end in reverse order, so this comes after the
    report and the TensorBoard experiment."""

    def __init__(self) -> None:
        self.before: dict[Path, int] = {}  # _written() when the multirun started
        self.unfinished: set[Path] = set()  # run folders of this process's jobs that returned no summary

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self.before = _written(Path(str(config.hydra.sweep.dir)).resolve())

    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.COMPLETED or job_return._return_value is None:
            self.unfinished.add(Path(str(job_return.hydra_cfg.hydra.runtime.output_dir)).resolve())

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep = Path(str(config.hydra.sweep.dir)).resolve()
        new = {path for path, time in _written(sweep).items() if self.before.get(path) != time}
        summaries = (p.parent for p in new if p.name == SUMMARY)
        failed = {folder for folder in summaries if (read_summary(folder) or {}).get("status") == "failed"}
        names = sorted(str(f.relative_to(sweep) if f.is_relative_to(sweep) else f) for f in failed | self.unfinished)
        problems = []
        if names:
            problems.append(f"{len(names)} failed job(s): {', '.join(names)} (errors above and in results.md)")
        if sweep / "results.md" not in new:
            problems.append(f"the report was not written (retry: ssrl-report {sweep})")
        if problems:
            print(f"ssrl-train: error: the sweep in {sweep}: {'; '.join(problems)}", file=sys.stderr)
            sys.exit(1)


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
