"""Strategies in a registry, each derived from the one search space and the study's budget.

The arithmetic (how many trials a strategy gets for a budget) is plain functions over plain
data; `build_tune_plan` is the thin adapter that turns a plan into Ray Tune objects.

Units: the budget is in trial-epochs; Tune counts reports (`training_iteration`), and a trial
reports `evals_per_epoch` times per epoch.
"""

from __future__ import annotations

import math
import random
from dataclasses import asdict, dataclass
from typing import Any

from search_spaces import SearchSpace
from study.config import ConfigError, StudyConfig

STRATEGIES = ("pbt", "asha", "grid", "random")
TIME_ATTR = "training_iteration"


@dataclass(frozen=True)
class StrategyNumbers:
    """What a strategy derives from the space and the budget; printed and saved in metadata."""

    strategy: str
    budget_trial_epochs: float
    epochs_per_trial: int
    reports_per_trial: int  # max_t
    num_trials: int  # trials Tune starts (grid: points x repeats)
    expected_trial_epochs: float  # what the plan spends if every trial runs as modelled
    grid_points: int
    grid_repeats: int | None = None
    asha_grace_period: int | None = None
    asha_reduction_factor: int | None = None
    asha_rungs: tuple[int, ...] | None = None
    asha_expected_reports_per_trial: float | None = None
    pbt_population: int | None = None
    pbt_perturbation_interval: int | None = None
    pbt_quantile_fraction: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def asha_rungs(grace_period: int, reduction_factor: int, max_t: int) -> tuple[int, ...]:
    """ASHA's milestones below max_t: grace, grace*eta, grace*eta^2, ... (Li et al. 2020)."""
    rungs, t = [], grace_period
    while t < max_t:
        rungs.append(t)
        t *= reduction_factor
    return tuple(rungs)


def asha_expected_reports(grace_period: int, reduction_factor: int, max_t: int) -> float:
    """Expected reports one ASHA trial runs: it passes rung k with probability eta^-k."""
    milestones = [*asha_rungs(grace_period, reduction_factor, max_t), max_t]
    cost, previous = 0.0, 0
    for k, milestone in enumerate(milestones):
        cost += (milestone - previous) / reduction_factor**k
        previous = milestone
    return cost


def derive_numbers(strategy: str, space: SearchSpace, cfg: StudyConfig) -> StrategyNumbers:
    """How many trials `strategy` runs so that every strategy spends the same budget."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"strategy={strategy!r}: unknown; use one of {', '.join(STRATEGIES)}")
    epochs = cfg.train.epochs
    max_t = epochs * cfg.train.evals_per_epoch
    grid_points = len(space.grid())
    budget = cfg.budget.trial_epochs or grid_points * epochs
    common = dict(strategy=strategy, budget_trial_epochs=budget, epochs_per_trial=epochs,
                  reports_per_trial=max_t, grid_points=grid_points)
    if budget < epochs:
        raise ConfigError(f"budget.trial_epochs={budget}: less than one trial ({epochs} epochs); "
                          f"raise the budget or lower train.epochs")

    if strategy == "grid":
        repeats = math.floor(budget / (grid_points * epochs))
        if repeats < 1:
            raise ConfigError(
                f"budget.trial_epochs={budget}: smaller than one pass over the grid "
                f"({grid_points} points x {epochs} epochs = {grid_points * epochs}); raise the budget "
                f"or use fewer grid points")
        n = grid_points * repeats
        return StrategyNumbers(**common, num_trials=n, expected_trial_epochs=n * epochs,
                               grid_repeats=repeats)
    if strategy == "random":
        n = math.floor(budget / epochs)
        return StrategyNumbers(**common, num_trials=n, expected_trial_epochs=n * epochs)
    if strategy == "asha":
        s = cfg.search
        grace = min(s.asha_grace_period, max_t)
        per_trial = asha_expected_reports(grace, s.asha_reduction_factor, max_t)
        n = max(1, math.floor(budget * cfg.train.evals_per_epoch / per_trial))
        return StrategyNumbers(**common, num_trials=n,
                               expected_trial_epochs=n * per_trial / cfg.train.evals_per_epoch,
                               asha_grace_period=grace, asha_reduction_factor=s.asha_reduction_factor,
                               asha_rungs=asha_rungs(grace, s.asha_reduction_factor, max_t),
                               asha_expected_reports_per_trial=per_trial)
    # pbt: the whole population trains for the full horizon
    population = math.floor(budget / epochs)
    if population < 2:
        raise ConfigError(f"budget.trial_epochs={budget}: PBT needs a population of at least 2 "
                          f"trials of {epochs} epochs; raise the budget")
    if cfg.search.pbt_perturbation_interval >= max_t:
        raise ConfigError(f"search.pbt_perturbation_interval={cfg.search.pbt_perturbation_interval}: "
                          f"must be below the {max_t} reports of a trial, or PBT never exploits")
    return StrategyNumbers(**common, num_trials=population, expected_trial_epochs=population * epochs,
                           pbt_population=population,
                           pbt_perturbation_interval=cfg.search.pbt_perturbation_interval,
                           pbt_quantile_fraction=cfg.search.pbt_quantile_fraction)


def pbt_explore(space: SearchSpace, seed: int):
    """PBT's `custom_explore_fn`, applied after Ray's own perturbation: `resample` parameters are
    drawn anew, and every value is clipped back into its domain (Ray's factors ignore bounds)."""
    rng = random.Random(seed)

    def explore(config: dict[str, Any]) -> dict[str, Any]:
        for p in space.params:
            if p.mutate == "resample":
                config[p.name] = p.sample(rng)
            elif p.name in config:
                config[p.name] = p.clip(config[p.name])
        return config

    return explore


def make_pbt(population_fits: bool, **kwargs):
    """Ray's PBT, minus one cost when the whole population runs at once.

    Ray's PBT pauses a trial at its perturbation point whenever any other trial is PENDING or
    PAUSED, to share slots round-robin. An exploited trial is briefly PENDING while it restarts,
    so every trial that reports meanwhile is paused too, and each pause costs a segment restart
    (new Train worker group, about 30-40 s on 2 cores) for nothing when every trial has a slot.
    When the population fits in the slots we continue instead; exploit and checkpoint decisions
    are Ray's own, unchanged.
    """
    from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

    class PopulationBasedTrainingNoIdlePause(PopulationBasedTraining):
        def on_trial_result(self, tune_controller, trial, result):
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.PAUSE and population_fits:
                return TrialScheduler.CONTINUE
            return decision

    return PopulationBasedTrainingNoIdlePause(**kwargs)


@dataclass
class TunePlan:
    numbers: StrategyNumbers
    param_space: dict[str, Any]
    num_samples: int
    scheduler: Any
    search_alg: Any = None


def build_tune_plan(strategy: str, space: SearchSpace, cfg: StudyConfig, max_concurrent: int) -> TunePlan:
    """Ray Tune's param_space, sample count, scheduler and searcher for a strategy."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search import BasicVariantGenerator

    numbers = derive_numbers(strategy, space, cfg)
    s = cfg.search
    # Seeded sampling so a study's trials are reproducible from its seed.
    random.seed(cfg.seed)
    searcher = BasicVariantGenerator(random_state=cfg.seed, max_concurrent=max_concurrent)
    if strategy == "grid":
        param_space = {p.name: tune.grid_search(list(p.grid)) for p in space.params}
        return TunePlan(numbers, param_space, numbers.grid_repeats, FIFOScheduler(), searcher)
    param_space = {p.name: p.tune_domain() for p in space.params}
    if strategy == "random":
        return TunePlan(numbers, param_space, numbers.num_trials, FIFOScheduler(), searcher)
    if strategy == "asha":
        scheduler = ASHAScheduler(time_attr=TIME_ATTR, max_t=numbers.reports_per_trial,
                                  grace_period=numbers.asha_grace_period,
                                  reduction_factor=numbers.asha_reduction_factor)
        return TunePlan(numbers, param_space, numbers.num_trials, scheduler, searcher)
    mutations = {}
    for p in space.params:
        if p.mutate == "none":
            continue
        if isinstance(p.mutate, tuple):
            mutations[p.name] = list(p.mutate)
        elif p.kind == "choice":
            mutations[p.name] = list(p.values)  # Ray moves to a neighbour, or resamples
        else:
            mutations[p.name] = p.tune_domain()
    scheduler = make_pbt(
        population_fits=numbers.pbt_population <= max_concurrent,
        time_attr=TIME_ATTR,
        perturbation_interval=numbers.pbt_perturbation_interval,
        hyperparam_mutations=mutations,
        quantile_fraction=s.pbt_quantile_fraction,
        resample_probability=s.pbt_resample_probability,
        perturbation_factors=tuple(space.perturbation_factors),
        custom_explore_fn=pbt_explore(space, cfg.seed),
    )
    return TunePlan(numbers, param_space, numbers.num_trials, scheduler, searcher)
