"""ssrl-report: sweep folders -> results.md, results.csv, cells.csv, comparisons.csv, mi_curves.png,
collapse.png (and phase_<key>.png for a numeric swept key).

    ssrl-report outputs/multirun/collapse
    ssrl-report outputs/multirun/collapse outputs/multirun/collapse_seeds_3_5 --out reports/collapse_6_seeds

Runs that differ only in ``seed`` form a cell. Per cell: the number of seeds n, a descriptive verdict as
a count ("collapses 3/3", "learns 2/3"; ssrl.analysis.cells), the test accuracies and their gain over the
pinned untrained baseline with 95% intervals over seeds and test images (ssrl.analysis.accuracy), the
MI probe's and the run's own critic's MI in nats, how monotonically the latter grew, effective rank and
embedding std (on val), each with its 95% interval within the value's range. Claims are decided only by
the comparisons the experiment declared (ssrl.analysis.comparisons): supported, contradicted or
inconclusive, Holm-corrected. The report also lists the cells whose verdict moves when the collapse
rule's constants move (ssrl.analysis.sensitivity). Then one row per run: failed runs with their error,
runs without a final summary as running (or died), never dropped. Runs after every multirun too.

Several folders pool into one report: cells are matched by their overrides, seeds pooled, a column
says where each run came from, and runs of one cell that trained different experiments are refused
(ssrl.analysis.pooling).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from ssrl.analysis import sensitivity
from ssrl.analysis.cells import Cell, group
from ssrl.analysis.comparisons import ALPHA, Result, decide
from ssrl.analysis.intervals import LEVEL, Interval
from ssrl.analysis.plots import numeric_keys, plot_curves, plot_phase
from ssrl.analysis.pooling import PoolingRefused, check_poolable
from ssrl.analysis.runs import MI_RISE, PROBE_ESTIMATE, Run, collect, varying
from ssrl.mi.estimators import MI_IN_NATS

#: (column, metric, digits) of the cells table's per-run values: mean [95% t-interval] over seeds.
CELL_METRICS = (
    ("probe (val)", "val.probe_acc", 3),
    (f"MI probe end ({PROBE_ESTIMATE}, nats)", "mi_probe", 2),
    ("MI probe rise (nats)", "mi_probe_rise", 2),
    ("MI probe Kendall tau", "mi_probe_tau", 2),
    ("MI end, own critic (nats)", "mi", 2),
    ("MI rise, own critic (nats)", "mi_rise", 2),
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


def _sources(cell: Cell) -> str:
    counts = Counter(r.source for r in cell.runs)
    return ", ".join(f"{s} x{k}" for s, k in counts.items())


#: After a test accuracy or gain of a cell whose runs have no per-image tables (summaries from before them).
FALLBACK_MARK = " (t)"


def cell_rows(cells: list[Cell], runs: list[Run], pooled: bool) -> tuple[list[str], list[list[str]]]:
    keys = _cell_keys(runs)
    header = [
        *keys,
        "n",
        "expected",
        "verdict",
        "probe gain (test)",
        "kNN gain (test)",
        "probe (test)",
        "untrained baseline probe (test)",
        "kNN (test)",
        *(c for c, _, _ in CELL_METRICS),
        "collapsed",
        "wall_s",
        *(["sources"] if pooled else []),
    ]
    table = []
    for cell in cells:
        n = cell.n
        mark = "" if cell.has_tables or not n else FALLBACK_MARK
        stats = [cell.interval(metric) for _, metric, _ in CELL_METRICS]
        wall = cell.interval("wall_s")
        table.append(
            [
                *(cell.key.get(k, "") for k in keys),
                f"{n}/{len(cell.runs)}" if n != len(cell.runs) else str(n),
                cell.expected,
                cell.verdict,
                _shown(cell.gain("probe"), n, 3) + mark,
                _shown(cell.gain("knn"), n, 3) + mark,
                _shown(cell.accuracy("probe"), n, 3) + mark,
                _shown(cell.baseline_accuracy("probe"), n, 3) + mark,
                _shown(cell.accuracy("knn"), n, 3) + mark,
                *(_shown(s, n, d) for s, (_, _, d) in zip(stats, CELL_METRICS, strict=True)),
                f"{cell.collapsed_count}/{n}" if n else "",
                f"{wall.mean:.0f}" if wall else "",
                *([_sources(cell)] if pooled else []),
            ]
        )
    return header, table


def run_rows(runs: list[Run], pooled: bool) -> tuple[list[str], list[list[str]]]:
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
        f"mi probe ({PROBE_ESTIMATE}, start -> end)",
        "mi nats, own critic (start -> end)",
        *(f"mi:{n}" for n in MI_IN_NATS),
        "mi Kendall tau",
        "mi largest drop",
        "collapsed",
        "wall_s",
        *(["source"] if pooled else []),
        "error",
    ]
    table = []
    for r in runs:
        s = r.summary
        change = r.mi_change
        mi = s.get("mi") or {}
        probe_end, probe_rise = r.value("mi_probe"), r.value("mi_probe_rise")
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
                f"{probe_end - probe_rise:.2f} -> {probe_end:.2f}" if probe_rise is not None else "",
                f"{r.mi_name} {change[0]:.2f} -> {change[1]:.2f}" if change else "",
                *(_fmt(mi.get(n), 2) for n in MI_IN_NATS),
                _fmt(r.value("mi_tau"), 2),
                _fmt(r.value("mi_drop"), 2),
                _fmt(s.get("collapsed")),
                _fmt(s.get("wall_s"), 0),
                *([r.source] if pooled else []),
                (s.get("error") or "").replace("|", "/").replace("\n", " ")[:200],
            ]
        )
    return header, table


def comparison_rows(results: list[Result]) -> tuple[list[str], list[list[str]]]:
    header = [
        "comparison",
        "tests",
        "arm",
        "control",
        "metric",
        "margin",
        "effect [95%]",
        "p",
        "Holm p",
        "outcome",
        "note",
    ]
    table = []
    for r in results:
        d = r.declared
        control = d.control if isinstance(d.control, str) else ",".join(f"{k}={v}" for k, v in d.control.items())
        table.append(
            [
                d.name,
                d.tests,
                ",".join(f"{k}={v}" for k, v in d.arm.items()),
                control,
                d.metric,
                f"{d.margin:g}",
                "" if r.effect is None else r.effect.fmt(3),
                f"{r.p:.3g}",
                f"{r.p_adjusted:.3g}",
                r.outcome,
                r.note,
            ]
        )
    return header, table


def declared_comparisons(runs: list[Run]) -> list[dict[str, Any]]:
    """The comparisons the runs' experiment declared (the same in every run that declares any)."""
    found = [r.config.get("comparisons") for r in runs if r.config.get("comparisons")]
    if not found:
        return []
    if any(f != found[0] for f in found):
        raise ValueError("the runs declare different comparisons: report the sweeps apart")
    return list(found[0])


def sensitivity_lines(cells: list[Cell]) -> list[str]:
    shifts = sensitivity.shifts(cells)
    if not shifts:
        return ["The runs do not share one collapse rule: no sensitivity table."]
    fraction, rank = sensitivity.rule_constants(cells)
    lines = [
        f"The rule the runs used: embedding std < {fraction:g} / sqrt(D) or effective rank < {rank:g}. Each "
        "constant moved alone from half to twice its value; a row lists the cells whose verdict word changes.",
        "",
        "| constant | value | cells whose verdict changes |",
        "| --- | --- | --- |",
    ]
    for shift in shifts:
        changed = "; ".join(
            f"{','.join(f'{k}={v}' for k, v in c.key.items()) or 'run'}: {old} -> {new}"
            for c, old, new in shift.changed
        )
        lines.append(
            f"| {shift.constant} | {shift.value:.3g} | {len(shift.changed)}"
            + (f": {changed}" if changed else "")
            + " |"
        )
    return lines


def _markdown(header: list[str], table: list[list[str]]) -> list[str]:
    rows = [header, *table]
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    return [lines[0], "|" + " --- |" * len(header), *lines[1:]]


def _write_csv(path: Path, header: list[str], table: list[list[str]]) -> None:
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *table])


def write_tables(runs: list[Run], cells: list[Cell], out: Path, sources: list[Path]) -> None:
    pooled = len(sources) > 1
    run_header, run_table = run_rows(runs, pooled)
    cell_header, cell_table = cell_rows(cells, runs, pooled)
    results = decide(declared_comparisons(runs), cells)
    comparison_header, comparison_table = comparison_rows(results)
    _write_csv(out / "results.csv", run_header, run_table)
    _write_csv(out / "cells.csv", cell_header, cell_table)
    if results:
        _write_csv(out / "comparisons.csv", comparison_header, comparison_table)
    reused = sum(bool(r.summary.get("same_run_as")) for r in runs)
    total = sum(r.summary.get("wall_s", 0.0) for r in runs if not r.summary.get("same_run_as"))
    seeds = sorted({r.overrides.get("seed", "0") for r in runs}, key=lambda v: (len(v), v))
    where = ", ".join(str(s) for s in sources)
    lines = [
        f"# Results: {where}",
        "",
        f"{len(runs)} runs in {len(cells)} cells (seeds: {', '.join(seeds)}), "
        f"{sum(r.completed for r in runs)} completed, {sum(r.status == 'failed' for r in runs)} failed; "
        f"{reused} reuse a sibling's run (same_run_as); training wall time {total / 60:.1f} min in all, "
        "reused runs not counted." + (f" Pooled from {len(sources)} sweep folders (column sources)." if pooled else ""),
        "",
    ]
    if results:
        lines += [
            "## Declared comparisons",
            "",
            "Declared in the experiment file before the runs. Effect: arm minus control, mean with its "
            f"{LEVEL:.0%} interval (test accuracies: over seeds and test images; docs/method.md). p: the "
            "two one-sided t-tests against the margin, doubled at the smaller; Holm p: corrected over the "
            f"comparisons of this report. At alpha = {ALPHA:.2f}: supported (above the margin), "
            "contradicted (below it), inconclusive otherwise.",
            "",
            *_markdown(comparison_header, comparison_table),
            "",
        ]
    lines += [
        "## Cells (runs that differ only in seed)",
        "",
        f"Test accuracies and gains: mean [{LEVEL:.0%} interval] over the n seeds and the test images, "
        'against the untrained baseline pinned by its random initialisations (docs/method.md, "Intervals"). '
        f"Other columns: mean [{LEVEL:.0%} t-interval] over seeds within the value's range, on the val split. "
        "Verdict (descriptive, never a claim): collapses when most seeds collapse; learns when the intervals "
        "of the probe gain and of the MI rise (the MI probe's when the runs have it) both lie above 0; neither "
        "otherwise. The count is how many seeds did so on their own. MI Kendall tau: of the val MI in nats under "
        "the run's own critic against epoch (1 = it rose at every epoch); largest drop: its largest fall below "
        "an earlier epoch's (nats). (n=k) after a value: only k runs gave a finite value. (t) after a test "
        "accuracy or gain: its runs have no per-image results (written before them), so it is the t-interval "
        "over seeds, the gain against each seed's own untrained encoder.",
        "",
        *_markdown(cell_header, cell_table),
        "",
        "## Verdicts that hang on the collapse line",
        "",
        *sensitivity_lines(cells),
        "",
        "## Runs",
        "",
        f"Outcome of one run: learns = not collapsed, MI in nats rose by > {MI_RISE} (the MI probe's when the "
        "run has one), test probe above the untrained baseline's mean; collapses = collapsed; neither otherwise.",
        "",
        *_markdown(run_header, run_table),
    ]
    (out / "results.md").write_text("\n".join(lines) + "\n")


def read_runs(sources: list[Path], ignore: tuple[str, ...] = ()) -> list[Run]:
    """The runs of every source folder, each marked with its source; PoolingRefused when several folders
    hold runs of one cell that trained different experiments."""
    runs = []
    for source in sources:
        for run in collect(source):
            run.source = source.name
            runs.append(run)
    if len(sources) > 1:
        check_poolable(runs, ignore)
    return runs


#: The files of a report (besides phase_<key>.png).
REPORT_FILES = ("results.md", "results.csv", "cells.csv", "comparisons.csv", "mi_curves.png", "collapse.png")


def remove_report(out: Path) -> None:
    """Remove the report files in ``out`` (REPORT_FILES and phase_<key>.png), so none is left from an
    older report."""
    for path in [*(out / name for name in REPORT_FILES), *out.glob("phase_*.png")]:
        path.unlink(missing_ok=True)


def write_report(out: Path, sources: list[Path] | None = None, ignore: tuple[str, ...] = ()) -> list[Run]:
    """The report of the runs under ``sources`` (default: ``out`` itself), written to ``out``: in a
    temporary folder there, then moved in after the previous report's files are removed. A report that
    fails removes the previous report too (and raises), so no older report passes for the current one."""
    sources = sources or [out]
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".report."))
    try:
        runs = read_runs(sources, ignore)
        cells = group(runs)
        write_tables(runs, cells, staging, sources)
        plot_curves(cells, staging / "mi_curves.png", "mi", "MI on val, own critic (nats)")
        plot_curves(cells, staging / "collapse.png", "effective_rank", "effective rank (val)", log=True)
        for key in numeric_keys(cells):
            plot_phase(cells, key, staging / f"phase_{key}.png")
        remove_report(out)
        for path in staging.iterdir():
            os.replace(path, out / path.name)
    except BaseException:
        remove_report(out)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return runs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="ssrl-report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sweeps", type=Path, nargs="+", help="multirun folders (or any folders holding run folders)")
    parser.add_argument("--out", type=Path, help="where the report goes (required with several folders)")
    parser.add_argument(
        "--ignore", action="append", default=[], metavar="FIELD", help="a config field that may differ when pooling"
    )
    args = parser.parse_args(argv)
    for sweep in args.sweeps:
        if not sweep.is_dir():
            print(f"ssrl-report: error: {sweep} is not a folder", file=sys.stderr)
            sys.exit(2)
    if len(args.sweeps) > 1 and args.out is None:
        print("ssrl-report: error: --out: several folders pool into one report: name its folder", file=sys.stderr)
        sys.exit(2)
    out = args.out or args.sweeps[0]
    try:
        runs = write_report(out, args.sweeps, tuple(args.ignore))
    except (PoolingRefused, ValueError) as exc:
        print(f"ssrl-report: error: {exc}", file=sys.stderr)
        sys.exit(2)
    if not runs:
        print(f"ssrl-report: error: no run folders under {', '.join(map(str, args.sweeps))}", file=sys.stderr)
        sys.exit(2)
    print(f"{len(runs)} runs -> {out}/results.md, results.csv, cells.csv, mi_curves.png, collapse.png")


if __name__ == "__main__":
    main()
