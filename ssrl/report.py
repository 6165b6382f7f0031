"""ssrl-report: a sweep folder -> results.md, results.csv, mi_curves.png, collapse.png.

    ssrl-report outputs/multirun/collapse

One row per run folder found under the sweep (a folder with summary.json or Hydra's .hydra/): the
overrides that vary across the sweep, the outcome, probe and kNN accuracy, effective rank, the final
held-out MI of every estimator, collapsed, wall time. Failed runs are listed with their error; runs
without a final summary are listed as running (or died), never dropped. Runs after every multirun too.

A run's outcome is "learns" when it did not collapse, its held-out MI (of the estimator it trains)
rose by more than 0.1, and its probe beat the untrained encoder's; "collapses" when it collapsed;
"neither" otherwise. Where the run's config names an ``expected`` outcome, the table shows it beside.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ssrl.mi.estimators import MI_IN_NATS, mi_in_nats_for
from ssrl.run.summary import read_summary

MI_RISE = 0.1


@dataclass
class Run:
    folder: Path
    overrides: dict[str, str]
    status: str
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def config(self) -> dict[str, Any]:
        return self.summary.get("config", {})

    @property
    def estimator(self) -> str:
        return self.config.get("estimator", {}).get("name", self.overrides.get("estimator", "cos_dv"))

    @property
    def paradigm(self) -> str:
        return self.config.get("paradigm", {}).get("name", self.overrides.get("paradigm", "jmi"))

    def curve(self, metric: str) -> tuple[list[int], list[float]]:
        history = self.summary.get("history", [])
        if metric == "mi":
            points = [(h["epoch"], h["mi"][mi_in_nats_for(self.estimator)]) for h in history if "mi" in h]
        else:
            points = [(h["epoch"], h[metric]) for h in history if metric in h]
        return [p[0] for p in points], [p[1] for p in points]

    @property
    def mi_change(self) -> tuple[float, float] | None:
        _, values = self.curve("mi")
        return (values[0], values[-1]) if len(values) >= 2 else None

    @property
    def outcome(self) -> str:
        s = self.summary
        if self.status != "completed":
            return ""
        if s.get("collapsed"):
            return "collapses"
        change = self.mi_change
        rose = change is not None and change[1] - change[0] > MI_RISE
        return "learns" if rose and s["probe_acc"] > s["probe_acc_init"] else "neither"


def _parse_overrides(items: list[str]) -> dict[str, str]:
    pairs = (o.lstrip("+~").split("=", 1) for o in items if "=" in o)
    return {k: v for k, v in pairs if not k.startswith("hydra")}


def collect(sweep: Path) -> list[Run]:
    """Every run folder under ``sweep``, finished or not."""
    folders = {p.parent for p in sweep.rglob("summary.json")} | {
        p.parent.parent for p in sweep.rglob(".hydra/overrides.yaml")
    }
    runs = []
    for folder in sorted(folders):
        summary = read_summary(folder) or {}
        overrides_file = folder / ".hydra" / "overrides.yaml"
        raw = summary.get("overrides") or (
            yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        )
        status = summary.get("status", "not started")
        if status == "running":
            updated = datetime.datetime.fromtimestamp((folder / "summary.json").stat().st_mtime)
            status = f"running or died (last update {updated:%Y-%m-%d %H:%M})"
        runs.append(Run(folder, _parse_overrides(raw), status, summary))
    return runs


def varying(runs: list[Run]) -> list[str]:
    keys = sorted({k for r in runs for k in r.overrides})
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]


def _fmt(value: Any, digits: int = 3) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def rows(runs: list[Run]) -> tuple[list[str], list[list[str]]]:
    keys = varying(runs)
    header = [
        *keys,
        "status",
        "outcome",
        "expected",
        "probe_acc",
        "probe_acc_init",
        "knn_acc",
        "effective_rank",
        "embedding_std",
        "mi (start -> end)",
        *(f"mi:{n}" for n in MI_IN_NATS),
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
                *(_fmt(s.get(k)) for k in ("probe_acc", "probe_acc_init", "knn_acc")),
                _fmt(s.get("effective_rank"), 1),
                _fmt(s.get("embedding_std"), 4),
                f"{r.estimator} {change[0]:.2f} -> {change[1]:.2f}" if change else "",
                *(_fmt(mi.get(n), 2) for n in MI_IN_NATS),
                _fmt(s.get("collapsed")),
                _fmt(s.get("wall_s"), 0),
                (s.get("error") or "").replace("|", "/").replace("\n", " ")[:200],
            ]
        )
    return header, table


def write_tables(runs: list[Run], sweep: Path) -> None:
    header, table = rows(runs)
    with open(sweep / "results.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, *table])
    total = sum(r.summary.get("wall_s", 0.0) for r in runs)
    lines = [
        f"# Results: {sweep}",
        "",
        f"{len(runs)} runs, {sum(r.status == 'completed' for r in runs)} completed, "
        f"{sum(r.status == 'failed' for r in runs)} failed; training wall time {total / 60:.1f} min in all.",
        f"Outcome: learns = not collapsed, held-out MI rose by > {MI_RISE}, probe above the untrained encoder's.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + " --- |" * len(header),
    ]
    lines += ["| " + " | ".join(row) + " |" for row in table]
    (sweep / "results.md").write_text("\n".join(lines) + "\n")


def _label(run: Run, keys: list[str]) -> str:
    return ",".join(f"{k}={run.overrides[k]}" for k in keys if k in run.overrides) or run.folder.name


def plot_curves(runs: list[Run], sweep: Path, metric: str, ylabel: str, filename: str, log: bool = False) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r.paradigm, r.estimator) for r in runs})
    if not groups:
        return
    cols = min(3, len(groups))
    nrows = -(-len(groups) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5.5 * cols, 3.8 * nrows), squeeze=False)
    keys = [k for k in varying(runs) if k not in ("paradigm", "estimator")]
    for ax, (paradigm, estimator) in zip(axes.flat, groups, strict=False):
        for r in (r for r in runs if (r.paradigm, r.estimator) == (paradigm, estimator)):
            epochs, values = r.curve(metric)
            if epochs:
                style = "-" if r.status == "completed" else ":"
                ax.plot(epochs, values, style, marker=".", label=f"{_label(r, keys)} [{r.outcome or r.status[:7]}]")
        ax.set_title(f"{paradigm} + {estimator}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel if metric != "mi" else f"held-out {estimator} estimate")
        if log:
            ax.set_yscale("log")
        if ax.lines:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(groups) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(sweep / filename, dpi=110)
    plt.close(fig)


def write_report(sweep: Path) -> list[Run]:
    runs = collect(sweep)
    write_tables(runs, sweep)
    plot_curves(runs, sweep, "mi", "held-out MI", "mi_curves.png")
    plot_curves(runs, sweep, "effective_rank", "effective rank (held-out)", "collapse.png", log=True)
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
    print(f"{len(runs)} runs -> {args.sweep}/results.md, results.csv, mi_curves.png, collapse.png")


if __name__ == "__main__":
    main()
