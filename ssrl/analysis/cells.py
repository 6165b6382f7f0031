"""Cells: the runs of a sweep that differ only in ``seed``, with 95% intervals and a verdict as a count.

A cell's verdict (docs/method.md, "Verdicts over seeds"):
- "collapses k/n" when more than half of its n completed runs collapsed (k of them did);
- "learns k/n" when, over seeds, the 95% t-interval of the paired probe gain (test probe of the
  trained encoder minus that of the same seed's untrained encoder) lies above 0 and so does the
  interval of the rise of the held-out MI in nats; k runs learn on their own (ssrl.analysis.runs);
- "neither k/n" otherwise (k runs neither learn nor collapse on their own).
The other seeds' own outcomes follow in brackets: "neither 1/3 (learns 2/3)".
With one seed there is no interval: the run's own outcome stands, marked n = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssrl.analysis.intervals import Interval, paired_interval, t_interval
from ssrl.analysis.runs import Run

SEED = "seed"
OUTCOMES = ("learns", "neither", "collapses")


@dataclass
class Cell:
    """Runs with the same overrides but ``seed``; ``key`` holds those overrides."""

    key: dict[str, str]
    runs: list[Run]

    @property
    def completed(self) -> list[Run]:
        return [r for r in self.runs if r.completed]

    @property
    def n(self) -> int:
        return len(self.completed)

    def values(self, metric: str) -> list[Any]:
        """Per completed run: ``Run.value(metric)``."""
        return [r.value(metric) for r in self.completed]

    def interval(self, metric: str) -> Interval | None:
        return t_interval(self.values(metric))

    @property
    def probe_gain(self) -> Interval | None:
        """The paired 95% interval of probe_acc - probe_acc_init (test split) over seeds."""
        if not self.completed:
            return None
        return paired_interval(self.values("probe_acc"), self.values("probe_acc_init"))

    @property
    def collapsed_count(self) -> int:
        return sum(bool(r.summary.get("collapsed")) for r in self.completed)

    @property
    def expected(self) -> str:
        found = {r.config.get("expected") for r in self.runs if r.config.get("expected")}
        return ", ".join(sorted(found))

    @property
    def verdict(self) -> str:
        n = self.n
        if n == 0:
            return ""
        outcomes = [r.outcome for r in self.completed]
        if n == 1:
            return f"{outcomes[0]} 1/1 (n = 1)"
        if self.collapsed_count * 2 > n:
            word = "collapses"
        else:
            gain, rise = self.probe_gain, self.interval("mi_rise")
            word = "learns" if gain and gain.low > 0 and rise and rise.low > 0 else "neither"
        others = [f"{o} {outcomes.count(o)}/{n}" for o in OUTCOMES if o != word and o in outcomes]
        return f"{word} {outcomes.count(word)}/{n}" + (f" ({', '.join(others)})" if others else "")


def group(runs: list[Run]) -> list[Cell]:
    """The cells of ``runs``, in the order of their first run."""
    cells: dict[tuple, Cell] = {}
    for r in runs:
        key = {k: v for k, v in r.overrides.items() if k != SEED}
        cells.setdefault(tuple(sorted(key.items())), Cell(key, [])).runs.append(r)
    return list(cells.values())
