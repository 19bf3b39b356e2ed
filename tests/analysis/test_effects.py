"""The effects arithmetic: paired changes, the t-interval, the plan's expectations checked."""

import math

import pandas as pd
import pytest

from analysis.effects import Change, check, paired_change
from core import schema
from core.effects import Expectation
from core.stats import t_interval


def test_t_interval_against_a_hand_count():
    mean, low, high, n = t_interval([1.0, 2.0, 3.0])
    half = 4.303 * 1.0 / math.sqrt(3)  # t(0.975, 2 df) x sd / sqrt(n)
    assert (
        (mean, n) == (2.0, 3) and low == pytest.approx(2 - half) and high == pytest.approx(2 + half)
    )
    assert math.isnan(t_interval([5.0])[1]) and t_interval([])[3] == 0


def _measures(rows):
    return pd.DataFrame(
        rows, columns=[schema.VARIATION, schema.REPEAT, schema.SAMPLES_PER_S, schema.TEST_ROUGEL]
    )


def test_changes_are_paired_by_repeat():
    measures = _measures(
        [
            ("baseline", 0, 100.0, 0.30),
            ("baseline", 1, 200.0, 0.20),
            ("fast", 0, 110.0, 0.29),
            ("fast", 1, 220.0, 0.19),
            ("fast", 2, 999.0, 0.99),  # no baseline for repeat 2: not paired, not counted
        ]
    )
    speed = paired_change(measures, "fast", "baseline", "speed")
    assert (speed.mean, speed.n, speed.unit) == (pytest.approx(10.0), 2, "%")
    assert speed.low == pytest.approx(10.0) and speed.side == "up"  # +10 % on both seeds
    accuracy = paired_change(measures, "fast", "baseline", "accuracy")
    assert accuracy.unit == "points" and accuracy.mean == pytest.approx(-1.0)
    missing = paired_change(measures, "slow", "baseline", "speed")
    assert missing.n == 0 and check(Expectation("speed", "reduces"), missing).endswith(
        "not measurable here"
    )


@pytest.mark.parametrize(
    "expectation, change, verdict",
    [
        (
            Expectation("gpu_memory", "reduces"),
            Change(-38.0, -42.0, -34.0, 3),
            "yes, -38.0 % ± 4.0",
        ),
        (
            Expectation("speed", "increases"),
            Change(-3.0, -8.0, 2.0, 3),
            "no, -3.0 % ± 5.0, within noise",
        ),
        (
            Expectation("speed", "reduces"),
            Change(5.0, 1.0, 9.0, 3),
            "no, +5.0 % ± 4.0, the opposite",
        ),
        (
            Expectation("accuracy", "affects", True),
            Change(-2.0, -3.0, -1.0, 3, "points"),
            "yes, -2.0 points ± 1.0",
        ),
        (
            Expectation("accuracy", "affects"),
            Change(0.5, -1.0, 2.0, 3, "points"),
            "no, +0.5 points ± 1.5, within noise",
        ),
        (
            Expectation("runtime", "reduces"),
            Change(-20.0, math.nan, math.nan, 1),
            "no, -20.0 %, one seed: no interval",
        ),
    ],
)
def test_the_plan_s_expectation_is_checked_against_the_interval(expectation, change, verdict):
    assert check(expectation, change) == f"{expectation.phrase}: {verdict}"
