"""ssrl-report groups seeds into cells: means, 95% t-intervals (checked by hand), n, verdicts as counts."""

from __future__ import annotations

import csv
import math

import pytest

from ssrl.analysis.intervals import t_interval
from ssrl.report import write_report
from ssrl.run.summary import read_summary, write_summary
from tests.conftest import TINY, ssrl_train

T_975 = {1: 12.706204736174707, 2: 4.302652729911275}  # Student's t quantile 0.975 at 1 and 2 dof


def test_t_interval_matches_a_hand_computation():
    values = [0.5, 0.6, 0.8]
    mean = sum(values) / 3
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
    interval = t_interval(values)
    assert interval.mean == pytest.approx(mean)
    assert interval.high - mean == pytest.approx(T_975[2] * s / math.sqrt(3))
    assert interval.low == pytest.approx(2 * mean - interval.high)
    assert t_interval([0.7]).n == 1 and t_interval([0.7]).low == 0.7  # one seed: no interval
    pair = t_interval([0.1, 0.2])  # two values: one degree of freedom
    assert pair.mean == pytest.approx(0.15) and pair.high == pytest.approx(0.15 + T_975[1] * math.sqrt(0.005) / 2**0.5)


def _summary(seed: int, probe: float, init: float, mi: tuple[float, float], collapsed: bool, **config) -> dict:
    return {
        "status": "completed",
        "overrides": [f"ablation={config.get('cell', 'x')}", f"seed={seed}"],
        "config": {"estimator": {"name": "cos_dv"}, "paradigm": {"name": "jmi"}, "expected": config.get("expected")},
        "probe_acc": probe,
        "probe_acc_init": init,
        "val": {"probe_acc": probe},
        "collapsed": collapsed,
        "effective_rank": 10.0,
        "embedding_std": 0.05,
        "history": [{"epoch": 0, "mi": {"dv": mi[0]}}, {"epoch": 1, "mi": {"dv": mi[1]}}],
        "wall_s": 10.0,
    }


def test_cells_give_intervals_and_count_verdicts(tmp_path):
    runs = {
        # learns: gains 0.2, 0.25, 0.3 and MI rises of about 2 nats on every seed
        "learn": [(0.6, 0.4), (0.65, 0.4), (0.7, 0.4)],
        # a gain on two seeds and a loss on the third: the interval includes 0, so "neither"
        "noisy": [(0.5, 0.4), (0.52, 0.4), (0.3, 0.4)],
    }
    for cell, pairs in runs.items():
        for seed, (probe, init) in enumerate(pairs):
            write_summary(tmp_path / f"{cell}{seed}", _summary(seed, probe, init, (0.0, 2.0), False, cell=cell))
    for seed in range(3):
        summary = _summary(seed, 0.3, 0.4, (0.0, 0.0), seed < 2, cell="flat", expected="collapses")
        write_summary(tmp_path / f"flat{seed}", summary)

    write_report(tmp_path)
    cells = {row["ablation"]: row for row in csv.DictReader((tmp_path / "cells.csv").read_text().splitlines())}
    assert cells["learn"]["verdict"] == "learns 3/3" and cells["learn"]["n"] == "3"
    assert cells["noisy"]["verdict"] == "neither 1/3 (learns 2/3)"  # two seeds learn on their own
    assert cells["flat"]["verdict"] == "collapses 2/3 (neither 1/3)" and cells["flat"]["expected"] == "collapses"
    gain = t_interval([0.2, 0.25, 0.3])
    # no per-image tables in these summaries: the t-interval over seeds, marked (t)
    assert cells["learn"]["probe gain (test)"] == f"{gain.mean:.3f} [{gain.low:.3f}, {gain.high:.3f}] (t)"
    markdown = (tmp_path / "results.md").read_text()
    assert "9 runs in 3 cells (seeds: 0, 1, 2)" in markdown and "learns 3/3" in markdown


def test_mi_growth_is_kendalls_tau_and_the_largest_drop(tmp_path):
    """MI 0, 3, 2, 1, 4, 3.5 over six epochs: 15 pairs, 11 concordant and 4 discordant, no ties, so
    tau = 7/15; the largest fall below an earlier epoch is 3 - 1 = 2 nats, not the largest single
    step's (1) nor the peak's over the end (0.5)."""
    curve = [0.0, 3.0, 2.0, 1.0, 4.0, 3.5]
    for seed in range(2):
        summary = _summary(seed, 0.6, 0.4, (0.0, 0.0), False, cell="wavy")
        summary["history"] = [{"epoch": e, "mi": {"dv": v + seed}} for e, v in enumerate(curve)]
        write_summary(tmp_path / f"wavy{seed}", summary)
    summary = _summary(0, 0.6, 0.4, (0.0, 0.0), False, cell="rising")
    summary["history"] = [{"epoch": e, "mi": {"dv": 0.5 * e}} for e in range(5)]
    write_summary(tmp_path / "rising0", summary)

    write_report(tmp_path)
    cells = {row["ablation"]: row for row in csv.DictReader((tmp_path / "cells.csv").read_text().splitlines())}
    assert cells["wavy"]["MI Kendall tau"] == f"{7 / 15:.2f} [{7 / 15:.2f}, {7 / 15:.2f}]"
    assert cells["wavy"]["MI largest drop (nats)"] == "2.00 [2.00, 2.00]"
    assert cells["rising"]["MI Kendall tau"] == "1.00" and cells["rising"]["MI largest drop (nats)"] == "0.00"


@pytest.mark.slow
def test_two_seed_sweep_reports_means_intervals_and_n(tmp_path):
    """A real 2-seed multirun: the report written at its end has one cell per paradigm, n = 2."""
    args = ["-m", "paradigm=jmi,sdmi", "seed=0,1", *TINY]
    ssrl_train(*args, cwd=tmp_path)
    (sweep,) = (tmp_path / "outputs" / "multirun").iterdir()
    cells = list(csv.DictReader((sweep / "cells.csv").read_text().splitlines()))
    assert sorted(c["paradigm"] for c in cells) == ["jmi", "sdmi"] and all(c["n"] == "2" for c in cells)
    runs = list(csv.DictReader((sweep / "results.csv").read_text().splitlines()))
    for cell in cells:
        probes = [float(r["probe_acc"]) for r in runs if r["paradigm"] == cell["paradigm"]]
        interval = t_interval(probes)
        # real runs write per-image tables: the report reads them, no (t) fallback
        assert cell["probe (test)"].startswith(f"{interval.mean:.3f} [") and "(t)" not in cell["probe (test)"]
        assert cell["verdict"].endswith("/2")
    assert (sweep / "mi_curves.png").is_file()


def test_mi_rise_reads_the_nats_estimate_that_tracks_the_estimator(tmp_path):
    """InfoNCE runs are read through InfoNCE, the others (JSD's value is not MI) through DV."""
    from ssrl.analysis.runs import collect

    history = [{"epoch": 0, "mi": {"dv": 0.0, "infonce": 0.5}}, {"epoch": 1, "mi": {"dv": 3.0, "infonce": 2.0}}]
    for estimator in ("infonce", "jsd"):
        write_summary(
            tmp_path / estimator,
            {
                "status": "completed",
                "overrides": [f"estimator={estimator}"],
                "history": history,
                "config": {"estimator": {"name": estimator}},
            },
        )
    changes = {r.estimator: r.mi_change for r in collect(tmp_path)}
    assert changes == {"infonce": (0.5, 2.0), "jsd": (0.0, 3.0)}


def test_a_malformed_run_is_counted_not_fatal_and_its_cell_says_over_how_many(tmp_path):
    """An epoch without MI (non-finite embeddings), a null probe: the report is still written, those
    values leave the intervals, and each interval over fewer runs than n says (n=k)."""
    for seed in range(3):
        summary = _summary(seed, 0.6 + 0.05 * seed, 0.4, (0.0, 2.0), False, cell="odd")
        summary["history"] = [{"epoch": e, "mi": {"dv": float(e)}} for e in range(4)]
        write_summary(tmp_path / f"odd{seed}", summary)
    broken = read_summary(tmp_path / "odd2")
    broken["history"].append({"epoch": 4})  # no "mi": its embeddings were not finite
    broken["probe_acc"] = None
    write_summary(tmp_path / "odd2", broken)

    write_report(tmp_path)
    cell = next(csv.DictReader((tmp_path / "cells.csv").read_text().splitlines()))
    assert cell["n"] == "3"
    assert cell["MI Kendall tau"] == "1.00 [1.00, 1.00] (n=2)" and cell["MI end, own critic (nats)"].endswith("(n=2)")
    assert cell["probe gain (test)"].endswith("(n=2) (t)") and cell["probe (test)"].endswith("(n=2) (t)")
    assert cell["untrained baseline probe (test)"] == "0.400 [0.400, 0.400] (t)"
