"""Means, interquartile means and bootstrap intervals (pure)."""

import math

import numpy as np
import pytest

from core.stats import Estimate, bootstrap_ci, iqm, paired_difference_ci


def test_iqm_trims_a_quarter_at_each_end():
    assert iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5)  # mean of 3..6
    assert iqm([1, 2, 3]) == pytest.approx(2.0)  # fewer than 4: the mean
    assert math.isnan(iqm([]))


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_n():
    rng = np.random.default_rng(1)
    small, large = rng.normal(0.3, 0.15, 50), rng.normal(0.3, 0.15, 2000)
    lo_s, hi_s = bootstrap_ci(small)
    lo_l, hi_l = bootstrap_ci(large)
    assert lo_s < small.mean() < hi_s and lo_l < large.mean() < hi_l
    assert (hi_l - lo_l) < (hi_s - lo_s) / 4
    # about 1.96 standard errors each side for a large sample
    assert (hi_l - lo_l) / 2 == pytest.approx(1.96 * 0.15 / math.sqrt(2000), rel=0.15)
    assert all(math.isnan(v) for v in bootstrap_ci([0.3]))  # one value: no spread to speak of


def test_paired_differences_use_only_complete_pairs():
    mean, lo, hi = paired_difference_ci([0.31, 0.33, 0.30, math.nan], [0.30, 0.30, 0.29, 0.2])
    assert mean == pytest.approx((0.01 + 0.03 + 0.01) / 3)
    assert lo <= mean <= hi
    e = Estimate.of([1.0, 2.0, 3.0, float("nan")])
    assert e.n == 3 and e.mean == 2.0 and e.low <= 2.0 <= e.high
