"""Declared comparisons: what an experiment tests, the smallest effect that counts, and the verdict.

An experiment file declares, before it runs, each comparison that decides a claim (``comparisons`` in
the config, kept in every run's summary):

    comparisons:
      - name: simsiam_rescues
        tests: "claim 3: the predictor rescues SDMI at lambda = 0 (SimSiam's form)"
        arm: {arm: simsiam}          # the cell's overrides, seed aside
        control: {arm: none}         # another cell, "baseline" (the pinned untrained encoder), or "zero"
                                     # (the arm's own value against the margin, e.g. a rise of the MI)
        metric: probe_acc            # probe_acc or knn_acc (test split), or any per-run value of Run.value
        margin: 0.05                 # the smallest effect (arm - control) that counts
        arm_not_collapsed: true      # support also needs most of the arm's seeds not collapsed

The effect is arm - control with its interval: for test accuracies over seeds and test images
(ssrl.analysis.accuracy), for other values over seeds (Welch). Two one-sided t-tests against the
margin give p_support (of "effect <= margin") and p_contradict (of "effect >= margin"); a comparison's p
is 2 min(p_support, p_contradict), and Holm's step-down correction runs over the comparisons of one
experiment (adjusted p_(j) = max_{i <= j} min(1, (m - i + 1) p_(i)), p ascending). At alpha = 0.05:

- **supported**: adjusted p <= alpha and the effect lies above the margin (and, with
  arm_not_collapsed, most of the arm's seeds are not collapsed);
- **contradicted**: adjusted p <= alpha and the effect lies below the margin: the data rule out an
  effect as large as the margin;
- **inconclusive**: otherwise. A missing effect is never read as a contradiction unless the interval
  excludes the margin.
With one comparison this is the 95% interval clearing the margin (supported) or lying under it
(contradicted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ssrl.analysis.accuracy import accuracy_interval, difference_interval, one_sided_p
from ssrl.analysis.cells import Cell
from ssrl.analysis.intervals import LEVEL, Interval, component_interval, finite

ALPHA = 1 - LEVEL
OUTCOMES = ("supported", "contradicted", "inconclusive")
ACCURACIES = ("probe_acc", "knn_acc")
BASELINE = "baseline"
ZERO = "zero"
FIELDS = {"name", "tests", "arm", "control", "metric", "margin", "arm_not_collapsed"}


@dataclass(frozen=True)
class Declared:
    """One declared comparison (see the module docstring)."""

    name: str
    tests: str
    arm: dict[str, str]
    control: dict[str, str] | str
    metric: str
    margin: float
    arm_not_collapsed: bool

    @classmethod
    def parse(cls, spec: dict[str, Any]) -> Declared:
        """From a config entry; ValueError naming the field for a malformed one."""
        unknown = set(spec) - FIELDS
        if unknown:
            raise ValueError(f"comparisons: unknown field(s) {sorted(unknown)}; allowed: {sorted(FIELDS)}")
        missing = {"name", "arm", "control", "margin"} - set(spec)
        if missing:
            raise ValueError(f"comparisons: {spec.get('name', '?')} lacks {sorted(missing)}")
        control = spec["control"]
        if not isinstance(control, dict) and control not in (BASELINE, ZERO):
            raise ValueError(
                f"comparisons.{spec['name']}.control: a cell's overrides, '{BASELINE}' or '{ZERO}', got {control!r}"
            )
        metric = spec.get("metric", "probe_acc")
        if control == BASELINE and metric not in ACCURACIES:
            raise ValueError(f"comparisons.{spec['name']}: the baseline has {ACCURACIES} only, not {metric}")
        return cls(
            name=str(spec["name"]),
            tests=str(spec.get("tests", "")),
            arm=_selector(spec["arm"]),
            control=control if isinstance(control, str) else _selector(control),
            metric=metric,
            margin=float(spec["margin"]),
            arm_not_collapsed=bool(spec.get("arm_not_collapsed", False)),
        )


def _selector(overrides: dict[str, Any]) -> dict[str, str]:
    return {str(k).lstrip("+~"): str(v) for k, v in overrides.items()}


@dataclass(frozen=True)
class Result:
    declared: Declared
    effect: Interval | None
    p: float
    p_adjusted: float
    outcome: str
    note: str


def find_cell(cells: list[Cell], selector: dict[str, str]) -> Cell | None:
    """The one cell whose overrides (seed aside) include every item of ``selector``; None if none or
    several match."""
    found = [c for c in cells if all(c.key.get(k) == v for k, v in selector.items())]
    return found[0] if len(found) == 1 else None


def effect_of(declared: Declared, arm: Cell, control: Cell | None) -> tuple[Interval | None, str]:
    """(arm - control with its interval, a note); control None: against the baseline (accuracies) or
    zero; None when it cannot be computed."""
    if declared.metric in ACCURACIES:
        kind = declared.metric.removesuffix("_acc")
        first = arm.group(kind)
        if first is None:
            return None, "no per-image results"
        if declared.control == ZERO:
            return accuracy_interval(first), ""
        second = arm.baseline_group(kind) if control is None else control.group(kind)
        if second is None:
            return None, "no per-image results"
        return difference_interval(first, second), ""
    groups = [[float(v) for v in arm.values(declared.metric) if finite(v)]]
    if control is not None:
        groups.append([float(v) for v in control.values(declared.metric) if finite(v)])
    if any(len(v) < 2 for v in groups):
        return None, "fewer than 2 finite values"
    means = [sum(v) / len(v) for v in groups]
    parts = [
        (sum((x - m) ** 2 for x in v) / (len(v) - 1) / len(v), float(len(v) - 1))
        for v, m in zip(groups, means, strict=True)
    ]
    estimate = means[0] - (means[1] if control is not None else 0.0)
    return component_interval(estimate, parts, len(groups[0])), ""


def _p(effect: Interval | None, margin: float) -> tuple[float, bool]:
    """(2 min of the one-sided p-values, whether the effect lies above the margin)."""
    if effect is None:
        return 1.0, False
    support, contradict = one_sided_p(effect.mean, effect.se, effect.df, margin)
    return min(1.0, 2 * min(support, contradict)), support < contradict


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the input's order."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted, running = [1.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def decide(specs: list[dict[str, Any]], cells: list[Cell]) -> list[Result]:
    """Every declared comparison's effect, Holm-adjusted p and outcome."""
    declared = [Declared.parse(s) for s in specs]
    effects, notes, collapsed = [], [], []
    for d in declared:
        arm = find_cell(cells, d.arm)
        control = None if isinstance(d.control, str) else find_cell(cells, d.control)
        if arm is None or (not isinstance(d.control, str) and control is None):
            effects.append(None)
            notes.append("cell not found (or not unique)")
            collapsed.append(False)
            continue
        effect, note = effect_of(d, arm, control)
        effects.append(effect)
        notes.append(note)
        collapsed.append(arm.collapsed_count * 2 > arm.n)
    tests = [_p(e, d.margin) for e, d in zip(effects, declared, strict=True)]
    adjusted = holm([p for p, _ in tests])
    results = []
    for d, effect, (p, above), p_adj, note, arm_collapsed in zip(
        declared, effects, tests, adjusted, notes, collapsed, strict=True
    ):
        outcome = "inconclusive"
        if effect is not None and p_adj <= ALPHA:
            outcome = "supported" if above else "contradicted"
            if above and d.arm_not_collapsed and arm_collapsed:
                outcome, note = "inconclusive", "the effect clears the margin but most of the arm's seeds collapsed"
        results.append(Result(d, effect, p, p_adj, outcome, note))
    return results
