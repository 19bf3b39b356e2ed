"""The study budget: one unit, spent not predicted (pure; no Ray)."""

import pytest

from core import schema
from core.config import BudgetConfig, ConfigError
from study.budget import (
    Budget,
    BudgetStopper,
    ClusterSpend,
    spend_of_trials,
    spent_in,
    spent_reason,
    study_budget,
)


def report(epochs, device_s=0.0, energy_j=None, co2=None, cost=None):
    return {
        schema.TRIAL_EPOCHS: epochs,
        schema.DEVICE_S: device_s,
        schema.ENERGY_TOTAL_J: energy_j,
        schema.CO2_KG: co2,
        schema.COST_USD: cost,
    }


def test_the_default_is_one_grid_pass_in_trial_epochs():
    assert study_budget(BudgetConfig(), default_trial_epochs=16) == Budget(
        "trial_epochs", 16.0, "cluster"
    )
    assert study_budget(BudgetConfig(device_hours=2), 16) == Budget("device_hours", 2.0, "cluster")


def test_one_budget_at_a_time():
    with pytest.raises(ConfigError, match="set one budget, not 2"):
        BudgetConfig(trial_epochs=8, energy_kwh=1).validate()
    with pytest.raises(ConfigError, match="budget.scope='rack'"):
        BudgetConfig(scope="rack").validate()
    with pytest.raises(ConfigError, match="budget.energy_kwh=inf"):
        BudgetConfig(energy_kwh=float("inf")).validate()


def test_spend_adds_each_trials_latest_totals():
    latest = {
        "a": report(2.0, 3600.0, 3.6e6, 0.4, None),
        "b": report(0.5, 1800.0, 1.8e6, 0.2, None),
    }
    spend = spend_of_trials(latest, pue=1.5)
    assert spend.trial_epochs == 2.5 and spend.device_hours == pytest.approx(1.5)
    assert spend.trials_energy_kwh == pytest.approx(1.5 * 1.5)  # 1.5 kWh at the IT equipment x PUE
    assert spend.trials_co2_kg == pytest.approx(0.6)
    assert spend.trials_cost_usd is None  # a local machine: no price, never zero


def test_cluster_units_count_the_whole_cluster_unless_asked_for_trials():
    spend = spend_of_trials(
        {"a": report(1.0, 60.0, 3.6e6)}, pue=1.0, cluster=ClusterSpend(2.5, 0.9, 7.0)
    )
    assert spent_in(Budget("energy_kwh", 2.0, "cluster"), spend) == 2.5
    assert spent_in(Budget("energy_kwh", 2.0, "trials"), spend) == pytest.approx(1.0)
    assert spent_in(Budget("cost_usd", 5.0, "cluster"), spend) == 7.0
    assert (
        spent_reason(Budget("energy_kwh", 2.0, "cluster"), spend)
        == "budget.energy_kwh: spent 2.5 >= 2"
    )
    assert spent_reason(Budget("energy_kwh", 2.0, "trials"), spend) is None


def test_the_stopper_stops_everything_once_spent_and_asks_the_meter_only_when_needed():
    calls = []

    def cluster():
        calls.append(1)
        return ClusterSpend(None, None, None)

    stopper = BudgetStopper(Budget("trial_epochs", 4.0, "cluster"), pue=1.2, cluster=cluster)
    assert not stopper("a", report(1.5)) and not stopper("b", report(2.0))
    assert stopper("a", report(2.0))  # 2.0 + 2.0: the budget is spent
    assert stopper.stop_all() and stopper.reason == "budget.trial_epochs: spent 4 >= 4"
    assert calls == []  # trial-epochs need no cluster reading
    energy = BudgetStopper(Budget("energy_kwh", 1.0, "cluster"), pue=1.2, cluster=cluster)
    assert not energy("a", report(1.0))  # not measured yet: not spent
    assert calls == [1]
    assert "cluster" not in {k for k, v in energy.__getstate__().items() if v is not None}
