"""The tuning strategies greentune knows, as data: what each is, what it needs, how it is drawn.

This table is the one place a strategy's user-facing facts live: the CLI's choices and --help,
`compare --strategies`, the report's colours and order, and the README's table of strategies
read it (a test checks the README against it). The code that turns an entry into Ray Tune
objects is `study/strategies.py`, one entry there per entry here (tested).

`budget` says what the strategy derives from the study budget (the spent-budget rule: every
strategy runs until the same budget is spent; see `study/budget.py`).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

EXTRA = "strategies"  # the pyproject extra that installs every optional strategy package


@dataclass(frozen=True)
class StrategyInfo:
    name: str
    title: str  # what it is, with the Ray Tune objects it is built from
    budget: str  # what it derives from the budget
    color: str  # in every plot of the report
    packages: tuple[tuple[str, str], ...] = ()  # (module to import, pip name), beyond the core
    objectives: int = 1  # 2: ROUGE and the trial's energy (multi-objective)
    comparable: bool = True  # False: a study of its own, not one of `compare`'s strategies

    def missing_packages(self) -> list[str]:
        """The pip names of this strategy's packages that cannot be imported here."""
        return [pip for module, pip in self.packages if importlib.util.find_spec(module) is None]

    def install_hint(self) -> str:
        names = " ".join(pip for _, pip in self.packages)
        return f"pip install 'greentune[{EXTRA}]' (or: pip install {names})"


_OPTUNA = (("optuna", "optuna"),)

CATALOGUE: dict[str, StrategyInfo] = {
    s.name: s
    for s in (
        StrategyInfo(
            "grid",
            "grid search over the space's grid points (Tune's BasicVariantGenerator)",
            "whole passes over the grid under a trial-epochs budget; passes until spent otherwise",
            "#1f77b4",
        ),
        StrategyInfo(
            "random",
            "random search over the space's domains (BasicVariantGenerator, seeded)",
            "trials sampled until the budget is spent",
            "#ff7f0e",
        ),
        StrategyInfo(
            "asha",
            "asynchronous successive halving (ASHAScheduler) over random samples",
            "trials until spent; rungs at grace x eta^k reports (search.asha_*)",
            "#2ca02c",
        ),
        StrategyInfo(
            "pbt",
            "Population Based Training (greentune's full-strength PBT over Ray's)",
            "a population of budget / epochs trials trained for the full horizon",
            "#d62728",
        ),
        StrategyInfo(
            "hyperband",
            "synchronous Hyperband (HyperBandScheduler) over random samples",
            "trials until spent, in brackets of n trials from r reports (eta: "
            "search.asha_reduction_factor)",
            "#9467bd",
        ),
        StrategyInfo(
            "bohb",
            "BOHB: a TPE-like model proposes, Hyperband stops (TuneBOHB + HyperBandForBOHB)",
            "trials until spent, in Hyperband's brackets",
            "#8c564b",
            packages=(("hpbandster", "hpbandster"), ("ConfigSpace", "ConfigSpace")),
        ),
        StrategyInfo(
            "pb2",
            "PB2: PBT whose explore step is a GP bandit (Ray's PB2, greentune's ranking)",
            "a population of budget / epochs trials, like pbt; the GP models the numeric "
            "parameters",
            "#e377c2",
            packages=(("GPy", "GPy"), ("sklearn", "scikit-learn")),
        ),
        StrategyInfo(
            "optuna",
            "Optuna's TPE sampler (OptunaSearch), trials run to the end",
            "trials proposed until the budget is spent",
            "#7f7f7f",
            packages=_OPTUNA,
        ),
        StrategyInfo(
            "optuna-asha",
            "Optuna's TPE proposes, ASHA stops (OptunaSearch + ASHAScheduler)",
            "trials until spent; ASHA's rungs",
            "#bcbd22",
            packages=_OPTUNA,
        ),
        StrategyInfo(
            "optuna-gp",
            "Bayesian optimisation with a Gaussian process (Optuna's GPSampler)",
            "trials proposed until the budget is spent",
            "#17becf",
            packages=_OPTUNA,
        ),
        StrategyInfo(
            "optuna-mo",
            "multi-objective TPE over ROUGE and the trial's energy (Optuna's TPESampler, MOTPE)",
            "trials proposed until the budget is spent",
            "#393b79",
            packages=_OPTUNA,
            objectives=2,
        ),
        StrategyInfo(
            "mo-asha",
            "MO-ASHA: ASHA whose rungs rank by Pareto front over ROUGE and energy "
            "(greentune's scheduler, after Schmucker et al. 2021)",
            "trials until spent; ASHA's rungs",
            "#ad494a",
            objectives=2,
        ),
        StrategyInfo(
            "experiments",
            "the efficiency experiments of search_spaces/experiments.yaml, over paired seeds",
            "every variation that runs here x seeds (a fixed trial count)",
            "#6b6b6b",
            comparable=False,
        ),
    )
}
# What `compare` runs and the report compares (experiments is a study of its own)
TUNING_STRATEGIES = tuple(name for name, s in CATALOGUE.items() if s.comparable)
