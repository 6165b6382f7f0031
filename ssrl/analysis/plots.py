"""ssrl-report's figures: curves over epochs (mean and 95% band over seeds) and, for a numeric swept
key, the final metrics against it (a phase diagram, e.g. against lambda = marginal.weight)."""

from __future__ import annotations

from pathlib import Path

from ssrl.analysis.cells import Cell
from ssrl.analysis.intervals import t_interval
from ssrl.analysis.runs import varying

#: (metric, axis label, log scale) of the phase diagram's panels.
PHASE_PANELS = (
    ("mi", "final MI on val (nats)", False),
    ("effective_rank", "effective rank (val)", True),
    ("embedding_std", "embedding std (val)", False),
    ("probe_acc", "linear probe (test)", False),
)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _label(cell: Cell, keys: list[str]) -> str:
    return ",".join(f"{k}={cell.key[k]}" for k in keys if k in cell.key) or "run"


def _band(ax, xs: list, runs_values: list[list[float]], label: str, style: str) -> None:
    """The mean line and its 95% t-band (no band for one run) of values[i] at xs[i]."""
    stats = [t_interval(v) for v in runs_values]
    points = [(x, s) for x, s in zip(xs, stats, strict=True) if s is not None]
    if not points:
        return
    x = [p[0] for p in points]
    line = ax.plot(x, [p[1].mean for p in points], style, marker=".", label=label)[0]
    if any(p[1].n > 1 for p in points):
        ax.fill_between(x, [p[1].low for p in points], [p[1].high for p in points], alpha=0.2, color=line.get_color())


def plot_curves(cells: list[Cell], path: Path, metric: str, ylabel: str, log: bool = False) -> None:
    """One panel per (paradigm, estimator), one line per cell: mean over seeds per epoch, 95% band."""
    plt = _pyplot()
    panels = sorted({(r.paradigm, r.estimator) for c in cells for r in c.runs})
    if not panels:
        return
    cols = min(3, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(5.5 * cols, 3.8 * rows), squeeze=False)
    keys = [k for k in varying([r for c in cells for r in c.runs]) if k not in ("paradigm", "estimator", "seed")]
    for ax, (paradigm, estimator) in zip(axes.flat, panels, strict=False):
        for cell in cells:
            runs = [r for r in cell.runs if (r.paradigm, r.estimator) == (paradigm, estimator)]
            by_epoch: dict[int, list[float]] = {}
            for r in runs:
                for epoch, value in zip(*r.curve(metric), strict=True):
                    by_epoch.setdefault(epoch, []).append(value)
            epochs = sorted(by_epoch)
            style = "-" if all(r.completed for r in runs) else ":"
            label = f"{_label(cell, keys)} [{cell.verdict or 'unfinished'}] n={len(runs)}"
            _band(ax, epochs, [by_epoch[e] for e in epochs], label, style)
        ax.set_title(f"{paradigm} + {estimator}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        if ax.lines:
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def numeric_keys(cells: list[Cell]) -> list[str]:
    """Swept keys (seed aside) whose values are all numbers and take at least three values."""
    keys = varying([r for c in cells for r in c.runs])
    out = []
    for k in keys:
        values = {c.key.get(k) for c in cells}
        try:
            numbers = {float(v) for v in values}
        except (TypeError, ValueError):
            continue
        if k != "seed" and len(numbers) >= 3:
            out.append(k)
    return out


def plot_phase(cells: list[Cell], key: str, path: Path) -> None:
    """Final metrics against the numeric key ``key``: one line per combination of the other swept keys,
    mean over seeds with its 95% band."""
    plt = _pyplot()
    others = [k for k in varying([r for c in cells for r in c.runs]) if k not in (key, "seed")]
    series: dict[str, list[Cell]] = {}
    for cell in cells:
        series.setdefault(_label(cell, others), []).append(cell)
    fig, axes = plt.subplots(1, len(PHASE_PANELS), figsize=(4.6 * len(PHASE_PANELS), 3.8), squeeze=False)
    for ax, (metric, ylabel, log) in zip(axes.flat, PHASE_PANELS, strict=True):
        for label, members in sorted(series.items()):
            members = sorted(members, key=lambda c: float(c.key[key]))
            values = [[v for v in c.values(metric) if v is not None] for c in members]
            _band(ax, [float(c.key[key]) for c in members], values, label, "-")
        ax.set_xlabel(key)
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(4, len(labels)), fontsize=8)
    fig.tight_layout(rect=(0, 0.08 + 0.04 * (len(labels) // 4), 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
