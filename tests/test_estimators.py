"""Each estimator against values computed by hand, term by term, with the math module."""

from __future__ import annotations

import math

import pytest
import torch

from ssrl.mi.estimators import ESTIMATORS, dv, infonce, jsd, mi_estimates, nwj

S = [[2.0, 0.5, -1.0], [0.0, 1.0, 0.3], [-0.5, 0.2, 1.5]]
N = 3
DIAG = [S[i][i] for i in range(N)]
OFF = [S[i][j] for i in range(N) for j in range(N) if i != j]


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


HAND = {
    "cos_dv": (sum(DIAG) / N, math.log(sum(math.exp(s) for s in OFF) / len(OFF))),
    "jsd": (-sum(softplus(-s) for s in DIAG) / N, sum(softplus(s) for s in OFF) / len(OFF)),
    "nwj": (sum(DIAG) / N, sum(math.exp(s - 1) for s in OFF) / len(OFF)),
}
ROWS = sum(math.log(sum(math.exp(s) for s in row)) for row in S) / N - math.log(N)
COLS = sum(math.log(sum(math.exp(S[i][j]) for i in range(N))) for j in range(N)) / N - math.log(N)


@pytest.mark.parametrize("name", ["cos_dv", "jsd", "nwj"])
def test_matches_hand_computed_terms(name):
    terms = ESTIMATORS[name](torch.tensor(S))
    joint, marginal = HAND[name]
    assert terms.joint.item() == pytest.approx(joint, abs=1e-6)
    assert terms.marginal.item() == pytest.approx(marginal, abs=1e-6)
    assert terms.estimate.item() == pytest.approx(joint - marginal, abs=1e-6)


def test_infonce_row_and_symmetric_forms():
    rows = infonce(torch.tensor(S), symmetric=False)
    both = infonce(torch.tensor(S), symmetric=True)
    assert rows.joint.item() == pytest.approx(sum(DIAG) / N, abs=1e-6)
    assert rows.marginal.item() == pytest.approx(ROWS, abs=1e-6)
    assert both.marginal.item() == pytest.approx((ROWS + COLS) / 2, abs=1e-6)


@pytest.mark.parametrize("name", list(ESTIMATORS))
def test_weight_zero_removes_exactly_the_marginal_term(name):
    scores = torch.tensor(S, requires_grad=True)
    terms = ESTIMATORS[name](scores)
    assert terms.objective(0.0).item() == pytest.approx(terms.joint.item())
    assert terms.objective(1.0).item() == pytest.approx(terms.estimate.item())
    (grad,) = torch.autograd.grad(terms.objective(0.0), scores)
    off_diagonal = ~torch.eye(N, dtype=torch.bool)
    assert torch.all(grad[off_diagonal] == 0), "with lambda = 0 the negatives must get no gradient"
    assert torch.all(grad.diagonal() != 0)


def test_infonce_never_exceeds_log_n():
    scores = 100 * torch.eye(64)  # a perfect critic
    assert infonce(scores).estimate.item() <= math.log(64) + 1e-5


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_and_small_temperature_stay_finite(dtype):
    scores = (torch.randn(128, 16) @ torch.randn(16, 128) / 0.01).to(dtype)
    for name, value in mi_estimates(scores).items():
        assert torch.isfinite(value), name
    assert torch.isfinite(jsd(scores).estimate)


def test_rejects_non_square_or_single_pair():
    with pytest.raises(ValueError, match="square"):
        nwj(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="N >= 2"):
        dv(torch.zeros(1, 1))


def test_mi_in_nats_is_shift_invariant_and_the_others_are_not():
    """A constant shift of the scores (a critic's free offset) cannot move an MI reported in nats."""
    scores = torch.randn(32, 32) + 3 * torch.eye(32)
    for name, value in mi_estimates(scores).items():
        assert mi_estimates(scores + 5.0)[name] == pytest.approx(float(value), abs=1e-4), name
    assert abs(float(nwj(scores + 5.0).estimate - nwj(scores).estimate)) > 1.0
    assert abs(float(jsd(scores + 5.0).estimate - jsd(scores).estimate)) > 1.0
