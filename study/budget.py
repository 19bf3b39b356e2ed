"""The study budget, spent rather than predicted: every strategy runs until it has spent it.

A budget has one unit (`core.config.BUDGET_UNITS`): trial-epochs (the default: one pass over the
grid), device-hours, energy (kWh x PUE), CO2 or billed dollars. Energy, CO2 and dollars count the
whole cluster by default (the cluster meter, idle time and start-up included: what the user
pays for), or the trials' own meters with `budget.scope=trials`.

`spent_in` is the arithmetic, a pure function over the figures spent so far (`Spend`);
`BudgetStopper` is the thin Tune adapter: it adds up each trial's latest running totals at every
report, asks the cluster meter for a fresh reading where the unit needs it, and stops the whole
study once the budget is spent. Samplers (random, ASHA) are unbounded, so they keep starting
trials until then; running trials are stopped with it (stop reason `budget`). The spend can
overshoot the budget by what was in flight: at most one report interval per running slot.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from ray.tune import Stopper

from core import schema
from core.config import BudgetConfig
from core.footprint import J_PER_KWH


@dataclass(frozen=True)
class Budget:
    unit: str  # one of core.config.BUDGET_UNITS
    amount: float
    scope: str  # cluster | trials (energy, CO2, dollars)

    @property
    def label(self) -> str:
        scope = f", {self.scope}" if self.unit in CLUSTER_UNITS else ""
        return f"budget.{self.unit}={self.amount:g}{scope}"


CLUSTER_UNITS = ("energy_kwh", "co2_kg", "cost_usd")


def study_budget(cfg: BudgetConfig, default_trial_epochs: float) -> Budget:
    """The study's budget; trial-epochs of one grid pass when none is set."""
    amount = cfg.amount or (default_trial_epochs if cfg.unit == "trial_epochs" else 0)
    return Budget(cfg.unit, float(amount), cfg.scope)


@dataclass(frozen=True)
class ClusterSpend:
    """The cluster meter's running totals (None where not measured or not priced)."""

    energy_kwh: float | None  # IT energy x PUE
    co2_kg: float | None
    cost_usd: float | None  # billed


@dataclass(frozen=True)
class Spend:
    """What a study has spent so far, in every unit a budget may use."""

    trial_epochs: float
    device_hours: float
    trials_energy_kwh: float | None  # the trials' own meters x PUE
    trials_co2_kg: float | None
    trials_cost_usd: float | None  # attributed
    cluster: ClusterSpend | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def spent_in(budget: Budget, spend: Spend) -> float | None:
    """The spend in the budget's unit; None where that figure is not known."""
    if budget.unit == "trial_epochs":
        return spend.trial_epochs
    if budget.unit == "device_hours":
        return spend.device_hours
    if budget.scope == "cluster":
        return getattr(spend.cluster, budget.unit) if spend.cluster else None
    return getattr(spend, f"trials_{budget.unit}")


def spend_of_trials(
    latest: dict[str, dict[str, Any]], pue: float, cluster: ClusterSpend | None = None
) -> Spend:
    """A study's spend from each trial's latest report (running totals), and the cluster's."""

    def total(column: str) -> float | None:
        values = [r.get(column) for r in latest.values()]
        known = [float(v) for v in values if v is not None and v == v]  # v == v: not NaN
        return sum(known) if known else None

    energy_j = total(schema.ENERGY_TOTAL_J)
    return Spend(
        trial_epochs=total(schema.TRIAL_EPOCHS) or 0.0,
        device_hours=(total(schema.DEVICE_S) or 0.0) / 3600.0,
        trials_energy_kwh=energy_j / J_PER_KWH * pue if energy_j is not None else None,
        trials_co2_kg=total(schema.CO2_KG),
        trials_cost_usd=total(schema.COST_USD),
        cluster=cluster,
    )


def spent_reason(budget: Budget, spend: Spend) -> str | None:
    """'budget.trial_epochs: spent 32.1 >= 32' once spent, else None."""
    value = spent_in(budget, spend)
    if value is not None and budget.amount > 0 and value >= budget.amount:
        return f"budget.{budget.unit}: spent {value:.6g} >= {budget.amount:.6g}"
    return None


class BudgetStopper(Stopper):
    """Stops the whole study once its budget is spent (Tune calls it at every report)."""

    def __init__(
        self, budget: Budget, pue: float, cluster: Callable[[], ClusterSpend] | None = None
    ):
        self.budget, self.pue = budget, pue
        self.cluster = cluster  # a fresh cluster reading; only where the unit needs it
        self.latest: dict[str, dict[str, Any]] = {}
        self.reason: str | None = None
        self.halted: str | None = None  # the study stopped for another cause (halt)

    def needs_cluster(self) -> bool:
        return self.budget.unit in CLUSTER_UNITS and self.budget.scope == "cluster"

    def spend(self) -> Spend:
        cluster = self.cluster() if self.cluster is not None and self.needs_cluster() else None
        return spend_of_trials(self.latest, self.pue, cluster)

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        self.latest[trial_id] = result
        self.reason = self.reason or spent_reason(self.budget, self.spend())
        return self.reason is not None

    def halt(self, why: str) -> None:
        """Stop the whole study now, not for its budget (e.g. trials that keep failing)."""
        self.halted = self.halted or why

    def stop_all(self) -> bool:
        return self.reason is not None or self.halted is not None

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its stopper into the experiment state; the meter reader is rebuilt.
        return {**self.__dict__, "cluster": None}
