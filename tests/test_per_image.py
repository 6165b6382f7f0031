"""Per-image correctness: what the offline evaluation writes for each test image, and the report's
intervals over seeds and test images read from it (against ssrl.analysis.accuracy by hand)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from ssrl.analysis.accuracy import correctness, images_part
from ssrl.analysis.cells import group
from ssrl.analysis.intervals import t_interval, t_quantile
from ssrl.analysis.runs import Run
from ssrl.evaluation.probes import evaluate_backbone, knn_predict, linear_probe_predictions
from ssrl.report import cell_rows

EVAL = OmegaConf.create({"knn_k": 3, "knn_temperature": 0.1})


def test_the_offline_evaluation_writes_each_images_correctness():
    """Two Gaussian blobs, one test image moved into the other class's blob: its bit is 0 for both
    probes, every other bit 1, in the loader's order; the accuracy is the share of 1s."""
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[4.0, 0.0], [-4.0, 0.0]])
    y_fit = torch.arange(40) % 2
    x_fit = centres[y_fit] + 0.3 * torch.randn(40, 2, generator=g)
    y_test = torch.tensor([0, 1, 1, 0, 1])
    x_test = centres[y_test] + 0.3 * torch.randn(5, 2, generator=g)
    x_test[3] = centres[1]  # labeled 0, sits in class 1
    loaders = {"labeled": [(x_fit, y_fit)], "test": [(x_test[:2], y_test[:2]), (x_test[2:], y_test[2:])]}
    result = evaluate_backbone(nn.Identity(), loaders, lambda x: x, torch.device("cpu"), EVAL)["test"]
    assert result["probe_correct"] == result["knn_correct"] == "11101"
    assert result["probe_acc"] == result["knn_acc"] == 0.8
    probe = linear_probe_predictions((x_fit, y_fit), {"test": x_test})["test"]
    assert probe.tolist() == [0, 1, 1, 1, 1]
    assert knn_predict((x_fit, y_fit), x_test, 3, 0.1).tolist() == [0, 1, 1, 1, 1]


def _run(seed: int, bits: str | None, baseline: list[str] | None, acc: float, init: float) -> Run:
    summary = {"status": "completed", "probe_acc": acc, "probe_acc_init": init, "knn_acc": acc, "knn_acc_init": init}
    if bits is not None:
        summary["per_image"] = {"test": {"probe_correct": bits, "knn_correct": bits}}
    if baseline is not None:
        summary["baseline"] = {"key": "k", "test": {"probe_correct": baseline, "knn_correct": baseline}}
    return Run(folder=None, overrides={"arm": "a", "seed": str(seed)}, status="completed", summary=summary)


TRAINED = ["110110", "111010", "011111"]
BASELINE = ["100000", "010010", "000001", "100100"]


def test_the_reports_gain_interval_is_the_crossed_one_by_hand():
    """Gain of 3 seeds over a baseline of 4 inits on 6 test images, by hand: each group's runs' part
    (MS_run - MS_e) / (n M), floored at 0, plus Var_i(d_i) / M of the per-image differences, with
    Welch-Satterthwaite degrees of freedom."""
    cell = group([_run(s, b, BASELINE, 0.0, 0.0) for s, b in enumerate(TRAINED)])[0]
    parts = []
    for bits in (TRAINED, BASELINE):
        c = np.array([[ch == "1" for ch in b] for b in bits], dtype=float)
        n, m = c.shape
        r, k, a = c.mean(1), c.mean(0), c.mean()
        ms_run = m * ((r - a) ** 2).sum() / (n - 1)
        ms_e = ((c - r[:, None] - k[None, :] + a) ** 2).sum() / ((n - 1) * (m - 1))
        parts.append((max(0.0, (ms_run - ms_e) / (n * m)), n - 1))
    d = correctness(TRAINED).mean(0) - correctness(BASELINE).mean(0)
    parts.append((d.var(ddof=1) / 6, 5))
    variance = sum(v for v, _ in parts)
    df = variance**2 / sum(v * v / f for v, f in parts if v > 0)
    mean = correctness(TRAINED).mean() - correctness(BASELINE).mean()
    gain = cell.gain("probe")
    assert gain.mean == pytest.approx(mean) and gain.se == pytest.approx(math.sqrt(variance))
    assert gain.low == pytest.approx(mean - t_quantile(df) * math.sqrt(variance))
    assert images_part(d) == pytest.approx(parts[-1])
    assert cell.accuracy("probe").n == 3 and cell.baseline_accuracy("probe").mean == pytest.approx(0.25)


def test_the_report_falls_back_to_the_seed_t_interval_without_tables():
    """Old runs (no per_image): the t-interval of the per-seed gains over probe_acc_init."""
    cell = group([_run(0, None, None, 0.5, 0.2), _run(1, None, None, 0.6, 0.1), _run(2, None, None, 0.4, 0.2)])[0]
    expected = t_interval([0.3, 0.5, 0.2], support=(-1.0, 1.0))
    assert cell.gain("probe") == expected and not cell.has_tables
    with_tables = group([_run(s, b, BASELINE, 0.0, 0.0) for s, b in enumerate(TRAINED)])[0]
    header, rows = cell_rows([cell, with_tables], cell.runs + with_tables.runs, pooled=False)
    gains = [row[header.index("probe gain (test)")] for row in rows]
    assert gains[0] == f"{expected.fmt(3)} (t)" and not gains[1].endswith("(t)")
