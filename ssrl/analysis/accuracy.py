"""Test accuracies over seeds with test-set sampling in their intervals.

Every run of a data set scores the same M test images, so the images are crossed with the seeds (and
with the baseline's random initialisations), not nested in them: one test set was drawn, once, for all
runs. A group of n runs (a cell's seeds, or the baseline's K inits) gives a 0/1 table c (n x M),
c_si = 1 when run s classifies test image i correctly, and the group's accuracy A = mean_si c_si. In the
two-way random-effects model c_si = mu + a_s + b_i + e_si (a: the run, b: the image, e: the rest)

    Var(A) = s_run^2 / n + s_img^2 / M + s_e^2 / (n M),

estimated without bias from the mean squares of the table (rows r_s, columns cbar_i, grand mean A):

    MS_run = M sum_s (r_s - A)^2 / (n - 1),   MS_img = n sum_i (cbar_i - A)^2 / (M - 1),
    MS_e = sum_si (c_si - r_s - cbar_i + A)^2 / ((n - 1)(M - 1)),
    Var(A) ~ (MS_run - MS_e) / (n M)  [the runs' part, floored at 0; df n - 1]
           + MS_img / (n M)            [the images' part: Var_i(cbar_i) / M; df M - 1].

A difference between groups on the same images (a cell against the baseline, an arm against a
control) D = A_1 - A_2 keeps each group's runs' part and one images' part from the per-image
differences d_i = cbar_1,i - cbar_2,i: Var_i(d_i) / M, so an image that both get right or wrong cancels.
The interval is D ± t_{0.975, nu} sqrt(V) with Satterthwaite's nu (ssrl.analysis.intervals), clipped to
the statistic's range. The runs' part alone is what a t-interval over seeds measures; the images' part
is what it left out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ssrl.analysis.intervals import LEVEL, Interval, component_interval

ACCURACY = (0.0, 1.0)
DIFFERENCE = (-1.0, 1.0)


def correctness(bits: Sequence[str]) -> np.ndarray:
    """A 0/1 table (runs x images) from per-run strings of "0"/"1" (summary.json's per_image); all the
    same length. Raises ValueError otherwise."""
    lengths = {len(b) for b in bits}
    if len(lengths) != 1 or not set("".join(bits)) <= {"0", "1"}:
        raise ValueError(f"per-image correctness must be strings of 0/1 of one length, got lengths {sorted(lengths)}")
    return np.array([[c == "1" for c in b] for b in bits], dtype=np.float64)


@dataclass(frozen=True)
class Group:
    """The 0/1 correctness table (n runs x M images) of one group of runs."""

    table: np.ndarray

    @property
    def n(self) -> int:
        return self.table.shape[0]

    @property
    def images(self) -> int:
        return self.table.shape[1]

    @property
    def accuracy(self) -> float:
        return float(self.table.mean())

    @property
    def per_image(self) -> np.ndarray:
        """cbar_i: the share of the group's runs that got image i right."""
        return self.table.mean(axis=0)

    def runs_part(self) -> tuple[float, float]:
        """(the runs' variance part (MS_run - MS_e) / (n M), floored at 0; its df n - 1)."""
        n, m = self.table.shape
        rows, cols, grand = self.table.mean(axis=1), self.per_image, self.accuracy
        ms_run = m * float(((rows - grand) ** 2).sum()) / (n - 1)
        residual = self.table - rows[:, None] - cols[None, :] + grand
        ms_e = float((residual**2).sum()) / ((n - 1) * (m - 1))
        return max(0.0, (ms_run - ms_e) / (n * m)), float(n - 1)


def images_part(per_image: np.ndarray) -> tuple[float, float]:
    """(Var_i(x_i) / M of per-image values x (ddof 1), its df M - 1): the test-set sampling part."""
    m = len(per_image)
    return float(per_image.var(ddof=1)) / m, float(m - 1)


def accuracy_interval(group: Group, level: float = LEVEL) -> Interval:
    """The group's mean accuracy with its interval (runs and test images); the mean only for n = 1."""
    if group.n < 2:
        return Interval(group.accuracy, group.accuracy, group.accuracy, group.n)
    parts = [group.runs_part(), images_part(group.per_image)]
    return component_interval(group.accuracy, parts, group.n, level, ACCURACY)


def difference_parts(first: Group, second: Group) -> list[tuple[float, float]]:
    """The variance parts of first.accuracy - second.accuracy (same test images, in the same order)."""
    if first.images != second.images:
        raise ValueError(f"groups scored different test sets ({first.images} and {second.images} images)")
    return [first.runs_part(), second.runs_part(), images_part(first.per_image - second.per_image)]


def difference_interval(first: Group, second: Group, level: float = LEVEL) -> Interval | None:
    """first.accuracy - second.accuracy with its interval; None when a group has fewer than 2 runs."""
    if first.n < 2 or second.n < 2:
        return None
    estimate = first.accuracy - second.accuracy
    return component_interval(estimate, difference_parts(first, second), first.n, level, DIFFERENCE)


def run_difference_interval(run: Group, baseline: Group, level: float = LEVEL) -> Interval:
    """One run (n = 1) minus a group of runs on the same images, with an interval from the group's runs'
    part and the images' part of the per-image differences. The one run's own seed-to-seed variance cannot
    be estimated from it and is left out (``difference_interval`` over a cell's seeds has it)."""
    if run.images != baseline.images:
        raise ValueError(f"groups scored different test sets ({run.images} and {baseline.images} images)")
    parts = [images_part(run.per_image - baseline.per_image)] + ([baseline.runs_part()] if baseline.n > 1 else [])
    return component_interval(run.accuracy - baseline.accuracy, parts, 1, level, DIFFERENCE)


def one_sided_p(estimate: float, se: float, df: float, margin: float) -> tuple[float, float]:
    """(p of "the effect is at most ``margin``", p of "the effect is at least ``margin``"): the
    one-sided t-tests of (estimate - margin) / se at ``df`` degrees of freedom."""
    from scipy.stats import t

    if se == 0 or not math.isfinite(se):
        above = estimate > margin
        return (0.0, 1.0) if above else (1.0, 0.0) if estimate < margin else (1.0, 1.0)
    statistic = (estimate - margin) / se
    return float(t.sf(statistic, df)), float(t.cdf(statistic, df))
