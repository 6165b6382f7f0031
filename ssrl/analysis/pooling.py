"""Pooling the runs of several sweep folders into one report: cells are matched by their overrides
(seed aside), and runs are pooled only when they trained the same experiment.

Two runs of one cell may be pooled when their configs agree on everything that determines the result
(``ssrl.run.same_run.training_identity``: logging, resume and checkpoint fields and ``expected`` aside)
but the seed, and on nothing else that the user did not name in ``ignore``; a seed may appear once per cell.
Fields that one config lacks (added to ssrl after the run) are not compared, as on resume.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ssrl.analysis.runs import Run
from ssrl.run.resume import flatten
from ssrl.run.same_run import training_identity

SEED = "seed"


class PoolingRefused(ValueError):
    """Runs of one cell that cannot be pooled; the message names the cell, the sources and the fields."""


def _identity(run: Run, ignore: tuple[str, ...]) -> dict[str, Any]:
    flat = flatten(training_identity(run.config)) if run.config else {}
    return {
        k: v
        for k, v in flat.items()
        if k != SEED and k != "comparisons" and not any(k == f or k.startswith(f"{f}.") for f in ignore)
    }


def check_poolable(runs: list[Run], ignore: tuple[str, ...] = ()) -> None:
    """Raise PoolingRefused when runs of one cell (same overrides but seed) from different sources
    differ in what determines the result, or repeat a seed."""
    cells: dict[tuple, list[Run]] = defaultdict(list)
    for run in runs:
        if run.completed:
            cells[tuple(sorted((k, v) for k, v in run.overrides.items() if k != SEED))].append(run)
    for key, members in cells.items():
        label = ",".join(f"{k}={v}" for k, v in key) or "run"
        seeds: dict[str, str] = {}
        for run in members:
            seed = run.overrides.get(SEED, str(run.config.get(SEED, 0)))
            if seed in seeds and seeds[seed] != run.source:
                raise PoolingRefused(f"cell {label}: seed {seed} is in both {seeds[seed]} and {run.source}")
            seeds[seed] = run.source
        first = _identity(members[0], ignore)
        for run in members[1:]:
            other = _identity(run, ignore)
            fields = sorted(k for k in first.keys() & other.keys() if first[k] != other[k])
            if fields:
                shown = ", ".join(f"{k}: {first.get(k)!r} vs {other.get(k)!r}" for k in fields[:6])
                raise PoolingRefused(
                    f"cell {label}: runs of {members[0].source} and {run.source} trained different experiments "
                    f"({shown}); pool only the same experiment, or name a field that does not matter to you with "
                    "--ignore FIELD"
                )
