"""Strategies in a registry, each derived from the one search space and the study's budget.

Each `Strategy` in `REGISTRY` is two functions: its arithmetic (how many trials it gets for a
budget: plain functions over plain data, no Ray) and its Ray Tune objects (param_space, sample
count, scheduler, searcher). A new strategy is one more entry; `derive_numbers` and
`build_tune_plan` only look it up.

Units: the budget is in one of `core.config.BUDGET_UNITS` (trial-epochs by default); Tune counts
reports (`training_iteration`), and a trial reports `evals_per_epoch` times per epoch.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from core import schema
from core.config import ConfigError, StudyConfig
from search_spaces import SearchSpace
from search_spaces.experiments import load_plan
from study.budget import Budget, study_budget
from study.pbt import make_pbt

if TYPE_CHECKING:
    from ray.tune.search import BasicVariantGenerator

TIME_ATTR = "training_iteration"
# (param_space, num_samples, scheduler, searcher): what a strategy hands Ray Tune
TuneObjects = tuple[dict[str, Any], int, Any, Any]


@dataclass(frozen=True)
class StrategyNumbers:
    """What a strategy derives from the space and the budget; printed and saved in metadata."""

    strategy: str
    budget_unit: str  # core.config.BUDGET_UNITS
    budget_amount: float  # in budget_unit (trial-epochs default: one pass over the grid)
    budget_scope: str  # cluster | trials, for energy, CO2 and dollars
    epochs_per_trial: int
    reports_per_trial: int  # max_t
    grid_points: int
    num_trials: (
        int | None
    )  # trials Tune starts; None: as many as the budget buys (spent, not predicted)
    expected_trials: float | None = (
        None  # trial-epochs budgets: what it buys if trials run as modelled
    )
    grid_repeats: int | None = None
    asha_grace_period: int | None = None
    asha_reduction_factor: int | None = None
    asha_rungs: tuple[int, ...] | None = None
    asha_expected_reports_per_trial: float | None = None
    pbt_population: int | None = None
    pbt_perturbation_interval: int | None = None
    pbt_quantile_fraction: float | None = None
    experiment_variations: tuple[str, ...] | None = None  # the variations that run here
    experiment_seeds: int | None = None
    experiment_skipped: dict[str, str] | None = None  # variation -> why it cannot run here

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @property
    def budget(self) -> Budget:
        return Budget(self.budget_unit, self.budget_amount, self.budget_scope)

    @property
    def tune_num_samples(self) -> int:
        return -1 if self.num_trials is None else self.num_trials  # -1: until the stopper says so


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


@dataclass(frozen=True)
class BudgetTerms:
    """What every strategy's arithmetic starts from: the budget and the shape of one trial."""

    budget: Budget
    epochs: int  # per trial
    max_t: int  # reports per trial
    grid_points: int

    @property
    def in_epochs(self) -> bool:
        return self.budget.unit == "trial_epochs"

    def numbers(self, strategy: str, **derived: Any) -> StrategyNumbers:
        return StrategyNumbers(
            strategy=strategy,
            budget_unit=self.budget.unit,
            budget_amount=self.budget.amount,
            budget_scope=self.budget.scope,
            epochs_per_trial=self.epochs,
            reports_per_trial=self.max_t,
            grid_points=self.grid_points,
            **derived,
        )


def grid_numbers(terms: BudgetTerms, cfg: StudyConfig) -> StrategyNumbers:
    """Whole passes over the grid's points under a trial-epochs budget; passes until the budget
    is spent under any other unit."""
    if not terms.in_epochs:
        return terms.numbers("grid", num_trials=None)
    points, epochs, amount = terms.grid_points, terms.epochs, terms.budget.amount
    repeats = math.floor(amount / (points * epochs))
    if repeats < 1:
        raise ConfigError(
            f"budget.trial_epochs={amount:g}: smaller than one pass over the grid "
            f"({points} points x {epochs} epochs = {points * epochs}); raise the budget "
            f"or use fewer grid points"
        )
    return terms.numbers(
        "grid", num_trials=points * repeats, expected_trials=points * repeats, grid_repeats=repeats
    )


def random_numbers(terms: BudgetTerms, cfg: StudyConfig) -> StrategyNumbers:
    """Trials sampled until the budget is spent (no trial count)."""
    expected = math.floor(terms.budget.amount / terms.epochs) if terms.in_epochs else None
    return terms.numbers("random", num_trials=None, expected_trials=expected)


def asha_numbers(terms: BudgetTerms, cfg: StudyConfig) -> StrategyNumbers:
    """Trials sampled until the budget is spent, each stopped at a rung unless in its top 1/eta."""
    s, max_t = cfg.search, terms.max_t
    grace = min(s.asha_grace_period, max_t)
    per_trial = asha_expected_reports(grace, s.asha_reduction_factor, max_t)
    expected = (
        terms.budget.amount * cfg.train.evals_per_epoch / per_trial if terms.in_epochs else None
    )
    return terms.numbers(
        "asha",
        num_trials=None,
        expected_trials=expected,
        asha_grace_period=grace,
        asha_reduction_factor=s.asha_reduction_factor,
        asha_rungs=asha_rungs(grace, s.asha_reduction_factor, max_t),
        asha_expected_reports_per_trial=per_trial,
    )


def pbt_numbers(terms: BudgetTerms, cfg: StudyConfig) -> StrategyNumbers:
    """A fixed population trained for the full horizon: as many trials as the budget buys."""
    epochs, amount, max_t = terms.epochs, terms.budget.amount, terms.max_t
    population = cfg.search.pbt_population or (
        math.floor(amount / epochs) if terms.in_epochs else terms.grid_points
    )
    if population < 2:
        raise ConfigError(
            f"budget.trial_epochs={amount:g}: PBT needs a population of at least 2 "
            f"trials of {epochs} epochs; raise the budget (or set search.pbt_population)"
        )
    if terms.in_epochs and population * epochs > amount:
        raise ConfigError(
            f"search.pbt_population={population}: {population} trials x {epochs} epochs "
            f"exceed budget.trial_epochs={amount:g}; lower it or raise the budget"
        )
    if cfg.search.pbt_perturbation_interval >= max_t:
        raise ConfigError(
            f"search.pbt_perturbation_interval={cfg.search.pbt_perturbation_interval}: "
            f"must be below the {max_t} reports of a trial, or PBT never exploits"
        )
    return terms.numbers(
        "pbt",
        num_trials=population,
        expected_trials=population,
        pbt_population=population,
        pbt_perturbation_interval=cfg.search.pbt_perturbation_interval,
        pbt_quantile_fraction=cfg.search.pbt_quantile_fraction,
    )


def experiments_numbers(terms: BudgetTerms, cfg: StudyConfig) -> StrategyNumbers:
    """Every variation that can run on this cluster, `seeds` times: a fixed trial count (the
    default budget is exactly that many trials' epochs)."""
    plan, has_gpu = load_plan(cfg.search.experiments), cfg.resources.gpus_per_worker > 0
    plan.check(cfg)
    runnable = plan.runnable(has_gpu)
    trials = len(runnable) * plan.seeds
    if terms.in_epochs and terms.budget.amount < trials * terms.epochs:
        raise ConfigError(
            f"budget.trial_epochs={terms.budget.amount:g}: the plan needs {trials} trials x "
            f"{terms.epochs} epochs = {trials * terms.epochs}; raise it or leave it unset"
        )
    return terms.numbers(
        "experiments",
        num_trials=trials,
        expected_trials=trials,
        experiment_variations=runnable,
        experiment_seeds=plan.seeds,
        experiment_skipped=plan.skipped(has_gpu),
    )


def grid_points(strategy: str, space: SearchSpace, cfg: StudyConfig) -> int:
    """The points one pass covers: the search space's grid, or the experiments' trials."""
    if strategy == "experiments":
        plan = load_plan(cfg.search.experiments)
        return len(plan.runnable(cfg.resources.gpus_per_worker > 0)) * plan.seeds
    return len(space.grid())


def derive_numbers(strategy: str, space: SearchSpace, cfg: StudyConfig) -> StrategyNumbers:
    """What `strategy` runs for the study budget, so that every strategy spends the same one.

    Samplers (random, ASHA) and grid under a budget other than trial-epochs have no trial count:
    they start trials until the budget is spent (`study.budget`). Grid under trial-epochs runs
    whole passes over its points; PBT runs a fixed population for the full horizon.
    """
    if strategy not in REGISTRY:
        raise ConfigError(f"strategy={strategy!r}: unknown; use one of {', '.join(REGISTRY)}")
    epochs = cfg.train.epochs
    points = grid_points(strategy, space, cfg)
    budget = study_budget(cfg.budget, default_trial_epochs=points * epochs)
    terms = BudgetTerms(budget, epochs, epochs * cfg.train.evals_per_epoch, points)
    if terms.in_epochs and budget.amount < epochs:
        raise ConfigError(
            f"budget.trial_epochs={budget.amount:g}: less than one trial ({epochs} epochs); "
            f"raise the budget or lower train.epochs"
        )
    if budget.unit == "cost_usd" and budget.scope == "cluster" and not cfg.energy.vm_size:
        raise ConfigError(
            f"budget.cost_usd={budget.amount:g}: a local machine has no price, so this "
            "budget could never be spent; set energy.vm_size to the nodes' Azure size, "
            "or budget another unit (trial_epochs, device_hours, energy_kwh, co2_kg)"
        )
    return REGISTRY[strategy].numbers(terms, cfg)


def pbt_explore(space: SearchSpace, seed: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
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


def variant_generator(
    seed: int, max_concurrent: int, points_to_evaluate: tuple[dict[str, Any], ...] = ()
) -> BasicVariantGenerator:
    """Tune's grid/random variant generator, seeded, that a PBT exploit can hold open.

    Tune keeps a stopped or paused trial's process for the next trial (`reuse_actors`) only while
    the search is unfinished. Ray's generator finishes as soon as it has made its last trial, so
    after that point a PBT exploit (which pauses the trial, then restarts it from the donor's
    checkpoint) would start a fresh process: imports, data and model set-up again, seconds each
    time. `hold_open` (set by greentune's PBT) keeps the search unfinished while an exploited trial
    waits to restart, so its own process is reset and reused.
    """
    from ray.tune.search import BasicVariantGenerator

    class StudyVariantGenerator(BasicVariantGenerator):
        hold_open = None  # a callable: True while an exploited trial waits for its restart

        def is_finished(self) -> bool:
            return super().is_finished() and not (self.hold_open is not None and self.hold_open())

        def get_state(self) -> Any:
            state = super().get_state()
            if isinstance(state, dict):
                state.pop("hold_open", None)  # rebuilt with the scheduler, never saved
            return state

    return StudyVariantGenerator(
        random_state=seed,
        max_concurrent=max_concurrent,
        points_to_evaluate=[dict(p) for p in points_to_evaluate] or None,
    )


@dataclass
class TunePlan:
    numbers: StrategyNumbers
    param_space: dict[str, Any]
    num_samples: int
    scheduler: Any
    search_alg: Any = None


def grid_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    param_space = {p.name: tune.grid_search(list(p.grid)) for p in space.params}
    searcher = variant_generator(cfg.seed, slots)
    return param_space, numbers.grid_repeats or -1, FIFOScheduler(), searcher


def random_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    from ray.tune.schedulers import FIFOScheduler

    searcher = variant_generator(cfg.seed, slots, space.points_to_evaluate)
    return _domains(space), numbers.tune_num_samples, FIFOScheduler(), searcher


def asha_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    from ray.tune.schedulers import ASHAScheduler

    scheduler = ASHAScheduler(
        time_attr=TIME_ATTR,
        max_t=numbers.reports_per_trial,
        grace_period=numbers.asha_grace_period,
        reduction_factor=numbers.asha_reduction_factor,
    )
    searcher = variant_generator(cfg.seed, slots, space.points_to_evaluate)
    return _domains(space), numbers.tune_num_samples, scheduler, searcher


def pbt_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
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
        population_fits=numbers.pbt_population <= slots,
        seed=cfg.seed,
        max_t=numbers.reports_per_trial,
        time_attr=TIME_ATTR,
        perturbation_interval=numbers.pbt_perturbation_interval,
        hyperparam_mutations=mutations,
        quantile_fraction=cfg.search.pbt_quantile_fraction,
        resample_probability=cfg.search.pbt_resample_probability,
        perturbation_factors=tuple(space.perturbation_factors),
        custom_explore_fn=pbt_explore(space, cfg.seed),
    )
    # PBT's whole population exists from the start (pending trials beyond the slots), so Ray's
    # PBT shares the slots round-robin and the population progresses together; limited to the
    # slots, later members would start only after the first ones finished, and could only clone
    # them (a finished donor leaves nothing to train).
    searcher = variant_generator(cfg.seed, 0, space.points_to_evaluate)
    searcher.hold_open = scheduler.is_restarting
    return _domains(space), numbers.tune_num_samples, scheduler, searcher


def experiments_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler

    param_space = {
        schema.VARIATION: tune.grid_search(list(numbers.experiment_variations or ())),
        schema.REPEAT: tune.grid_search(list(range(numbers.experiment_seeds or 1))),
    }
    return param_space, 1, FIFOScheduler(), variant_generator(cfg.seed, slots)


def _domains(space: SearchSpace) -> dict[str, Any]:
    return {p.name: p.tune_domain() for p in space.params}


@dataclass(frozen=True)
class Strategy:
    """One entry of the registry: its arithmetic (pure, no Ray) and its Tune objects."""

    name: str
    numbers: Callable[[BudgetTerms, StudyConfig], StrategyNumbers]
    tune: Callable[[StrategyNumbers, SearchSpace, StudyConfig, int], TuneObjects]


REGISTRY = {
    s.name: s
    for s in (
        Strategy("pbt", pbt_numbers, pbt_tune),
        Strategy("asha", asha_numbers, asha_tune),
        Strategy("grid", grid_numbers, grid_tune),
        Strategy("random", random_numbers, random_tune),
        Strategy("experiments", experiments_numbers, experiments_tune),
    )
}
# The tuning strategies (what `compare` runs and compares); `experiments` is a study of its own
STRATEGIES = tuple(name for name in REGISTRY if name != "experiments")


def build_tune_plan(
    strategy: str,
    space: SearchSpace,
    cfg: StudyConfig,
    max_concurrent: int,
    numbers: StrategyNumbers | None = None,
) -> TunePlan:
    """Ray Tune's param_space, sample count, scheduler and searcher for a strategy (`numbers`:
    the plan's, when it has derived them already)."""
    numbers = numbers or derive_numbers(strategy, space, cfg)
    random.seed(cfg.seed)  # seeded sampling: a study's trials are reproducible from its seed
    param_space, num_samples, scheduler, searcher = REGISTRY[strategy].tune(
        numbers, space, cfg, max_concurrent
    )
    return TunePlan(numbers, param_space, num_samples, scheduler, searcher)
