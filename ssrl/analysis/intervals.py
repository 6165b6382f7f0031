"""95% intervals over seeds: Student's t-interval of a mean, and of a paired difference."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

LEVEL = 0.95


@dataclass(frozen=True)
class Interval:
    """mean, and the t-interval [low, high] at LEVEL over n values; low = high = mean when n = 1."""

    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f}" if self.n < 2 else f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def fmt(self, digits: int) -> str:
        if self.n < 2:
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def t_interval(values: Sequence[float], level: float = LEVEL) -> Interval | None:
    """mean ± t_{(1+level)/2, n-1} · s / sqrt(n), s the sample standard deviation (ddof 1).

    None for no values; a single value gives a degenerate interval (n = 1 says there is none).
    """
    from scipy.stats import t

    values = [float(v) for v in values if _finite(v)]
    n = len(values)
    if n == 0:
        return None
    mean = sum(values) / n
    if n == 1:
        return Interval(mean, mean, mean, 1)
    s = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = float(t.ppf((1 + level) / 2, n - 1)) * s / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n)


def paired_interval(after: Sequence[float], before: Sequence[float], level: float = LEVEL) -> Interval | None:
    """The t-interval of the per-seed differences after_i - before_i (a paired comparison), over the
    seeds where both are finite numbers."""
    return t_interval([a - b for a, b in zip(after, before, strict=True) if _finite(a) and _finite(b)], level)


def _finite(value: object) -> bool:
    """A finite int or float (not a bool, None or a string)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
