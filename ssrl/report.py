"""ssrl-report: a sweep folder -> results.md, results.csv, cells.csv, mi_curves.png, collapse.png
(and phase_<key>.png for a numeric swept key).

    ssrl-report outputs/multirun/collapse

Runs that differ only in ``seed`` form a cell. Per cell: the number of seeds n, the mean and 95%
t-interval over seeds of the test probe and kNN accuracy, of the paired probe gain over the
untrained encoder, of the final MI in nats, its rise and its monotonic growth (Kendall's tau of MI
against epoch, the largest drop), of effective rank and embedding std (on
val), and a verdict as a count ("collapses 3/3", "learns 2/3"; rules in ssrl.analysis.cells).
Then one row per run: failed runs with their error, runs without a final summary as running (or
died), never dropped. Runs after every multirun too.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any

from ssrl.analysis.cells import Cell, group
from ssrl.analysis.intervals import LEVEL, Interval
from ssrl.analysis.plots import numeric_keys, plot_curves, plot_phase
from ssrl.analysis.runs import MI_RISE, Run, collect, varying
from ssrl.mi.estimators import MI_IN_NATS

#: (column, metric, digits) of the cells table: mean [95% interval] over seeds.
CELL_METRICS = (
    ("probe (test)", "probe_acc", 3),
    ("untrained probe (test)", "probe_acc_init", 3),
    ("probe (val)", "val.probe_acc", 3),
    ("kNN (test)", "knn_acc", 3),
    ("MI end (nats)", "mi", 2),
    ("MI rise (nats)", "mi_rise", 2),
    ("MI Kendall tau", "mi_tau", 2),
    ("MI largest drop (nats)", "mi_drop", 2),
    ("effective rank", "effective_rank", 1),
    ("embedding std", "embedding_std", 4),
)


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def _cell_keys(runs: list[Run]) -> list[str]:
    return [k for k in varying(runs) if k != "seed"]


def _shown(interval: Interval | None, n: int, digits: int) -> str:
    """mean [interval] of a cell of n completed runs; its own n when fewer of them gave a finite value."""
    if n == 0:
        return ""
    if interval is None:
        return "n/a (n=0)"
    return interval.fmt(digits) + (f" (n={interval.n})" if interval.n != n else "")


def cell_rows(cells: list[Cell], runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    keys = _cell_keys(runs)
    header = [*keys, "n", "expected", "verdict", "probe gain", *(c for c, _, _ in CELL_METRICS), "collapsed", "wall_s"]
    table = []
    for cell in cells:
        stats = [cell.interval(metric) for _, metric, _ in CELL_METRICS]
        wall = cell.interval("wall_s")
        table.append(
            [
                *(cell.key.get(k, "") for k in keys),
                f"{cell.n}/{len(cell.runs)}" if cell.n != len(cell.runs) else str(cell.n),
                cell.expected,
                cell.verdict,
                _shown(cell.probe_gain, cell.n, 3),
                *(_shown(s, cell.n, d) for s, (_, _, d) in zip(stats, CELL_METRICS, strict=True)),
                f"{cell.collapsed_count}/{cell.n}" if cell.n else "",
                f"{wall.mean:.0f}" if wall else "",
            ]
        )
    return header, table


def run_rows(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    keys = varying(runs)
    header = [
        *keys,
        "status",
        "outcome",
        "expected",
        "probe_acc",
        "probe_acc_init",
        "probe_acc_val",
        "knn_acc",
        "effective_rank",
        "embedding_std",
        "mi nats (start -> end)",
        *(f"mi:{n}" for n in MI_IN_NATS),
        "mi Kendall tau",
        "mi largest drop",
        "collapsed",
        "wall_s",
        "error",
    ]
    table = []
    for r in runs:
        s = r.summary
        change = r.mi_change
        mi = s.get("mi") or {}
        table.append(
            [
                *(r.overrides.get(k, "") for k in keys),
                r.status,
                r.outcome,
                _fmt(r.config.get("expected")),
                *(_fmt(s.get(k)) for k in ("probe_acc", "probe_acc_init")),
                _fmt((s.get("val") or {}).get("probe_acc")),
                _fmt(s.get("knn_acc")),
                _fmt(s.get("effective_rank"), 1),
                _fmt(s.get("embedding_std"), 4),
                f"{r.mi_name} {change[0]:.2f} -> {change[1]:.2f}" if change else "",
                *(_fmt(mi.get(n), 2) for n in MI_IN_NATS),
                _fmt(r.value("mi_tau"), 2),
                _fmt(r.value("mi_drop"), 2),
                _fmt(s.get("collapsed")),
                _fmt(s.get("wall_s"), 0),
                (s.get("error") or "").replace("|", "/").replace("\n", " ")[:200],
            ]
        )
    return header, table


def _markdown(header: list[str], table: list[list[str]]) -> list[str]:
    rows = [header, *table]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    return [lines[0], "|" + " --- |" * len(header), *lines[1:]]


def write_tables(runs: list[Run], cells: list[Cell], sweep: Path) -> None:
    run_header, run_table = run_rows(runs)
    cell_header, cell_table = cell_rows(cells, runs)
    for name, header, table in (("results.csv", run_header, run_table), ("cells.csv", cell_header, cell_table)):
        with open(sweep / name, "w", newline="") as f:
            csv.writer(f).writerows([header, *table])
    reused = sum(bool(r.summary.get("same_run_as")) for r in runs)
    total = sum(r.summary.get("wall_s", 0.0) for r in runs if not r.summary.get("same_run_as"))
    seeds = sorted({r.overrides.get("seed", "0") for r in runs})
    lines = [
        f"# Results: {sweep}",
        "",
        f"{len(runs)} runs in {len(cells)} cells (seeds: {', '.join(seeds)}), "
        f"{sum(r.completed for r in runs)} completed, {sum(r.status == 'failed' for r in runs)} failed; "
        f"{reused} reuse a sibling's run (same_run_as); training wall time {total / 60:.1f} min in all, "
        "reused runs not counted.",
        "",
        "## Cells (runs that differ only in seed)",
        "",
        f"Mean [{LEVEL:.0%} t-interval] over the n completed seeds; probe and kNN on the test split, the rest "
        "on the val split. Probe gain: trained minus untrained probe of the same seed (paired). Verdict: "
        "collapses when most seeds collapse; learns when the intervals of the probe gain and of the MI rise "
        "(nats) both lie above 0; neither otherwise. The count is how many seeds did so on their own. "
        "MI Kendall tau: of the val MI in nats against the order of its measurements, once per epoch (1 = it "
        "rose at every epoch); largest drop: the largest fall of that MI below an earlier epoch's (nats). "
        "(n=k) after a value: only k runs gave a finite value.",
        "",
        *_markdown(cell_header, cell_table),
        "",
        "## Runs",
        "",
        f"Outcome of one run: learns = not collapsed, MI in nats rose by > {MI_RISE}, test probe above the "
        "untrained encoder's; collapses = collapsed; neither otherwise.",
        "",
        *_markdown(run_header, run_table),
    ]
    (sweep / "results.md").write_text("\n".join(lines) + "\n")


def write_report(sweep: Path) -> list[Run]:
    runs = collect(sweep)
    cells = group(runs)
    write_tables(runs, cells, sweep)
    plot_curves(cells, sweep / "mi_curves.png", "mi", "MI on val (nats)")
    plot_curves(cells, sweep / "collapse.png", "effective_rank", "effective rank (val)", log=True)
    for key in numeric_keys(cells):
        plot_phase(cells, key, sweep / f"phase_{key}.png")
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ssrl-report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweep", type=Path, help="a multirun folder (or any folder holding run folders)")
    args = parser.parse_args(argv)
    if not args.sweep.is_dir():
        print(f"ssrl-report: error: {args.sweep} is not a folder", file=sys.stderr)
        sys.exit(2)
    runs = write_report(args.sweep)
    if not runs:
        print(f"ssrl-report: error: no run folders under {args.sweep}", file=sys.stderr)
        sys.exit(2)
    print(f"{len(runs)} runs -> {args.sweep}/results.md, results.csv, cells.csv, mi_curves.png, collapse.png")


if __name__ == "__main__":
    main()
