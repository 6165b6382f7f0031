"""The runs of a sweep folder, finished or not, as ssrl-report reads them."""

from __future__ import annotations

import datetime
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ssrl.evaluation.collapse import is_collapsed
from ssrl.mi.estimators import mi_in_nats_for
from ssrl.run.summary import SUMMARY, read_json

#: The held-out MI (nats) must rise by more than this over training for a run to count as learning.
MI_RISE = 0.1
#: The MI probe's estimate that the report reads (ssrl.mi.probe: a critic trained afresh on frozen
#: embeddings, scored on val): InfoNCE, a lower bound on the MI in nats (at most log N).
PROBE_ESTIMATE = "infonce"
#: The range each bounded value can take; intervals are clipped to it.
SUPPORT = {
    "probe_acc": (0.0, 1.0),
    "knn_acc": (0.0, 1.0),
    "probe_acc_init": (0.0, 1.0),
    "knn_acc_init": (0.0, 1.0),
    "val.probe_acc": (0.0, 1.0),
    "val.knn_acc": (0.0, 1.0),
    "mi_tau": (-1.0, 1.0),
    "mi_drop": (0.0, math.inf),
    "mi_probe_tau": (-1.0, 1.0),
    "mi_probe_drop": (0.0, math.inf),
    "effective_rank": (1.0, math.inf),
    "embedding_std": (0.0, 1.0),
    "wall_s": (0.0, math.inf),
}


def support(metric: str) -> tuple[float, float]:
    """The range of ``metric``'s values (unbounded when not listed in SUPPORT)."""
    return SUPPORT.get(metric, (-math.inf, math.inf))


@dataclass
class Run:
    folder: Path
    overrides: dict[str, str]
    status: str
    summary: dict[str, Any] = field(default_factory=dict)
    #: The sweep folder the run was read from (a report can pool several).
    source: str = ""
    _growth: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        return self.summary.get("config", {})

    @property
    def estimator(self) -> str:
        return self.config.get("estimator", {}).get("name", self.overrides.get("estimator", "cos_dv"))

    @property
    def paradigm(self) -> str:
        return self.config.get("paradigm", {}).get("name", self.overrides.get("paradigm", "jmi"))

    @property
    def mi_name(self) -> str:
        """The MI-in-nats estimate that tracks this run's estimator (DV, or InfoNCE for infonce)."""
        return mi_in_nats_for(self.estimator)

    def curve(self, metric: str) -> tuple[list[int], list[float]]:
        """(epochs, values) of a history metric on the val split; "mi" is the run's MI in nats, NaN for
        an epoch without one (its embeddings were not finite) or with a value that is not a number;
        "mi_probe" the MI probe's (PROBE_ESTIMATE) at the epochs it measured."""
        history = self.summary.get("history", [])
        if metric == "mi":
            points = [(h.get("epoch"), _number((h.get("mi") or {}).get(self.mi_name))) for h in history]
        elif metric == "mi_probe":  # the epochs the MI probe measured
            measured = [h for h in history if h.get("mi_probe")]
            points = [(h.get("epoch"), _number(h["mi_probe"].get(PROBE_ESTIMATE))) for h in measured]
        else:
            points = [(h.get("epoch"), h[metric]) for h in history if metric in h]
        return [p[0] for p in points], [p[1] for p in points]

    @property
    def mi_change(self) -> tuple[float, float] | None:
        """(MI in nats before training, at the end), on the val split."""
        _, values = self.curve("mi")
        return (values[0], values[-1]) if len(values) >= 2 else None

    def growth(self, curve: str) -> tuple[float, float] | None:
        """How monotonically the MI curve ``curve`` ("mi" or "mi_probe") grew over its measurements, in order:
        (Kendall's tau-b of MI against measurement order, in [-1, 1]: 1 when MI rose at every measurement,
        NaN for a flat curve; the largest drop in nats, max over t of max_{s <= t} MI_s - MI_t: 0 when
        MI never fell). Both are NaN when a point is not finite; None with fewer than 3 points."""
        if curve not in self._growth:
            self._growth[curve] = _growth(self.curve(curve)[1])
        return self._growth[curve]

    def value(self, metric: str) -> Any:
        """A summary field, "val.<field>" (val split), a statistic of the val MI curve in nats under the
        run's own critic: "mi" (final), "mi_rise" (end - start), "mi_tau" and "mi_drop" (``growth``),
        or of the MI probe: "mi_probe" (at the end), "mi_probe_rise" (end - before training),
        "mi_probe_tau" and "mi_probe_drop"."""
        if metric.startswith("val."):
            return self.summary.get("val", {}).get(metric[4:])
        if metric in ("mi_probe", "mi_probe_rise"):
            end = _number((self.summary.get("mi_probe") or {}).get(PROBE_ESTIMATE))
            start = _number((self.summary.get("mi_probe_init") or {}).get(PROBE_ESTIMATE))
            value = end if metric == "mi_probe" else end - start
            return None if math.isnan(value) else value
        if metric in ("mi_tau", "mi_drop", "mi_probe_tau", "mi_probe_drop"):
            growth = self.growth(metric.rsplit("_", 1)[0])
            return None if growth is None else growth[0] if metric.endswith("_tau") else growth[1]
        if metric in ("mi", "mi_rise"):
            change = self.mi_change
            if change is None:
                return None
            return change[1] if metric == "mi" else change[1] - change[0]
        return self.summary.get(metric)

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def mi_rise_read(self) -> float | None:
        """The MI rise in nats that outcomes read: the MI probe's, else the one under the run's own critic."""
        probe = self.value("mi_probe_rise")
        return probe if probe is not None else self.value("mi_rise")

    @property
    def collapsed(self) -> bool:
        return bool(self.summary.get("collapsed"))

    def collapsed_under(self, std_fraction: float, min_rank: float) -> bool:
        """Whether the collapse rule with these constants marks the run's final val embeddings
        (ssrl.evaluation.collapse.is_collapsed on its embedding_std, effective_rank and the embedding's
        dimension); non-finite embeddings stay collapsed."""
        s = self.summary
        std, rank = _number(s.get("embedding_std")), _number(s.get("effective_rank"))
        dim = (self.config.get("backbone") or {}).get("projector_dim")
        if s.get("non_finite") or math.isnan(std) or math.isnan(rank) or not dim:
            return self.collapsed
        return is_collapsed(std, rank, int(dim), std_fraction, min_rank)

    @property
    def outcome(self) -> str:
        return self.outcome_given(self.collapsed)

    def outcome_given(self, collapsed: bool) -> str:
        """One run's outcome: "collapses" when ``collapsed``; "learns" when not, its MI in nats rose by
        more than MI_RISE and its test probe beat the untrained baseline's mean (probe_acc_init); "neither"
        otherwise. The MI rise is the MI probe's when the run has one (``mi_rise_read``). A cell's verdict
        over seeds is stricter (ssrl.analysis.cells)."""
        s = self.summary
        if not self.completed:
            return ""
        if collapsed:
            return "collapses"
        rise = self.mi_rise_read
        rose = rise is not None and rise > MI_RISE
        return "learns" if rose and _number(s.get("probe_acc")) > _number(s.get("probe_acc_init")) else "neither"


def _growth(values: list[float]) -> tuple[float, float] | None:
    from scipy.stats import kendalltau

    if len(values) < 3:
        return None
    if not all(math.isfinite(v) for v in values):
        return math.nan, math.nan
    peak, drop = values[0], 0.0
    for v in values:
        peak = max(peak, v)
        drop = max(drop, peak - v)
    return float(kendalltau(range(len(values)), values)[0]), float(drop)


def _number(value: Any) -> float:
    """``value`` as a float; NaN for None, a bool, a string or anything else that is not a number."""
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else math.nan


def parse_overrides(items: list[str]) -> dict[str, str]:
    pairs = (o.lstrip("+~").split("=", 1) for o in items if "=" in o)
    return {k: v for k, v in pairs if not k.startswith("hydra")}


def _not_a_run(folder: Path) -> str | None:
    """Why ``folder`` is not a run ssrl-report can read (its summary.json or overrides.yaml is not what
    ssrl and Hydra write), or None."""
    path, overrides_file = folder / SUMMARY, folder / ".hydra" / "overrides.yaml"
    summary = read_json(path) if path.exists() else {}
    if not isinstance(summary, dict):
        return f"{path} holds {'no JSON' if summary is None else type(summary).__name__}, not a run's summary"
    found = [(f"{path}'s overrides", summary["overrides"])] if "overrides" in summary else []
    if overrides_file.exists():
        try:
            found.append((str(overrides_file), yaml.safe_load(overrides_file.read_text())))
        except (yaml.YAMLError, ValueError):
            return f"{overrides_file} is not YAML"
    for where, raw in found:
        if not isinstance(raw, list) or not all(isinstance(o, str) for o in raw):
            return f"{where} holds {'nothing' if raw is None else type(raw).__name__}, not a list of overrides"
    return None


def collect(sweep: Path) -> list[Run]:
    """Every run folder under ``sweep`` (one with summary.json or Hydra's .hydra/), finished or not. A
    folder whose summary.json or overrides.yaml ssrl did not write (no JSON object, no list of overrides)
    is skipped, with a warning line naming the file."""
    folders = {p.parent for p in sweep.rglob("summary.json")} | {
        p.parent.parent for p in sweep.rglob(".hydra/overrides.yaml")
    }
    runs = []
    for folder in sorted(folders):
        reason = _not_a_run(folder)
        if reason is not None:
            logging.getLogger("ssrl").warning(f"ssrl-report: skipped {folder}: {reason}")
            continue
        summary = read_json(folder / SUMMARY) or {}
        overrides_file = folder / ".hydra" / "overrides.yaml"
        raw = summary.get("overrides") or (
            yaml.safe_load(overrides_file.read_text()) if overrides_file.exists() else []
        )
        status = summary.get("status", "not started")
        if status == "running":
            updated = datetime.datetime.fromtimestamp((folder / "summary.json").stat().st_mtime)
            status = f"running or died (last update {updated:%Y-%m-%d %H:%M})"
        runs.append(Run(folder, parse_overrides(raw), status, summary))
    return runs


def varying(runs: list[Run]) -> list[str]:
    """The override keys whose value differs across the runs, sorted."""
    keys = sorted({k for r in runs for k in r.overrides})
    return [k for k in keys if len({r.overrides.get(k) for r in runs}) > 1]
