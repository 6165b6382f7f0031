"""95% intervals over seeds, and intervals whose variance has several independent parts.

Two formulas, each in one place:

- ``t_interval``: Student's t-interval of a mean over n values, mean ± t_{(1+level)/2, n-1} · s / sqrt(n),
  s the sample standard deviation (ddof 1), clipped to the statistic's range (``support``);
- ``component_interval``: an estimate whose variance is a sum of independent parts V = sum_k v_k, each
  estimated with df_k degrees of freedom: estimate ± t_{(1+level)/2, nu} · sqrt(V) with the
  Welch-Satterthwaite degrees of freedom nu = V^2 / sum_k (v_k^2 / df_k), clipped to ``support``.
  ``ssrl.analysis.accuracy`` builds the parts of an accuracy over seeds and test images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95
UNBOUNDED = (-math.inf, math.inf)


@dataclass(frozen=True)
class Interval:
    """mean, and the interval [low, high] at LEVEL over n runs; low = high = mean when n = 1. ``df``:
    the t-quantile's degrees of freedom (nan with n = 1), ``se`` the standard error."""

    mean: float
    low: float
    high: float
    n: int
    df: float = math.nan
    se: float = math.nan

    def __str__(self) -> str:
        return self.fmt(3)

    def fmt(self, digits: int) -> str:
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _clip(value: float, support: tuple[float, float]) -> float:
    return min(max(value, support[0]), support[1])


def t_quantile(df: float, level: float = LEVEL) -> float:
    """t_{(1+level)/2, df}: the two-sided quantile of Student's t (the normal one as df -> inf)."""
    from scipy.stats import t

    return float(t.ppf((1 + level) / 2, df))


def t_interval(
    values: Sequence[float], level: float = LEVEL, support: tuple[float, float] = UNBOUNDED
) -> Interval | None:
    """mean ± t_{(1+level)/2, n-1} · s / sqrt(n) over the finite values, the bounds clipped to ``support``.

    None for no values; a single value gives a degenerate interval (n = 1 says there is none).
    """
    values = [float(v) for v in values if finite(v)]
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, mean, mean, 1)
    se = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) / math.sqrt(n)
    half = t_quantile(n - 1, level) * se
    return Interval(mean, _clip(mean - half, support), _clip(mean + half, support), n, float(n - 1), se)


def satterthwaite_df(parts: Sequence[tuple[float, float]]) -> float:
    """nu = V^2 / sum_k (v_k^2 / df_k) of variance parts (v_k, df_k), V = sum_k v_k; inf when V = 0."""
    total = sum(v for v, _ in parts)
    denominator = sum(v * v / df for v, df in parts if v > 0)
    return math.inf if denominator == 0 else total * total / denominator


def component_interval(
    estimate: float,
    parts: Sequence[tuple[float, float]],
    n: int,
    level: float = LEVEL,
    support: tuple[float, float] = UNBOUNDED,
) -> Interval:
    """estimate ± t_{(1+level)/2, nu} · sqrt(sum_k v_k) for independent variance parts (v_k, df_k) of
    the estimate (v_k >= 0: the variance each part adds to the estimate, not a per-unit variance),
    nu their Welch-Satterthwaite degrees of freedom; bounds clipped to ``support``. ``n``: the runs
    the estimate rests on (reported, not used)."""
    variance = sum(v for v, _ in parts)
    df = satterthwaite_df(parts)
    se = math.sqrt(variance)
    half = t_quantile(df, level) * se if variance > 0 else 0.0
    return Interval(estimate, _clip(estimate - half, support), _clip(estimate + half, support), n, df, se)


def finite(value: object) -> bool:
    """A finite int or float (not a bool, None or a string)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
