"""The verdict: a winner per objective with its paired margin, or 'do not differ' (pure)."""

import math

import pandas as pd

from analysis.verdict import OBJECTIVES, judge
from core.schema import (
    CLUSTER_COST_TO_TARGET_USD,
    CLUSTER_ENERGY_TO_TARGET_KWH,
    SEED,
    STRATEGY,
    TEST_ROUGEL,
)


def per_study(values: dict[str, list[float]], column: str) -> pd.DataFrame:
    return pd.DataFrame(
        [{STRATEGY: s, SEED: i, column: v} for s, vs in values.items() for i, v in enumerate(vs)]
    )


ROUGE, ENERGY, COST = OBJECTIVES[0], OBJECTIVES[1], OBJECTIVES[3]


def test_a_clear_winner_on_paired_seeds():
    # asha beats grid by 0.02 on every seed: the paired interval excludes zero
    table = per_study(
        {"grid": [0.30, 0.31, 0.29], "asha": [0.32, 0.33, 0.31], "pbt": [0.28, 0.30, 0.27]},
        TEST_ROUGEL,
    )
    v = judge(ROUGE, table)
    assert v.winner == "asha" and v.runner_up == "grid" and v.differs is True
    assert math.isclose(v.margin, 0.02) and v.low > 0
    assert "Best test ROUGE-L: asha, 0.3200 against 0.3000 for grid" in v.sentence
    assert "over 3 paired seeds" in v.sentence and "the winner at 95 %" in v.sentence


def test_noise_is_called_noise():
    # the means differ, but the paired differences straddle zero
    table = per_study({"grid": [0.30, 0.33, 0.29], "asha": [0.32, 0.30, 0.31]}, TEST_ROUGEL)
    v = judge(ROUGE, table)
    assert v.differs is False and v.low < 0 < v.high
    assert "the strategies do not differ at 95 %" in v.sentence


def test_least_energy_to_target_and_strategies_that_never_reached_it():
    table = per_study(
        {
            "grid": [2.0e-3, 2.2e-3, 1.8e-3],
            "asha": [1.0e-3, 1.2e-3, 0.9e-3],
            "pbt": [1.5e-3, math.nan, 1.4e-3],
        },
        CLUSTER_ENERGY_TO_TARGET_KWH,
    )
    v = judge(ENERGY, table, target=0.29)
    assert v.winner == "asha" and v.runner_up == "grid" and v.differs is True
    assert (
        "Least whole-cluster energy to reach the target (validation ROUGE-L 0.2900): asha"
        in v.sentence
    )
    assert "0.52x" in v.sentence  # 1.033 Wh / 2.0 Wh
    assert "pbt reached it in 2/3 seeds" in v.sentence


def test_not_applicable_and_single_seed():
    assert (
        "not applicable"
        in judge(COST, per_study({"grid": [math.nan]}, CLUSTER_COST_TO_TARGET_USD)).sentence
    )
    v = judge(ROUGE, per_study({"grid": [0.30], "asha": [0.31]}, TEST_ROUGEL))
    assert v.differs is None and "not decidable" in v.sentence  # no test scores to pair examples on
