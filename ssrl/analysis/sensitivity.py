"""Which verdicts hang on the collapse line: the cells whose verdict changes when the collapse rule's
constants move across a stated range.

The rule (ssrl.evaluation.collapse.is_collapsed) marks a run collapsed when its final val embeddings'
std is below std_fraction / sqrt(D) or their effective rank is below min_rank. Each constant is moved
alone, to each factor of FACTORS times the value the runs used, the other held; each run's flag is
recomputed from its stored std and rank, and each cell's verdict (ssrl.analysis.cells) with it.
"""

from __future__ import annotations

from dataclasses import dataclass

from ssrl.analysis.cells import Cell

#: The stated range: each constant at half, 0.71x, 1.41x and twice its value.
FACTORS = (0.5, 2**-0.5, 2**0.5, 2.0)


@dataclass(frozen=True)
class Shift:
    """One moved constant: its name and value, and the cells whose verdict changed (label: old -> new)."""

    constant: str
    value: float
    changed: list[tuple[Cell, str, str]]


def rule_constants(cells: list[Cell]) -> tuple[float, float] | None:
    """(std_fraction, min_rank) the runs were judged with (summary.json's protocol, or the config's
    eval group); None when the runs disagree or do not say."""
    found = set()
    for cell in cells:
        for run in cell.completed:
            rule = ((run.summary.get("protocol") or {}).get("collapse_rule")) or {}
            ev = run.config.get("eval") or {}
            found.add(
                (
                    rule.get("std_fraction", ev.get("collapse_std_fraction")),
                    rule.get("min_rank", ev.get("collapse_min_rank")),
                )
            )
    if len(found) != 1 or None in next(iter(found)):
        return None
    fraction, rank = next(iter(found))
    return float(fraction), float(rank)


def shifts(cells: list[Cell]) -> list[Shift]:
    """Every moved constant (FACTORS times the runs' own) and the cells whose verdict changes with it;
    empty when the runs do not share one rule."""
    constants = rule_constants(cells)
    if constants is None:
        return []
    fraction, rank = constants
    out = []
    for name, values in (
        ("std_fraction", [(fraction * f, rank) for f in FACTORS]),
        ("min_rank", [(fraction, rank * f) for f in FACTORS]),
    ):
        for f, r in values:
            changed = []
            for cell in cells:
                if cell.n == 0:
                    continue
                moved = cell.verdict_given([run.collapsed_under(f, r) for run in cell.completed])
                if moved.split()[0] != cell.verdict.split()[0]:
                    changed.append((cell, cell.verdict, moved))
            out.append(Shift(name, f if name == "std_fraction" else r, changed))
    return out
