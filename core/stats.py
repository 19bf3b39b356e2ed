"""Summary statistics with their uncertainty: means, interquartile means, bootstrap intervals.

As HPO benchmarking reports them (Syne Tune's benchmarking, after Agarwal et al. 2021, "Deep RL
at the edge of the statistical precipice"): the interquartile mean (the mean of the middle 50 %)
beside the mean, and 95 % percentile-bootstrap intervals; paired differences for comparisons
made on the same seeds. Pure functions over sequences of floats; NaN values are ignored.

    >>> bootstrap_ci([0.30, 0.31, 0.29, 0.33])          # (low, high) of the mean
    >>> paired_difference_ci([0.31, 0.30], [0.29, 0.30])  # of mean(a - b)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 4000


def _clean(values: Sequence[float]) -> np.ndarray:
    arr = np.asarray([float(v) for v in values if v is not None], dtype=float)
    return arr[np.isfinite(arr)]


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: the mean of the middle 50 % (NaN for no values). Trims floor(n/4)
    values at each end, so with fewer than 4 values it is the plain mean."""
    arr = np.sort(_clean(values))
    if not len(arr):
        return math.nan
    cut = len(arr) // 4
    return float(arr[cut : len(arr) - cut].mean())


def bootstrap_ci(
    values: Sequence[float],
    statistic: Callable[[np.ndarray], float] = np.mean,
    confidence: float = CONFIDENCE,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of `statistic` (default: the mean); (nan, nan) for fewer
    than 2 values, since one value carries no spread."""
    arr = _clean(values)
    if len(arr) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(arr), size=(resamples, len(arr)))
    stats = np.apply_along_axis(statistic, 1, arr[draws])
    tail = (1 - confidence) / 2
    return float(np.quantile(stats, tail)), float(np.quantile(stats, 1 - tail))


def paired_difference_ci(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE, seed: int = 0
) -> tuple[float, float, float]:
    """(mean of a - b, low, high) over pairs where both are finite: the margin of `a` over `b`
    when both ran on the same seeds."""
    pairs = [
        (x, y)
        for x, y in zip(a, b, strict=True)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y)
    ]
    diffs = [x - y for x, y in pairs]
    if not diffs:
        return math.nan, math.nan, math.nan
    low, high = bootstrap_ci(diffs, confidence=confidence, seed=seed)
    return float(np.mean(diffs)), low, high


@dataclass(frozen=True)
class Estimate:
    """A mean with its interval, and how many values it rests on."""

    mean: float
    low: float
    high: float
    n: int
    iqm: float

    @classmethod
    def of(cls, values: Sequence[float], seed: int = 0) -> Estimate:
        arr = _clean(values)
        low, high = bootstrap_ci(arr, seed=seed)
        return cls(float(arr.mean()) if len(arr) else math.nan, low, high, len(arr), iqm(arr))

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2


# Student's t, two-sided 95 % (the 0.975 quantile), by degrees of freedom 1..30; 1.96 beyond.
T_975 = (
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
    2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
    2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042,
)  # fmt: skip


def t_interval(values: Sequence[float]) -> tuple[float, float, float, int]:
    """(mean, low, high, n) with the 95 % Student-t interval of the mean: the interval for a
    handful of paired differences (a bootstrap of 3 values has 10 distinct resamples). With one
    value the interval is NaN: one seed says nothing about the spread."""
    arr = _clean(values)
    n = len(arr)
    if n == 0:
        return math.nan, math.nan, math.nan, 0
    mean = float(arr.mean())
    if n == 1:
        return mean, math.nan, math.nan, 1
    t = T_975[n - 2] if n - 1 <= len(T_975) else 1.96
    half = t * float(arr.std(ddof=1)) / math.sqrt(n)
    return mean, mean - half, mean + half, n
