"""A study budget in kWh, kg CO2 or dollars: stop the whole study once it is spent.

`spent_budget` is the decision, a pure function over each trial's latest running totals;
`BudgetStopper` is the thin Tune adapter.
"""

from __future__ import annotations

from typing import Any

from ray.tune import Stopper

from study import schema
from study.config import BudgetConfig
from study.footprint import J_PER_KWH


def spent_budget(latest: dict[str, dict[str, Any]], budget: BudgetConfig) -> str | None:
    """Which budget is spent (e.g. 'energy_kwh 0.0021 >= 0.002'), or None while all remain."""
    def total(column: str) -> float:
        return sum(float(r.get(column) or 0.0) for r in latest.values())

    checks = (("energy_kwh", budget.energy_kwh, total(schema.ENERGY_TOTAL_J) / J_PER_KWH),
              ("co2_kg", budget.co2_kg, total(schema.CO2_KG)),
              ("cost_usd", budget.cost_usd, total(schema.COST_USD)))
    for name, limit, spent in checks:
        if limit and spent >= limit:
            return f"budget.{name}: spent {spent:.6g} >= {limit:.6g}"
    return None


class BudgetStopper(Stopper):
    def __init__(self, budget: BudgetConfig):
        self.budget = budget
        self.latest: dict[str, dict[str, Any]] = {}
        self.reason: str | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.latest[trial_id] = result
        self.reason = self.reason or spent_budget(self.latest, self.budget)
        return self.reason is not None

    def stop_all(self) -> bool:
        return self.reason is not None
