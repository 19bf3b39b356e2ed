"""Per-strategy figures checked against hand-computed numbers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from analysis_fixtures import (
    ASHA_TOTAL_J,
    G_PER_KWH,
    GPU_W,
    GRID_TOTAL_J,
    USD_PER_H,
    asha_rows,
    grid_rows,
    report_row,
    write_study,
)

from analysis.load import load_studies
from analysis.summary import (
    J_PER_KWH,
    best_so_far,
    default_target,
    pareto_front,
    per_study_summary,
    strategy_summary,
    study_cumulative,
    trial_totals,
    what_if_region,
)
from core.schema import (
    BEST_CONFIG,
    BEST_PREFIX,
    CO2_KG,
    CO2_LB,
    COST_TO_TARGET_USD,
    COST_USD,
    DEVICE_H,
    ENERGY_CPU_KWH,
    ENERGY_ESTIMATED_KWH,
    ENERGY_GPU_KWH,
    ENERGY_KWH,
    ENERGY_MEASURED_KWH,
    ENERGY_MEASURED_SHARE,
    ENERGY_RAM_KWH,
    ENERGY_TO_TARGET_KWH,
    ENERGY_TOTAL_J,
    N_RUNNING,
    N_SEEDS,
    ROUGE1,
    ROUGEL,
    ROUGELSUM,
    STRATEGY,
    TARGET_REACHED_SEEDS,
    TARGET_ROUGEL,
    TIME_TO_TARGET_S,
    TRIAL_EPOCHS,
    TRIAL_ID,
    TRIALS_FINISHED,
    TRIALS_STARTED,
    TRIALS_STOPPED_EARLY,
    WALL_S,
    X_COST_USD,
    X_ENERGY_KWH,
    X_WALL_S,
)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def studies(tmp_path):
    paths = [
        write_study(tmp_path, "grid", 0, grid_rows(1.0), wall_s=400),
        write_study(tmp_path, "grid", 1, grid_rows(3.0), wall_s=600),
        write_study(tmp_path, "asha", 0, asha_rows(), {"c": "scheduler_stopped"}, wall_s=250),
    ]
    return load_studies(paths)


def row_of(table: pd.DataFrame, strategy: str) -> pd.Series:
    return table.set_index(STRATEGY).loc[strategy]


def test_study_cumulative_sums_each_trials_increments(studies):
    grid0 = studies[0].reports
    assert list(study_cumulative(grid0, ENERGY_TOTAL_J)) == [1250, 1875, 3125, 4375]
    # a column nobody measured stays NaN, never zero
    nan = grid0.assign(**{ENERGY_TOTAL_J: np.nan})
    assert study_cumulative(nan, ENERGY_TOTAL_J).isna().all()


def test_best_so_far_against_energy_cost_and_time(studies):
    grid0 = studies[0].reports
    energy = best_so_far(grid0, ROUGEL, "max", x=X_ENERGY_KWH)
    assert energy[X_ENERGY_KWH].tolist() == pytest.approx(
        [v / J_PER_KWH for v in (1250, 1875, 3125, 4375)]
    )
    assert energy[BEST_PREFIX + ROUGEL].tolist() == [0.20, 0.25, 0.30, 0.35]
    wall = best_so_far(grid0, ROUGEL, "max", x=X_WALL_S)
    assert wall[X_WALL_S].tolist() == [100, 150, 200, 300]
    cost = best_so_far(grid0, ROUGEL, "max", x=X_COST_USD)
    device_s = np.array([10, 15, 25, 35])  # gpu J / 100 W, cumulative over the study
    assert cost[X_COST_USD].tolist() == pytest.approx(list(device_s / 3600 * USD_PER_H))
    lowest = best_so_far(grid0, ROUGEL, "min", x=X_WALL_S)
    assert lowest[BEST_PREFIX + ROUGEL].tolist() == [0.20, 0.20, 0.20, 0.20]
    with pytest.raises(ValueError, match="x='watts'"):
        best_so_far(grid0, ROUGEL, "max", x="watts")


def test_totals_of_one_study(studies):
    t = per_study_summary(studies, target_rougeL=0.34).set_index("study")
    g0 = t.loc["grid-tiny-bart-builtin-seed0"]
    assert g0[ENERGY_KWH] == pytest.approx(GRID_TOTAL_J / J_PER_KWH)
    assert g0[ENERGY_GPU_KWH] == pytest.approx(3500 / J_PER_KWH)
    assert g0[ENERGY_CPU_KWH] == pytest.approx(700 / J_PER_KWH)
    assert g0[ENERGY_RAM_KWH] == pytest.approx(175 / J_PER_KWH)
    # GPU is a counter (measured); CPU and RAM are estimated: kept apart
    assert g0[ENERGY_MEASURED_KWH] == pytest.approx(3500 / J_PER_KWH)
    assert g0[ENERGY_ESTIMATED_KWH] == pytest.approx(875 / J_PER_KWH)
    assert g0[ENERGY_MEASURED_SHARE] == pytest.approx(0.8)
    assert g0["energy_gpu_source"] == "counter" and g0["energy_cpu_source"] == "estimated"
    assert g0[DEVICE_H] == pytest.approx(3500 / GPU_W / 3600)
    assert g0[CO2_KG] == pytest.approx(GRID_TOTAL_J / J_PER_KWH * G_PER_KWH / 1000)
    assert g0[CO2_LB] == pytest.approx(g0[CO2_KG] * 2.20462)
    assert g0[COST_USD] == pytest.approx(35 / 3600 * USD_PER_H)
    assert g0[TRIAL_EPOCHS] == 4
    assert (g0[TRIALS_STARTED], g0[TRIALS_STOPPED_EARLY], g0[TRIALS_FINISHED]) == (2, 0, 2)
    assert g0[WALL_S] == 400
    # best = the report with the best rougeL, its other ROUGE scores and its config
    assert g0[BEST_PREFIX + ROUGEL] == 0.35
    assert g0[BEST_PREFIX + ROUGE1] == pytest.approx(0.40)
    assert g0[BEST_PREFIX + ROUGELSUM] == pytest.approx(0.36)
    assert g0[BEST_CONFIG] == "lr=0.0003, batch_size=8"
    a0 = t.loc["asha-tiny-bart-builtin-seed0"]
    assert (a0[TRIALS_STARTED], a0[TRIALS_STOPPED_EARLY], a0[TRIALS_FINISHED]) == (2, 1, 1)
    assert a0[ENERGY_KWH] == pytest.approx(ASHA_TOTAL_J / J_PER_KWH)
    assert a0[TRIAL_EPOCHS] == 3


def test_spread_over_seeds(studies):
    t = strategy_summary(studies, target=0.34)
    grid = row_of(t, "grid")
    assert grid[N_SEEDS] == 2 and grid["seeds"] == "0,1"
    e1, e3 = GRID_TOTAL_J / J_PER_KWH, 3 * GRID_TOTAL_J / J_PER_KWH
    assert grid[f"{ENERGY_KWH}_mean"] == pytest.approx((e1 + e3) / 2)
    assert grid[f"{ENERGY_KWH}_std"] == pytest.approx(np.std([e1, e3], ddof=1))
    assert grid[f"{ENERGY_KWH}_min"] == pytest.approx(e1)
    assert grid[f"{ENERGY_KWH}_max"] == pytest.approx(e3)
    assert grid[f"{WALL_S}_mean"] == 500 and grid[f"{WALL_S}_std"] == pytest.approx(
        math.sqrt(2) * 100
    )
    asha = row_of(t, "asha")
    assert asha[N_SEEDS] == 1 and math.isnan(asha[f"{ENERGY_KWH}_std"])  # one seed: no spread
    assert list(t[STRATEGY]) == ["grid", "asha"]


def test_ratios_to_grid(studies):
    t = strategy_summary(studies, target=0.34)
    grid, asha = row_of(t, "grid"), row_of(t, "asha")
    assert grid[f"{ENERGY_KWH}_vs_grid"] == 1.0
    assert asha[f"{ENERGY_KWH}_vs_grid"] == pytest.approx(ASHA_TOTAL_J / (2 * GRID_TOTAL_J))
    assert asha[f"{TRIAL_EPOCHS}_vs_grid"] == pytest.approx(3 / 4)
    assert asha[f"{WALL_S}_vs_grid"] == pytest.approx(250 / 500)
    assert asha[f"{TIME_TO_TARGET_S}_vs_grid"] == pytest.approx(220 / 300)
    assert math.isnan(asha[f"{TRIALS_STOPPED_EARLY}_vs_grid"])  # grid stopped none: no ratio
    # without a grid study there is nothing to divide by
    alone = strategy_summary([s for s in studies if s.strategy == "asha"], target=0.34)
    assert alone[f"{ENERGY_KWH}_vs_grid"].isna().all()


def test_target_reaching_default_and_given(studies):
    assert default_target(studies) == pytest.approx(0.35 - 0.01)
    t = strategy_summary(studies)  # default: within 0.01 of the best (0.35) -> 0.34
    grid, asha = row_of(t, "grid"), row_of(t, "asha")
    assert grid[TARGET_ROUGEL] == pytest.approx(0.34)
    assert grid[TARGET_REACHED_SEEDS] == 2 and asha[TARGET_REACHED_SEEDS] == 1
    assert grid[f"{TIME_TO_TARGET_S}_mean"] == 300  # b's second report
    assert grid[f"{ENERGY_TO_TARGET_KWH}_mean"] == pytest.approx(2 * GRID_TOTAL_J / J_PER_KWH)
    assert grid[f"{COST_TO_TARGET_USD}_mean"] == pytest.approx(2 * 35 / 3600 * USD_PER_H)
    assert asha[f"{TIME_TO_TARGET_S}_mean"] == 220
    assert asha[f"{ENERGY_TO_TARGET_KWH}_mean"] == pytest.approx(2500 / J_PER_KWH)
    # a lower target is reached earlier: grid at a's second report (t=200, 3125 J on seed 0)
    low = row_of(strategy_summary(studies, target=0.30), "grid")
    assert low[f"{TIME_TO_TARGET_S}_mean"] == 200
    assert low[f"{ENERGY_TO_TARGET_KWH}_min"] == pytest.approx(3125 / J_PER_KWH)
    # an unreachable target: NaN, and no seed counted
    high = row_of(strategy_summary(studies, target=0.9), "grid")
    assert high[TARGET_REACHED_SEEDS] == 0 and math.isnan(high[f"{TIME_TO_TARGET_S}_mean"])


def test_cost_not_applicable_stays_nan(tmp_path):
    rows = [report_row("a", 10, 0.2, 100, 10, 1, iteration=1, cost=False)]
    (s,) = load_studies([write_study(tmp_path, "random", 0, rows)])
    t = strategy_summary([s])
    assert math.isnan(t[f"{COST_USD}_mean"].iloc[0])
    assert math.isnan(best_so_far(s.reports, x=X_COST_USD)[X_COST_USD].iloc[0])


def test_running_study_is_counted(tmp_path):
    paths = [
        write_study(tmp_path, "pbt", 0, grid_rows(1.0)),
        write_study(tmp_path, "pbt", 1, grid_rows(1.0)[:2], running=True, write_trials=False),
    ]
    t = strategy_summary(load_studies(paths))
    assert t[N_RUNNING].iloc[0] == 1
    assert t[f"{ENERGY_KWH}_min"].iloc[0] == pytest.approx(1875 / J_PER_KWH)  # the partial one


def test_pareto_front():
    pts = pd.DataFrame(
        {
            TRIAL_ID: list("abcdefg"),
            "x": [1.0, 2.0, 3.0, 4.0, 4.0, 0.5, np.nan],
            "y": [0.1, 0.3, 0.2, 0.4, 0.35, 0.05, 0.9],
        }
    )
    front = pareto_front(pts, "x", "y")
    assert list(front[TRIAL_ID]) == ["f", "a", "b", "d"]  # c and e are beaten; g has no x
    assert list(pareto_front(pts, "x", "y", x_mode="max", y_mode="min")[TRIAL_ID]) == [
        "e",
        "c",
        "a",
        "f",
    ]


def test_pareto_front_of_trial_totals(studies):
    trials = pd.concat([trial_totals(s.reports) for s in studies], ignore_index=True)
    front = pareto_front(trials, ENERGY_KWH, BEST_PREFIX + ROUGEL)
    # grid seed 0: a 2500 J .30, b 1875 J .35 (seed 1: 3x the energy)
    # asha: c 500 J .22, d 2000 J .345
    assert [(r[STRATEGY], r[TRIAL_ID]) for _, r in front.iterrows()] == [
        ("asha", "c"),
        ("grid", "b"),
    ]


def test_what_if_region(tmp_path):
    fp = {"region": "eastus", "intensity_g_per_kwh": 379.1, "pue": 1.2}
    paths = [
        write_study(tmp_path, "grid", 0, grid_rows(1.0), footprint=fp),
        write_study(tmp_path, "grid", 1, grid_rows(3.0), footprint={}),
    ]
    w = what_if_region(load_studies(paths), 200.0, "somewhere")
    row = w.iloc[0]
    e1, e3 = GRID_TOTAL_J / J_PER_KWH, 3 * GRID_TOTAL_J / J_PER_KWH
    # seed 0 keeps its PUE 1.2; seed 1 recorded none -> 1.0, and says so
    assert row["what_if_co2_kg_min"] == pytest.approx(e1 * 1.2 * 0.2)
    assert row["what_if_co2_kg_max"] == pytest.approx(e3 * 1.0 * 0.2)
    assert row["what_if_co2_kg_mean"] == pytest.approx((e1 * 1.2 * 0.2 + e3 * 0.2) / 2)
    assert not row["pue_recorded"]
    assert row["what_if_label"] == "somewhere" and row["basis"].startswith("counterfactual")
    with pytest.raises(ValueError, match="gCO2e/kWh"):
        what_if_region(load_studies(paths[:1]), -5)
