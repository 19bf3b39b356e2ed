"""The results writer and reader contract (no Ray: Tune's hooks called with plain trial objects)."""

import errno
import math
import types

import pandas as pd
import pytest

from core import schema
from study.results import ResultsWriter, select_model, supersedes


def trial(trial_id, status="RUNNING", config=None, last=None):
    return types.SimpleNamespace(
        trial_id=trial_id, status=status, config=config or {"lr": 1e-3}, last_result=last or {}
    )


def result(iteration, rouge, t, **extra):
    return {
        "training_iteration": iteration,
        schema.ROUGEL: rouge,
        schema.VAL_LOSS: 2.0 - rouge,
        schema.REPORT_TIME_S: 1000.0 + t,
        schema.TRIAL_EPOCHS: 0.5 * iteration,
        schema.ENERGY_TOTAL_J: 10.0 * iteration,
        schema.COST_USD: None,
        schema.SEGMENT: 1,
        schema.CHECKPOINT_PATH: f"run/checkpoint_{t}",
        "config": {"lr": 1e-3},
        **extra,
    }


def writer(tmp_path):
    return ResultsWriter(
        tmp_path, "s", "grid", 0, 1000.0, schema.ROUGEL, "max", max_reports=4, flush_interval_s=0.0
    )


def test_rows_round_trip_with_declared_types(tmp_path):
    w = writer(tmp_path)
    a = trial("t_00000")
    w.on_trial_result(0, [a], a, result(1, 0.1, 1))
    w.on_trial_result(0, [a], a, result(2, 0.3, 2))
    a.status, a.last_result = "TERMINATED", {"training_iteration": 2}
    w.on_trial_complete(0, [a], a)
    reports = pd.read_parquet(tmp_path / schema.REPORTS_FILE)
    assert list(reports[schema.ITERATION]) == [1, 2] and reports[schema.REPORT_ID].is_unique
    # all missing stays missing: a float NaN column whose sum is NaN, not Arrow nulls summing to 0
    assert reports[schema.COST_USD].dtype == float and math.isnan(
        reports[schema.COST_USD].sum(min_count=1)
    )
    assert str(reports[schema.TIMESTAMP_UTC].dt.tz) == "UTC"
    trials = pd.read_parquet(tmp_path / schema.TRIALS_FILE)
    assert trials[schema.STOP_REASON].tolist() == ["scheduler_stopped"]  # 2 of 4 reports
    assert w.selected()[schema.ROUGEL] == 0.3


def test_a_trial_that_errors_before_reporting_has_a_row(tmp_path):
    w = writer(tmp_path)
    a, b = trial("t_00000"), trial("t_00001", config={"lr": 0.5})
    w.on_trial_result(0, [a, b], a, result(1, 0.1, 1))
    w.on_trial_error(0, [a, b], b)
    trials = pd.read_parquet(tmp_path / schema.TRIALS_FILE).set_index(schema.TRIAL_ID)
    assert (
        trials.loc["t_00001", schema.STATUS] == "ERROR"
        and trials.loc["t_00001", schema.N_REPORTS] == 0
    )
    assert trials.loc["t_00001", "config/lr"] == 0.5


def test_a_restart_supersedes_the_lost_reports(tmp_path):
    w = writer(tmp_path)
    a = trial("t_00000")
    for i in (1, 2, 3):
        w.on_trial_result(0, [a], a, result(i, 0.1 * i, i))
    # the trial restarts from its own checkpoint of report 1: reports 2 and 3 are made again
    again = {schema.RESTORED_FROM: "t_00000", schema.RESTORED_FROM_ITERATION: 1, schema.SEGMENT: 2}
    w.on_trial_result(0, [a], a, result(2, 0.25, 10, **again))
    w.on_trial_result(0, [a], a, result(3, 0.35, 11, **again))
    reports = pd.read_parquet(tmp_path / schema.REPORTS_FILE)
    assert list(reports[schema.ITERATION]) == [1, 2, 3] and list(reports[schema.SEGMENT]) == [
        1,
        2,
        2,
    ]
    # a PBT exploit (another trial's checkpoint) supersedes nothing
    exploit = {
        schema.TRIAL_ID: "t_00001",
        schema.RESTORED_FROM: "t_00000",
        schema.RESTORED_FROM_ITERATION: 1,
        schema.SEGMENT: 2,
        schema.ITERATION: 2,
    }
    assert not supersedes(
        exploit, {schema.TRIAL_ID: "t_00001", schema.ITERATION: 3, schema.SEGMENT: 1}
    )


def test_a_full_disk_keeps_every_row_and_leaves_no_half_file(tmp_path, monkeypatch):
    w = writer(tmp_path)
    a = trial("t_00000")
    w.on_trial_result(0, [a], a, result(1, 0.1, 1))
    real = pd.DataFrame.to_parquet

    def full(self, path, *args, **kwargs):  # what a full disk does to the write (ENOSPC)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", full)
    with pytest.warns(RuntimeWarning, match="No space left on device.*2 reports kept in memory"):
        w.on_trial_result(0, [a], a, result(2, 0.2, 2))
    assert len(pd.read_parquet(tmp_path / schema.REPORTS_FILE)) == 1  # the old table, intact
    assert not list(tmp_path.glob(".*tmp*"))
    monkeypatch.setattr(pd.DataFrame, "to_parquet", real)
    w.on_trial_result(0, [a], a, result(3, 0.3, 3))
    assert len(pd.read_parquet(tmp_path / schema.REPORTS_FILE)) == 3


def test_a_diverged_trial_with_no_finite_metric_does_not_break_the_tables(tmp_path):
    w = ResultsWriter(
        tmp_path, "s", "grid", 0, 1000.0, schema.VAL_LOSS, "min", 4, flush_interval_s=0.0
    )
    a = trial("t_00000")
    w.on_trial_result(0, [a], a, {**result(1, 0.0, 1), schema.VAL_LOSS: float("nan")})
    trials = pd.read_parquet(tmp_path / schema.TRIALS_FILE)
    assert math.isnan(trials["best_timestamp_s"].iloc[0])
    assert w.selected() is None


def test_the_selected_model_is_the_best_validation_report_ties_to_the_earliest():
    rows = [
        {schema.ROUGEL: 0.3, schema.TIMESTAMP_S: 2.0, schema.CHECKPOINT_PATH: "b"},
        {schema.ROUGEL: 0.3, schema.TIMESTAMP_S: 1.0, schema.CHECKPOINT_PATH: "a"},
        {
            schema.ROUGEL: 0.4,
            schema.TIMESTAMP_S: 3.0,
            schema.CHECKPOINT_PATH: None,
        },  # no checkpoint
        {schema.ROUGEL: float("nan"), schema.TIMESTAMP_S: 0.5, schema.CHECKPOINT_PATH: "c"},
    ]
    assert select_model(rows, schema.ROUGEL, "max")[schema.CHECKPOINT_PATH] == "a"
    assert select_model(rows[:2], schema.ROUGEL, "min")[schema.CHECKPOINT_PATH] == "a"
    assert select_model([], schema.ROUGEL, "max") is None


def test_trials_that_keep_failing_stop_the_study(tmp_path):
    # A sampler starts trials until its budget is spent; errored trials spend next to nothing,
    # so without this a setting every trial trips on would start trials for ever.
    from study.budget import Budget, BudgetStopper
    from study.results import ERRORS_IN_A_ROW

    w = writer(tmp_path)
    w.budget_stopper = BudgetStopper(Budget("trial_epochs", 4.0, "cluster"), pue=1.0)
    done = trial("t_00000", last=result(4, 0.2, 1))
    w.on_trial_error(0, [], trial("t_00001"))
    w.on_trial_complete(0, [], done)  # a success in between resets the count
    for i in range(2, 2 + ERRORS_IN_A_ROW - 1):
        w.on_trial_error(0, [], trial(f"t_{i:05d}"))
    assert not w.budget_stopper.stop_all()
    w.on_trial_error(0, [], trial("t_00099"))
    assert w.budget_stopper.stop_all() and w.budget_stopper.reason is None  # not the budget
    assert (
        w.budget_stopper.halted
        == f"{ERRORS_IN_A_ROW} trials in a row ended in ERROR; see their error.txt"
    )
