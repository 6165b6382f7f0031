"""Cells: the runs of a sweep that differ only in ``seed``, with 95% intervals and a verdict as a count.

A cell's verdict is descriptive (docs/method.md, "Verdicts over seeds"); claims are decided by declared
comparisons (ssrl.analysis.comparisons), never by these words:
- "collapses k/n" when more than half of its n completed runs collapsed (k of them did);
- "learns k/n" when the 95% interval of the probe gain over the pinned untrained baseline (seeds and
  test images, ssrl.analysis.accuracy) lies above 0 and so does the interval of the rise of the held-out
  MI in nats; k runs learn on their own (ssrl.analysis.runs);
- "neither k/n" otherwise (k runs neither learn nor collapse on their own).
The other seeds' own outcomes follow in brackets: "neither 1/3 (learns 2/3)".
With one seed there is no interval: the run's own outcome stands, marked n = 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssrl.analysis.accuracy import Group, accuracy_interval, correctness, difference_interval
from ssrl.analysis.intervals import Interval, finite, t_interval
from ssrl.analysis.runs import Run, support

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
        """The t-interval over seeds of a per-run value, within the value's range."""
        return t_interval(self.values(metric), support=support(metric))

    def group(self, kind: str, split: str = "test") -> Group | None:
        """The per-image correctness of the completed runs (``kind``: "probe" or "knn"), or None when a
        run has none (a summary from before per-image results)."""
        bits = [((r.summary.get("per_image") or {}).get(split) or {}).get(f"{kind}_correct") for r in self.completed]
        return Group(correctness(bits)) if bits and all(bits) else None

    def baseline_group(self, kind: str, split: str = "test") -> Group | None:
        """The pinned untrained baseline's per-image correctness (its K random initialisations), shared
        by the cell's runs; None when they have none or do not share one."""
        blocks = [r.summary.get("baseline") for r in self.completed]
        if not blocks or not all(blocks) or len({b.get("key") for b in blocks}) != 1:
            return None
        bits = (blocks[0].get(split) or {}).get(f"{kind}_correct")
        return Group(correctness(bits)) if bits else None

    @property
    def has_tables(self) -> bool:
        """Whether the runs' and the pinned baseline's per-image tables are there (else the test accuracies
        and gains fall back to t-intervals over seeds)."""
        return self.group("probe") is not None and self.baseline_group("probe") is not None

    def gain(self, kind: str = "probe") -> Interval | None:
        """The test accuracy gain over the pinned untrained baseline with its 95% interval over seeds,
        baseline inits and test images. Runs without per-image results (older summaries) fall back to the
        t-interval of the per-seed gains over probe_acc_init / knn_acc_init."""
        if not self.completed:
            return None
        trained, baseline = self.group(kind), self.baseline_group(kind)
        if trained is not None and baseline is not None:
            if trained.n < 2:
                mean = trained.accuracy - baseline.accuracy
                return Interval(mean, mean, mean, 1)
            return difference_interval(trained, baseline)
        pairs = zip(self.values(f"{kind}_acc"), self.values(f"{kind}_acc_init"), strict=True)
        return t_interval([a - b for a, b in pairs if finite(a) and finite(b)], support=(-1.0, 1.0))

    def accuracy(self, kind: str = "probe") -> Interval | None:
        """The mean test accuracy over seeds with its interval over seeds and test images (a t-interval
        over seeds for runs without per-image results)."""
        trained = self.group(kind)
        return accuracy_interval(trained) if trained is not None else self.interval(f"{kind}_acc")

    def baseline_accuracy(self, kind: str = "probe") -> Interval | None:
        """The pinned untrained baseline's mean test accuracy with its interval over its inits and the
        test images (the per-seed untrained accuracies of older summaries otherwise)."""
        baseline = self.baseline_group(kind)
        return accuracy_interval(baseline) if baseline is not None else self.interval(f"{kind}_acc_init")

    @property
    def probe_gain(self) -> Interval | None:
        return self.gain("probe")

    @property
    def collapsed_count(self) -> int:
        return sum(r.collapsed for r in self.completed)

    @property
    def expected(self) -> str:
        found = {r.config.get("expected") for r in self.runs if r.config.get("expected")}
        return ", ".join(sorted(found))

    @property
    def mi_rise_metric(self) -> str:
        """The MI rise the verdict reads: the MI probe's (every arm measured alike) when the runs have it,
        else the rise under the run's own critic."""
        return "mi_probe_rise" if all(r.value("mi_probe_rise") is not None for r in self.completed) else "mi_rise"

    @property
    def verdict(self) -> str:
        return self.verdict_given([r.collapsed for r in self.completed])

    def verdict_given(self, collapsed: list[bool]) -> str:
        """The verdict (module docstring) when the completed runs' collapse flags are ``collapsed``."""
        n = self.n
        if n == 0:
            return ""
        outcomes = [r.outcome_given(c) for r, c in zip(self.completed, collapsed, strict=True)]
        if n == 1:
            return f"{outcomes[0]} 1/1 (one run: no interval)"
        if sum(collapsed) * 2 > n:
            word = "collapses"
        else:
            gain, rise = self.probe_gain, self.interval(self.mi_rise_metric)
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
