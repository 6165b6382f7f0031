"""The evaluation's maths, each against a closed form or an independent computation: the spectrum from
the D x D Gram matrix, uniformity on its fixed subsample, the torch linear probe against scikit-learn's."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ssrl.evaluation import collapse
from ssrl.evaluation.probes import linear_probe_predictions


def _with_spectrum(n: int, s: list[float], d: int) -> torch.Tensor:
    """An (n, d) matrix whose singular values are ``s`` (then zeros): U diag(s) V^T with orthonormal U, V."""
    g = torch.Generator().manual_seed(0)
    u = torch.linalg.qr(torch.randn(n, len(s), generator=g, dtype=torch.float64))[0]
    v = torch.linalg.qr(torch.randn(d, len(s), generator=g, dtype=torch.float64))[0]
    return (u * torch.tensor(s, dtype=torch.float64)) @ v.T


def test_effective_rank_of_a_known_spectrum():
    """s = (4, 2, 1, 1) in 8 dimensions: p = (1/2, 1/4, 1/8, 1/8), exp(H) = exp(1.75 log 2) = 2^1.75;
    with N < D (3 rows of 16 columns) the Gram matrix's extra zero eigenvalues add nothing."""
    z = _with_spectrum(50, [4.0, 2.0, 1.0, 1.0], 8)
    assert collapse.effective_rank(z) == pytest.approx(2**1.75, rel=1e-6)
    assert collapse.singular_values(z).sort(descending=True).values[:4].tolist() == pytest.approx([4, 2, 1, 1])
    wide = _with_spectrum(3, [3.0, 3.0, 3.0], 16)
    assert collapse.effective_rank(wide) == pytest.approx(3.0, rel=1e-6)


def _uniformity_by_hand(z: torch.Tensor, t: float = 2.0) -> float:
    z = z.double()
    x = (z / z.norm(dim=1, keepdim=True)).numpy()
    n = len(x)
    total = sum(math.exp(-t * float(((x[i] - x[j]) ** 2).sum())) for i in range(n) for j in range(i + 1, n))
    return math.log(total / (n * (n - 1) / 2))


def test_uniformity_against_the_formula_and_on_its_fixed_subsample():
    """All pairs of a small set, by the formula; a set larger than UNIFORMITY_SAMPLE reads the same fixed
    rows every time (those of ``subsample``), all of them distinct."""
    z = torch.randn(30, 3, generator=torch.Generator().manual_seed(1))
    assert collapse.uniformity(z) == pytest.approx(_uniformity_by_hand(z), rel=1e-9)
    big = torch.randn(collapse.UNIFORMITY_SAMPLE + 50, 2, generator=torch.Generator().manual_seed(2))
    rows = collapse.subsample(big)
    assert len(rows) == collapse.UNIFORMITY_SAMPLE and len(torch.unique(rows, dim=0)) == len(rows)
    assert torch.equal(rows, collapse.subsample(big))
    d2 = torch.cdist(rows / rows.norm(dim=1, keepdim=True), rows / rows.norm(dim=1, keepdim=True)).double() ** 2
    pairs = d2[torch.triu_indices(len(rows), len(rows), 1).unbind()]
    expected = float(torch.logsumexp(-2 * pairs, 0) - math.log(len(pairs)))
    assert collapse.uniformity(big) == pytest.approx(expected, abs=1e-5)


def test_the_torch_probe_agrees_with_scikit_learns():
    """Three overlapping classes, 60 training points in 20 dimensions (so the L2 penalty shapes the fit):
    the torch probe predicts what scikit-learn's LogisticRegression (standardised, C = 1) does on at least
    99% of 2000 test points."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 20)) * 0.6
    scale = rng.uniform(0.5, 3.0, size=20)

    def draw(n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 3, n)
        return ((centres[y] + rng.normal(size=(n, 20))) * scale).astype(np.float32), y

    (x, y), (xt, _) = draw(60), draw(2000)
    sk = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000, tol=1e-8)).fit(x, y).predict(xt)
    ours = linear_probe_predictions((torch.from_numpy(x), torch.from_numpy(y)), {"t": torch.from_numpy(xt)})["t"]
    assert (ours.numpy() == sk).mean() >= 0.99


def test_embedding_std_reads_l2_normalised_embeddings():
    """Rows (3, 0) and (0, 5) normalise to (1, 0) and (0, 1): each column's std (ddof 1) is 1/sqrt(2),
    whatever the rows' lengths; unnormalised they would give (3 + 5) / (2 sqrt(2))."""
    z = torch.tensor([[3.0, 0.0], [0.0, 5.0]])
    assert collapse.embedding_std(z) == pytest.approx(1 / math.sqrt(2))
    w = torch.randn(64, 8, generator=torch.Generator().manual_seed(3))
    lengths = torch.linspace(0.1, 10.0, 64)[:, None]
    assert collapse.embedding_std(w * lengths) == pytest.approx(collapse.embedding_std(w))
