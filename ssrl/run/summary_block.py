"""The block a run ends with: what it found (status, probes, kNN, MI at the start and the end, collapse,
wall time) and where its files are. Logged through the ``ssrl`` logger, so train.log holds it too."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ssrl.run.loggers import logger_keys, save_dir
from ssrl.run.summary import SUMMARY


def _number(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, (int, float)) and not isinstance(value, bool) else "n/a"


def _mi(summary: dict[str, Any], key: str = "mi") -> str:
    start, end = summary.get(f"{key}_init") or {}, summary.get(key) or {}
    names = list(end) or list(start)
    if not names:
        return "n/a"
    return ", ".join(f"{k} {_number(start.get(k), 2)} -> {_number(end.get(k), 2)}" for k in names)


def _collapsed(summary: dict[str, Any]) -> str:
    if "collapsed" not in summary:
        return "n/a"
    std, rank = _number(summary.get("embedding_std"), 4), _number(summary.get("effective_rank"), 1)
    how = f"embedding std {std}, effective rank {rank}"
    return f"{'yes' if summary['collapsed'] else 'no'} ({how})"


def _logger_rows(loggers: Mapping[str, Any], run_dir: Path, tensorboard_dir: Path | None) -> list[tuple[str, str]]:
    """Where each logger of the shipped options wrote (another logger: its class)."""
    rows = []
    for key in logger_keys(loggers):
        spec = loggers.get(key) if isinstance(loggers.get(key), Mapping) else {}
        folder = save_dir(spec, run_dir)
        if key == "tensorboard":
            logdir = Path(tensorboard_dir).resolve() if tensorboard_dir else run_dir / "tensorboard"
            rows.append(("TensorBoard", f"tensorboard --logdir {logdir}"))
        elif key == "csv":
            csv = folder / spec.get("name", "") / spec.get("version", "csv") / "metrics.csv"
            rows.append(("metrics (CSV)", str(csv)))
        elif key == "wandb":
            wandb = folder / "wandb"
            sync = f" (offline: wandb sync {wandb}/offline-run-*)" if spec.get("mode") == "offline" else ""
            rows.append(("W&B", f"{wandb}{sync}"))
        elif key == "mlflow" and not spec.get("tracking_uri"):
            rows.append(("MLflow", f"MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri {folder}"))
        else:
            rows.append((key, str(spec.get("tracking_uri") or spec.get("_target_", "?"))))
    return rows


def summary_block(
    summary: dict[str, Any],
    run_dir: Path,
    loggers: Mapping[str, Any] | None = None,
    tensorboard_dir: Path | None = None,
) -> str:
    """Lines of the end-of-run block for a summary (completed or stopped) of the run in ``run_dir``;
    ``loggers`` is the run's resolved logger config (TensorBoard when None), ``tensorboard_dir`` the
    folder to point TensorBoard at (a sweep's, or the run's own)."""
    run_dir = Path(run_dir).resolve()
    status = summary.get("status", "?")
    if summary.get("stopped"):
        status = f"stopped: {summary['stopped']}"
    rows = [("status", status)]
    if status == "completed":
        probe, probe_init = _number(summary.get("probe_acc")), _number(summary.get("probe_acc_init"))
        knn, knn_init = _number(summary.get("knn_acc")), _number(summary.get("knn_acc_init"))
        rows += [
            ("probe accuracy", f"{probe} (untrained encoder {probe_init})"),
            ("kNN accuracy", f"{knn} (untrained encoder {knn_init})"),
            ("MI held out, nats", f"start -> end: {_mi(summary)}"),
            ("MI probe, nats", f"start -> end: {_mi(summary, 'mi_probe')}"),
            ("collapsed", _collapsed(summary)),
        ]
    steps = summary.get("steps", summary.get("history", [{}])[-1].get("step") if summary.get("history") else None)
    if steps is not None:
        skipped = summary.get("skipped_steps")
        rows.append(("batches trained", f"{steps}" + (f" ({skipped} updates skipped)" if skipped else "")))
    rows.append(("wall time", f"{_number(summary.get('wall_s'), 1)} s"))
    rows.append(("summary", str(run_dir / SUMMARY)))
    rows += _logger_rows(loggers if loggers is not None else {"name": "tensorboard"}, run_dir, tensorboard_dir)
    width = max(len(name) for name, _ in rows)
    rule = "=" * 72
    lines = [f"  {name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join([rule, f"ssrl run {run_dir.name}", *lines, rule])
