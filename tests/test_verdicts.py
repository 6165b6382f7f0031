"""The instrument that turns runs into verdicts: accuracy intervals over seeds and test images (checked
against hand computations), declared comparisons with three outcomes and Holm's correction, the cells
that hang on the collapse line, and pooled reports."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from ssrl.analysis import sensitivity
from ssrl.analysis.accuracy import Group, accuracy_interval, correctness, difference_interval
from ssrl.analysis.cells import Cell, group
from ssrl.analysis.comparisons import decide, holm
from ssrl.analysis.intervals import t_interval, t_quantile
from ssrl.analysis.runs import Run
from ssrl.report import main as report_main
from ssrl.report import write_report
from ssrl.run.summary import write_summary

#: Three runs x four test images (1 = right): rows 0.75, 0.5, 1; columns 1, 2/3, 1/3, 1; grand mean 0.75.
TABLE = ["1101", "1001", "1111"]


def test_accuracy_variance_parts_match_a_hand_computation():
    """MS_run = 4 (0 + 1/16 + 1/16) / 2 = 1/4; the residuals' squares sum to 5/6 over (n-1)(M-1) = 6
    degrees of freedom, MS_e = 5/36; the runs' part (MS_run - MS_e) / (n M) = (1/9) / 12 = 1/108. The
    column means' variance is (11/36) / 3, so the images' part is 11/432."""
    g = Group(correctness(TABLE))
    runs, runs_df = g.runs_part()
    assert runs == pytest.approx(1 / 108) and runs_df == 2
    interval = accuracy_interval(g)
    variance = 1 / 108 + 11 / 432
    df = variance**2 / ((1 / 108) ** 2 / 2 + (11 / 432) ** 2 / 3)  # Welch-Satterthwaite
    assert interval.mean == 0.75 and interval.df == pytest.approx(df)
    assert interval.high == pytest.approx(min(1.0, 0.75 + t_quantile(df) * math.sqrt(variance)))
    assert interval.low == pytest.approx(0.75 - t_quantile(df) * math.sqrt(variance))
    with pytest.raises(ValueError):
        correctness(["101", "10"])


def test_a_difference_keeps_each_groups_runs_and_the_paired_images():
    """Arm (TABLE) against a baseline of 3 inits on the same images: the images' part is the variance of
    the per-image differences, so images both get right cancel."""
    arm, base = Group(correctness(TABLE)), Group(correctness(["1000", "0001", "1001"]))
    d = arm.per_image - base.per_image  # [1/3, 2/3, 1/3, 1/3]
    images = float(np.var(d, ddof=1)) / 4
    parts = [arm.runs_part()[0], base.runs_part()[0], images]
    interval = difference_interval(arm, base)
    assert interval.mean == pytest.approx(0.75 - 1 / 3)
    assert interval.se == pytest.approx(math.sqrt(sum(parts)))
    assert difference_interval(arm, Group(correctness(["1000"]))) is None  # one run: no interval


def test_intervals_stay_in_the_statistics_range():
    assert t_interval([0.9, 1.0, 1.0], support=(-1.0, 1.0)).high == 1.0  # Kendall tau cannot pass 1
    assert t_interval([1.2, 3.0, 9.0], support=(1.0, math.inf)).low == 1.0  # effective rank >= 1
    interval = accuracy_interval(Group(correctness(["1111", "1110", "1111"])))
    assert interval.high == 1.0 and interval.low < 1.0


def test_holm_matches_a_hand_computation():
    """p = 0.01, 0.04, 0.03: ascending 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, then max(0.06, 0.04) = 0.06."""
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5]) == [0.5]


def _run(cell: str, seed: int, bits: str | None = None, **summary) -> Run:
    base = {"status": "completed", "config": {"backbone": {"projector_dim": 4}}, **summary}
    if bits is not None:
        base["per_image"] = {"test": {"probe_correct": bits, "knn_correct": bits}}
        base["baseline"] = {"key": "k", "test": {"probe_correct": ["0" * len(bits)] * 3 + ["1" * len(bits)]}}
    return Run(folder=None, overrides={"arm": cell, "seed": str(seed)}, status="completed", summary=base)


def _cells(runs: list[Run]) -> list[Cell]:
    return group(runs)


def test_each_outcome_on_fixtures():
    """strong: right on 190 of 200 images against 20: supported. flat: both about 0.5 on 400 images, an
    interval that excludes +0.1: contradicted. noisy: 2 seeds of 10 images, one good and one bad:
    inconclusive. The same margin decides all three."""
    rng = np.random.default_rng(0)

    def bits(p: float, m: int) -> str:
        return "".join("1" if x else "0" for x in rng.random(m) < p)

    runs = [_run("strong", s, bits(0.95, 200)) for s in range(3)]
    runs += [_run("weak", s, bits(0.1, 200)) for s in range(3)]
    runs += [_run("flat_a", s, bits(0.5, 400)) for s in range(3)]
    runs += [_run("flat_b", s, bits(0.5, 400)) for s in range(3)]
    runs += [_run("noisy_a", 0, "1111111111"), _run("noisy_a", 1, "0000000000")]
    runs += [_run("noisy_b", s, "0101010101") for s in range(2)]
    specs = [
        {"name": "rescue", "arm": {"arm": "strong"}, "control": {"arm": "weak"}, "margin": 0.1},
        {"name": "none", "arm": {"arm": "flat_a"}, "control": {"arm": "flat_b"}, "margin": 0.1},
        {"name": "unclear", "arm": {"arm": "noisy_a"}, "control": {"arm": "noisy_b"}, "margin": 0.1},
    ]
    results = {r.declared.name: r for r in decide(specs, _cells(runs))}
    assert results["rescue"].outcome == "supported" and results["rescue"].effect.low > 0.1
    assert results["none"].outcome == "contradicted" and results["none"].effect.high < 0.1
    assert results["unclear"].outcome == "inconclusive"


def test_holm_correction_turns_a_lone_support_inconclusive():
    """Arm minus control of a per-run value, 4 seeds each, effect 0.25 with a Welch p of 0.034 against 0:
    supported alone; beside two comparisons with p = 1, Holm multiplies it by 3 (0.10): inconclusive."""
    runs = [_run("up", s, mi_probe={"infonce": 1.25 + 0.1 * s}) for s in range(4)]
    runs += [_run("ctrl", s, mi_probe={"infonce": 1.0 + 0.1 * s}) for s in range(4)]
    runs += [_run("same", s, mi_probe={"infonce": 1.0 + 0.1 * s}) for s in range(4)]
    one = {"name": "up", "arm": {"arm": "up"}, "control": {"arm": "ctrl"}, "metric": "mi_probe", "margin": 0.0}
    null = {"arm": {"arm": "same"}, "control": {"arm": "ctrl"}, "metric": "mi_probe", "margin": 0.0}
    alone = decide([one], _cells(runs))[0]
    assert alone.outcome == "supported" and alone.p == pytest.approx(0.0338, abs=1e-3)
    three = decide([one, {**null, "name": "n1"}, {**null, "name": "n2"}], _cells(runs))
    assert three[0].outcome == "inconclusive" and three[0].p_adjusted == pytest.approx(3 * alone.p)


def test_support_needs_the_arm_not_collapsed():
    runs = [_run("strong", s, "1" * 50, collapsed=s < 2) for s in range(3)]
    runs += [_run("weak", s, "0" * 45 + "1" * 5) for s in range(3)]
    spec = {"name": "r", "arm": {"arm": "strong"}, "control": {"arm": "weak"}, "margin": 0.1}
    assert decide([{**spec, "arm_not_collapsed": True}], _cells(runs))[0].outcome == "inconclusive"
    assert decide([spec], _cells(runs))[0].outcome == "supported"


def test_a_cell_collapses_only_when_most_seeds_do():
    runs = [_run("one", s, collapsed=s == 0) for s in range(3)]
    runs += [_run("two", s, collapsed=s < 2) for s in range(3)]
    verdicts = {c.key["arm"]: c.verdict for c in _cells(runs)}
    assert not verdicts["one"].startswith("collapses") and verdicts["two"].startswith("collapses 2/3")


def test_the_cells_that_hang_on_the_collapse_line():
    """D = 4, rule std < 0.5 / 2 = 0.25: a cell at std 0.3 collapses once the fraction reaches 0.71
    (line 0.354), a cell at 0.1 already collapsed and one at 0.55 holds up to twice the fraction (line 0.5)."""
    rule = {"protocol": {"collapse_rule": {"std_fraction": 0.5, "min_rank": 2.0}}}
    runs = []
    for cell, std in (("near", 0.3), ("far", 0.55), ("gone", 0.1)):
        runs += [_run(cell, s, embedding_std=std, effective_rank=3.0, collapsed=std < 0.25, **rule) for s in range(3)]
    shifts = {(s.constant, round(s.value, 3)): s for s in sensitivity.shifts(_cells(runs))}
    assert [c.key["arm"] for c, _, _ in shifts[("std_fraction", 0.707)].changed] == ["near"]
    assert shifts[("std_fraction", 0.25)].changed == []
    assert [c.key["arm"] for c, _, _ in shifts[("std_fraction", 1.0)].changed] == ["near"]
    assert [c.key["arm"] for c, _, _ in shifts[("min_rank", 4.0)].changed] == ["near", "far"]


def _folder_run(folder, name: str, seed: int, lr: float) -> None:
    write_summary(
        folder / name,
        {
            "status": "completed",
            "overrides": ["arm=a", f"seed={seed}"],
            "config": {
                "seed": seed,
                "optim": {"lr": lr},
                "marginal": {"name": "exact", "weight": 1.0},
                "estimator": {"name": "cos_dv"},
            },
            "probe_acc": 0.5 + 0.01 * seed,
            "probe_acc_init": 0.1,
        },
    )


def test_a_report_pools_sweeps_and_refuses_another_experiment(tmp_path, capsys):
    first, second, out = tmp_path / "first", tmp_path / "second", tmp_path / "pooled"
    for seed in range(3):
        _folder_run(first, f"s{seed}", seed, 0.05)
        _folder_run(second, f"s{seed}", seed + 3, 0.05)
    runs = write_report(out, [first, second])
    cell = next(csv.DictReader((out / "cells.csv").read_text().splitlines()))
    assert len(runs) == 6 and cell["n"] == "6" and cell["sources"] == "first x3, second x3"
    assert {r["source"] for r in csv.DictReader((out / "results.csv").read_text().splitlines())} == {"first", "second"}

    _folder_run(second, "s9", 9, 0.1)  # another learning rate: another experiment
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(first), str(second), "--out", str(out)])
    assert exit_info.value.code == 2 and "optim.lr: 0.05 vs 0.1" in capsys.readouterr().err
    report_main([str(first), str(second), "--out", str(out), "--ignore", "optim.lr"])
    _folder_run(second, "s10", 0, 0.05)  # seed 0 again
    with pytest.raises(SystemExit):
        report_main([str(first), str(second), "--out", str(out), "--ignore", "optim.lr"])
    assert "seed 0 is in both first and second" in capsys.readouterr().err


def test_a_value_against_the_margin_itself():
    """control: zero reads the arm's own value: an MI probe rise of 1.0-1.2 nats over 3 seeds clears a
    0.5-nat margin (supported) and lies under a 2-nat one (contradicted)."""
    runs = [_run("rise", s, mi_probe={"infonce": 1.0 + 0.1 * s}, mi_probe_init={"infonce": 0.0}) for s in range(3)]
    spec = {"arm": {"arm": "rise"}, "control": "zero", "metric": "mi_probe_rise"}
    low, high = decide([{**spec, "name": "a", "margin": 0.5}], _cells(runs)) + decide(
        [{**spec, "name": "b", "margin": 2.0}], _cells(runs)
    )
    assert low.outcome == "supported" and low.effect.mean == pytest.approx(1.1)
    assert high.outcome == "contradicted"


def test_the_mi_probes_growth_reads_its_own_measurements():
    """The probe measured at epochs 0, 5, 10, 15 (0.0, 1.0, 0.8, 1.5 nats) and not in between: tau over 4
    points, 6 pairs, 5 concordant and 1 discordant, 4/6; its largest drop 0.2 nats."""
    history = [{"epoch": e} for e in range(16)]
    for e, v in zip((0, 5, 10, 15), (0.0, 1.0, 0.8, 1.5), strict=True):
        history[e]["mi_probe"] = {"infonce": v, "dv": 9.0}
    run = _run("p", 0, history=history)
    assert run.value("mi_probe_tau") == pytest.approx(4 / 6) and run.value("mi_probe_drop") == pytest.approx(0.2)
