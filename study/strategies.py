"""Strategies in a registry, each derived from the one search space and the study's budget.

Each `Strategy` in `REGISTRY` is its facts (`core.strategies.CATALOGUE`: what it is, what it
needs, its colour) and two functions: its arithmetic (what it derives from a budget: plain
functions over plain data, no Ray) and its Ray Tune objects (param_space, sample count,
scheduler, searcher). A new strategy is one more entry here and in the catalogue;
`derive_numbers` and `build_tune_plan` only look it up.

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
from core.strategies import CATALOGUE, TUNING_STRATEGIES, StrategyInfo
from search_spaces import SearchSpace
from search_spaces.experiments import load_plan
from study.budget import Budget, study_budget
from study.mo_asha import make_mo_asha
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
    hyperband_brackets: tuple[tuple[int, int], ...] | None = None  # (trials, first reports)
    hyperband_expected_reports_per_trial: float | None = None
    objectives: tuple[str, ...] | None = None  # a multi-objective strategy's (metric, energy)
    sampler_startup_trials: int | None = None  # Optuna's random trials before its model
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


def hyperband_brackets(max_t: int, reduction_factor: int) -> tuple[tuple[int, int], ...]:
    """Ray's Hyperband brackets for trials of `max_t` reports, in the order Ray fills them:
    (trials n, reports r each runs before the first halving), s = 0 (no stopping) first;
    s_max + 1 = round(log_eta max_t) + 1 brackets (Li et al. 2018, as ray.tune.schedulers.
    HyperBandScheduler counts them)."""
    eta = reduction_factor
    s_max_1 = int(round(math.log(max_t) / math.log(eta))) + 1 if max_t > 1 else 1
    out = []
    for s in range(s_max_1):
        first = int(max_t * eta ** (-s))
        if first > 0:
            out.append((math.ceil(s_max_1 / (s + 1) * eta**s), first))
    return tuple(out)


def hyperband_expected_reports(max_t: int, reduction_factor: int) -> float:
    """Expected reports per trial over one pass of the brackets: n trials run r reports, the top
    ceil(n / eta) go on to min(r x eta, max_t), and so on to max_t."""
    work = trials = 0
    for n, r in hyperband_brackets(max_t, reduction_factor):
        trials += n
        work += n * r
        while r < max_t:
            n, grown = math.ceil(n / reduction_factor), min(r * reduction_factor, max_t)
            work += n * (grown - r)
            r = grown
    return work / trials


def grid_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    """Whole passes over the grid's points under a trial-epochs budget; passes until the budget
    is spent under any other unit."""
    if not terms.in_epochs:
        return {"num_trials": None}
    points, epochs, amount = terms.grid_points, terms.epochs, terms.budget.amount
    repeats = math.floor(amount / (points * epochs))
    if repeats < 1:
        raise ConfigError(
            f"budget.trial_epochs={amount:g}: smaller than one pass over the grid "
            f"({points} points x {epochs} epochs = {points * epochs}); raise the budget "
            f"or use fewer grid points"
        )
    return {
        "num_trials": points * repeats,
        "expected_trials": points * repeats,
        "grid_repeats": repeats,
    }


def sampler_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    """Trials proposed until the budget is spent (no trial count), each run to the end: random
    search and the model-based searchers (Optuna's TPE, GP, multi-objective TPE)."""
    expected = math.floor(terms.budget.amount / terms.epochs) if terms.in_epochs else None
    return {"num_trials": None, "expected_trials": expected}


def asha_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    """Trials sampled until the budget is spent, each stopped at a rung unless in its top 1/eta."""
    s, max_t = cfg.search, terms.max_t
    grace = min(s.asha_grace_period, max_t)
    per_trial = asha_expected_reports(grace, s.asha_reduction_factor, max_t)
    expected = (
        terms.budget.amount * cfg.train.evals_per_epoch / per_trial if terms.in_epochs else None
    )
    return {
        "num_trials": None,
        "expected_trials": expected,
        "asha_grace_period": grace,
        "asha_reduction_factor": s.asha_reduction_factor,
        "asha_rungs": asha_rungs(grace, s.asha_reduction_factor, max_t),
        "asha_expected_reports_per_trial": per_trial,
    }


def mo_asha_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    """ASHA's rungs and arithmetic; the rungs rank by (the search metric, the trial's energy)."""
    return {**asha_numbers(terms, cfg), "objectives": (cfg.search.metric, schema.ENERGY_TOTAL_J)}


OPTUNA_STARTUP_TRIALS = 10  # Optuna's own n_startup_trials (TPESampler, GPSampler)


def sampler_startup_trials(setting: int) -> int:
    """Random trials before Optuna's model proposes: the setting, else Optuna's own 10.

    Measured (benchmarks/README.md, figure 8): with 2 start-up trials on the default ~9-trial
    budget, where most of the space scores ROUGE-L 0 (a flat response gives the model nothing
    to follow), TPE and GP found nothing above 0.11 validation ROUGE-L in 2 of 3 seeds where
    random search found 0.30-0.32; so the default stays Optuna's 10, under which the default
    budget is random search, and a longer budget is where the model has something to learn."""
    return setting or OPTUNA_STARTUP_TRIALS


def _with_startup(numbers: dict[str, Any], cfg: StudyConfig) -> dict[str, Any]:
    return {
        **numbers,
        "sampler_startup_trials": sampler_startup_trials(cfg.search.sampler_startup_trials),
    }


def optuna_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    """Random search's arithmetic, plus the trials Optuna samples at random before its model."""
    return _with_startup(sampler_numbers(terms, cfg), cfg)


def optuna_asha_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    return _with_startup(asha_numbers(terms, cfg), cfg)


def optuna_mo_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    return {**optuna_numbers(terms, cfg), "objectives": (cfg.search.metric, schema.ENERGY_TOTAL_J)}


def hyperband_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    """Trials until the budget is spent, run in Hyperband's brackets (BOHB uses the same)."""
    eta, max_t = cfg.search.asha_reduction_factor, terms.max_t
    per_trial = hyperband_expected_reports(max_t, eta)
    expected = (
        terms.budget.amount * cfg.train.evals_per_epoch / per_trial if terms.in_epochs else None
    )
    return {
        "num_trials": None,
        "expected_trials": expected,
        "asha_reduction_factor": eta,
        "hyperband_brackets": hyperband_brackets(max_t, eta),
        "hyperband_expected_reports_per_trial": per_trial,
    }


def pbt_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
    """A fixed population trained for the full horizon: as many trials as the budget buys (PBT
    and PB2)."""
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
    return {
        "num_trials": population,
        "expected_trials": population,
        "pbt_population": population,
        "pbt_perturbation_interval": cfg.search.pbt_perturbation_interval,
        "pbt_quantile_fraction": cfg.search.pbt_quantile_fraction,
    }


def experiments_numbers(terms: BudgetTerms, cfg: StudyConfig) -> dict[str, Any]:
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
    return {
        "num_trials": trials,
        "expected_trials": trials,
        "experiment_variations": runnable,
        "experiment_seeds": plan.seeds,
        "experiment_skipped": plan.skipped(has_gpu),
    }


def grid_points(strategy: str, space: SearchSpace, cfg: StudyConfig) -> int:
    """The points one pass covers: the search space's grid, or the experiments' trials."""
    if strategy == "experiments":
        plan = load_plan(cfg.search.experiments)
        return len(plan.runnable(cfg.resources.gpus_per_worker > 0)) * plan.seeds
    return len(space.grid())


def check_installed(strategy: str) -> None:
    """Refuse a strategy whose optional packages are missing, with the command that installs
    them (before Ray starts)."""
    info = CATALOGUE[strategy]
    missing = info.missing_packages()
    if missing:
        raise ConfigError(
            f"strategy={strategy}: needs {', '.join(missing)}, not installed here; "
            f"{info.install_hint()}"
        )


def derive_numbers(strategy: str, space: SearchSpace, cfg: StudyConfig) -> StrategyNumbers:
    """What `strategy` runs for the study budget, so that every strategy spends the same one.

    Samplers (random, ASHA, the Optuna searchers, Hyperband, BOHB, MO-ASHA) and grid under a
    budget other than trial-epochs have no trial count: they start trials until the budget is
    spent (`study.budget`). Grid under trial-epochs runs whole passes over its points; PBT and
    PB2 run a fixed population for the full horizon.
    """
    if strategy not in REGISTRY:
        raise ConfigError(f"strategy={strategy!r}: unknown; use one of {', '.join(REGISTRY)}")
    check_installed(strategy)
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
    entry = REGISTRY[strategy]
    if entry.check_space is not None:
        entry.check_space(space)
    return terms.numbers(strategy, **entry.numbers(terms, cfg))


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


def pb2_bounds(space: SearchSpace) -> dict[str, list[float]]:
    """PB2's GP bounds: [low, high] of every parameter PBT may mutate (a numeric choice or a
    listed mutation: its smallest and largest value). A parameter the GP cannot model (a choice
    of strings) is an error naming it; `mutate: none` keeps it out (inherited at exploits)."""
    bounds: dict[str, list[float]] = {}
    for p in space.params:
        if p.mutate == "none":
            continue
        values = p.mutate if isinstance(p.mutate, tuple) else p.values
        if p.kind == "choice" or isinstance(p.mutate, tuple):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
                raise ConfigError(
                    f"search space {space.name!r}, parameter {p.name!r}: pb2's GP models "
                    f"numeric bounds only, not {list(values)!r}; set its mutate: none (PB2 "
                    "keeps the donor's value) or use pbt"
                )
            bounds[p.name] = [float(min(values)), float(max(values))]
        else:
            bounds[p.name] = [float(p.low), float(p.high)]
    if not bounds:
        raise ConfigError(
            f"search space {space.name!r}: pb2 needs a parameter it may mutate; every "
            "parameter has mutate: none"
        )
    return bounds


def pb2_explore(space: SearchSpace) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """After PB2's GP picks values inside the bounds: a choice or listed mutation snaps to its
    nearest allowed value, an integer rounds, and every value stays in its domain."""

    def explore(config: dict[str, Any]) -> dict[str, Any]:
        for p in space.params:
            if p.name not in config or p.mutate == "none":
                continue
            value = config[p.name]
            if isinstance(p.mutate, tuple):
                value = min(p.mutate, key=lambda v: abs(v - value))
            config[p.name] = p.clip(value)
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
    param_space: dict[str, Any]  # empty where the searcher holds the space (optuna-mo)
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

    return _sampled(numbers, space, cfg, slots, FIFOScheduler())


def _asha(numbers: StrategyNumbers) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=TIME_ATTR,
        max_t=numbers.reports_per_trial,
        grace_period=numbers.asha_grace_period,
        reduction_factor=numbers.asha_reduction_factor,
    )


def asha_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    return _sampled(numbers, space, cfg, slots, _asha(numbers))


def mo_asha_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    scheduler = make_mo_asha(
        rungs=numbers.asha_rungs or (),
        max_t=numbers.reports_per_trial,
        reduction_factor=numbers.asha_reduction_factor,
        time_attr=TIME_ATTR,
        energy=schema.ENERGY_TOTAL_J,
    )
    return _sampled(numbers, space, cfg, slots, scheduler)


def hyperband_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    from ray.tune.schedulers import HyperBandScheduler

    scheduler = HyperBandScheduler(
        time_attr=TIME_ATTR,
        max_t=numbers.reports_per_trial,
        reduction_factor=numbers.asha_reduction_factor,
    )
    return _sampled(numbers, space, cfg, slots, scheduler)


def bohb_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    from ray.tune.schedulers import HyperBandForBOHB
    from ray.tune.search.bohb import TuneBOHB

    scheduler = HyperBandForBOHB(
        time_attr=TIME_ATTR,
        max_t=numbers.reports_per_trial,
        reduction_factor=numbers.asha_reduction_factor,
    )

    class PlainBOHB(TuneBOHB):
        """TuneBOHB whose configs hold Python numbers (ConfigSpace's are numpy scalars, which
        JSON, parquet columns and the config's types would each trip on)."""

        def suggest(self, trial_id: str) -> dict[str, Any] | None:
            config = super().suggest(trial_id)
            if not isinstance(config, dict):
                return config
            return {k: v.item() if hasattr(v, "item") else v for k, v in config.items()}

    searcher = PlainBOHB(
        seed=cfg.seed, points_to_evaluate=[dict(p) for p in space.points_to_evaluate] or None
    )
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
    return _population(numbers, space, cfg, scheduler)


def pb2_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    scheduler = make_pbt(
        population_fits=numbers.pbt_population <= slots,
        seed=cfg.seed,
        max_t=numbers.reports_per_trial,
        gp=True,
        time_attr=TIME_ATTR,
        perturbation_interval=numbers.pbt_perturbation_interval,
        hyperparam_bounds=pb2_bounds(space),
        quantile_fraction=cfg.search.pbt_quantile_fraction,
        custom_explore_fn=pb2_explore(space),
    )
    return _population(numbers, space, cfg, scheduler)


def _population(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, scheduler: Any
) -> TuneObjects:
    # PBT's whole population exists from the start (pending trials beyond the slots), so Ray's
    # PBT shares the slots round-robin and the population progresses together; limited to the
    # slots, later members would start only after the first ones finished, and could only clone
    # them (a finished donor leaves nothing to train).
    searcher = variant_generator(cfg.seed, 0, space.points_to_evaluate)
    searcher.hold_open = scheduler.is_restarting
    return _domains(space), numbers.tune_num_samples, scheduler, searcher


def _optuna(
    sampler: str, numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig
) -> tuple[dict[str, Any], Any]:
    """(param_space, OptunaSearch) with Optuna's `sampler`, seeded. Multi-objective (the
    numbers name two objectives): the searcher holds the space and both objectives, and the
    Tuner gets an empty param_space (Tune's TuneConfig takes one metric only)."""
    import optuna
    from ray.tune.search.optuna import OptunaSearch

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # one line per trial otherwise
    samplers = {"tpe": optuna.samplers.TPESampler, "gp": optuna.samplers.GPSampler}
    points = [dict(p) for p in space.points_to_evaluate] or None
    seeded = samplers[sampler](seed=cfg.seed, n_startup_trials=numbers.sampler_startup_trials)
    if numbers.objectives:
        searcher = OptunaSearch(
            space=_domains(space),
            metric=list(numbers.objectives),
            mode=[cfg.search.mode, "min"],
            sampler=seeded,
            points_to_evaluate=points,
        )
        return {}, searcher
    searcher = OptunaSearch(sampler=seeded, points_to_evaluate=points)
    return _domains(space), searcher


def optuna_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    from ray.tune.schedulers import FIFOScheduler

    param_space, searcher = _optuna("tpe", numbers, space, cfg)
    return param_space, numbers.tune_num_samples, FIFOScheduler(), searcher


def optuna_asha_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    param_space, searcher = _optuna("tpe", numbers, space, cfg)
    return param_space, numbers.tune_num_samples, _asha(numbers), searcher


def optuna_gp_tune(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int
) -> TuneObjects:
    from ray.tune.schedulers import FIFOScheduler

    param_space, searcher = _optuna("gp", numbers, space, cfg)
    return param_space, numbers.tune_num_samples, FIFOScheduler(), searcher


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


def _sampled(
    numbers: StrategyNumbers, space: SearchSpace, cfg: StudyConfig, slots: int, scheduler: Any
) -> TuneObjects:
    """The space's domains sampled by the seeded variant generator, under `scheduler`."""
    searcher = variant_generator(cfg.seed, slots, space.points_to_evaluate)
    return _domains(space), numbers.tune_num_samples, scheduler, searcher


def _domains(space: SearchSpace) -> dict[str, Any]:
    return {p.name: p.tune_domain() for p in space.params}


@dataclass(frozen=True)
class Strategy:
    """One entry of the registry: its facts, its arithmetic (pure, no Ray) and its Tune objects."""

    info: StrategyInfo
    numbers: Callable[[BudgetTerms, StudyConfig], dict[str, Any]]
    tune: Callable[[StrategyNumbers, SearchSpace, StudyConfig, int], TuneObjects]
    check_space: Callable[[SearchSpace], Any] | None = None  # raises on what it cannot represent

    @property
    def name(self) -> str:
        return self.info.name


_CODE = {
    "grid": (grid_numbers, grid_tune, None),
    "random": (sampler_numbers, random_tune, None),
    "asha": (asha_numbers, asha_tune, None),
    "pbt": (pbt_numbers, pbt_tune, None),
    "hyperband": (hyperband_numbers, hyperband_tune, None),
    "bohb": (hyperband_numbers, bohb_tune, None),
    "pb2": (pbt_numbers, pb2_tune, pb2_bounds),
    "optuna": (optuna_numbers, optuna_tune, None),
    "optuna-asha": (optuna_asha_numbers, optuna_asha_tune, None),
    "optuna-gp": (optuna_numbers, optuna_gp_tune, None),
    "optuna-mo": (optuna_mo_numbers, optuna_tune, None),
    "mo-asha": (mo_asha_numbers, mo_asha_tune, None),
    "experiments": (experiments_numbers, experiments_tune, None),
}
REGISTRY = {name: Strategy(CATALOGUE[name], *_CODE[name]) for name in CATALOGUE}
# The tuning strategies (what `compare` runs and compares); `experiments` is a study of its own
STRATEGIES = TUNING_STRATEGIES


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
