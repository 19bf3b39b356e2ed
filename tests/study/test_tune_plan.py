"""`build_tune_plan`: the thin adapter from a strategy's numbers to Ray Tune objects (built
without starting Ray; the attributes read are Ray 2.60's)."""

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler

from core.config import resolve_config
from search_spaces import load_space
from study.strategies import STRATEGIES, build_tune_plan, derive_numbers

SPACE = load_space("default")
CFG = resolve_config(overrides=[])


def test_grid_tries_every_point_of_the_space_once_per_pass():
    plan = build_tune_plan("grid", SPACE, CFG, max_concurrent=2)
    assert isinstance(plan.scheduler, FIFOScheduler)
    assert plan.num_samples == 1  # one pass: Tune expands the grid_search values
    for p in SPACE.params:
        assert plan.param_space[p.name] == {"grid_search": list(p.grid)}
    assert plan.search_alg.max_concurrent == 2


def test_random_search_samples_the_domains_until_the_budget_stops_it():
    plan = build_tune_plan("random", SPACE, CFG, max_concurrent=2)
    assert isinstance(plan.scheduler, FIFOScheduler) and plan.num_samples == -1
    assert set(plan.param_space) == set(SPACE.names)
    assert not any(isinstance(v, dict) for v in plan.param_space.values())


def test_asha_stops_at_the_plans_rungs():
    plan = build_tune_plan("asha", SPACE, CFG, max_concurrent=2)
    assert isinstance(plan.scheduler, AsyncHyperBandScheduler)
    assert plan.scheduler._max_t == plan.numbers.reports_per_trial == 4
    milestones = sorted(m for m, _ in plan.scheduler._brackets[0]._rungs)
    assert tuple(milestones) == plan.numbers.asha_rungs == (1, 3)


def test_pbt_holds_its_whole_population_and_mutates_the_spaces_parameters():
    plan = build_tune_plan("pbt", SPACE, CFG, max_concurrent=2)
    numbers = plan.numbers
    assert plan.num_samples == numbers.pbt_population == 8
    assert plan.search_alg.max_concurrent == 0  # the population exists from the start
    assert plan.scheduler._perturbation_interval == numbers.pbt_perturbation_interval
    mutable = {p.name for p in SPACE.params if p.mutate != "none"}
    assert set(plan.scheduler._hyperparam_mutations) == mutable and mutable
    assert plan.search_alg.hold_open == plan.scheduler.is_restarting


@pytest.mark.parametrize("strategy", list(STRATEGIES))
def test_the_plans_numbers_are_used_not_derived_again(strategy):
    numbers = derive_numbers(strategy, SPACE, CFG)
    assert build_tune_plan(strategy, SPACE, CFG, 2, numbers).numbers is numbers
    assert build_tune_plan(strategy, SPACE, CFG, 2).numbers == numbers


def test_hyperband_and_bohb_run_the_plans_brackets():
    from ray.tune.schedulers import HyperBandForBOHB, HyperBandScheduler
    from ray.tune.search.bohb import TuneBOHB

    hyperband = build_tune_plan("hyperband", SPACE, CFG, max_concurrent=2)
    assert type(hyperband.scheduler) is HyperBandScheduler and hyperband.num_samples == -1
    assert hyperband.scheduler._max_t_attr == 4 and hyperband.scheduler._eta == 3
    assert hyperband.numbers.hyperband_brackets == ((2, 4), (3, 1))
    bohb = build_tune_plan("bohb", SPACE, CFG, max_concurrent=2)
    assert isinstance(bohb.scheduler, HyperBandForBOHB) and isinstance(bohb.search_alg, TuneBOHB)
    assert set(bohb.param_space) == set(SPACE.names)  # Ray converts them to ConfigSpace


def test_pb2_is_greentunes_pbt_with_the_gp_explore():
    from ray.tune.schedulers.pb2 import PB2

    plan = build_tune_plan("pb2", SPACE, CFG, max_concurrent=2)
    assert isinstance(plan.scheduler, PB2) and plan.num_samples == 8
    assert plan.search_alg.hold_open == plan.scheduler.is_restarting  # the same adapter as pbt
    # warmup_ratio has mutate: none; batch_size's choices become bounds the explore snaps back to
    assert plan.scheduler._hyperparam_bounds == {
        "lr": [1e-4, 3e-2],
        "batch_size": [8.0, 32.0],
        "label_smoothing": [0.0, 0.2],
        "weight_decay": [0.0, 0.1],
    }


@pytest.mark.parametrize(
    "strategy, sampler, scheduler",
    [
        ("optuna", "TPESampler", FIFOScheduler),
        ("optuna-asha", "TPESampler", AsyncHyperBandScheduler),
        ("optuna-gp", "GPSampler", FIFOScheduler),
    ],
)
def test_optuna_searchers(strategy, sampler, scheduler):
    plan = build_tune_plan(strategy, SPACE, CFG, max_concurrent=2)
    assert type(plan.search_alg._sampler).__name__ == sampler
    assert isinstance(plan.scheduler, scheduler) and plan.num_samples == -1
    assert set(plan.param_space) == set(SPACE.names)


def test_optuna_mo_holds_the_space_and_both_objectives():
    plan = build_tune_plan("optuna-mo", SPACE, CFG, max_concurrent=2)
    assert plan.param_space == {}  # the searcher holds it: Tune's TuneConfig takes one metric
    assert plan.search_alg.metric == ["rougeL", "energy_total_j"]
    assert plan.search_alg.mode == ["max", "min"]
    assert plan.search_alg._ot_study._is_multi_objective()


def test_mo_asha_ranks_rungs_by_both_objectives():
    plan = build_tune_plan("mo-asha", SPACE, CFG, max_concurrent=2)
    assert type(plan.scheduler).__name__ == "MOASHA"
    assert set(plan.scheduler.recorded) == set(plan.numbers.asha_rungs) == {1, 3}
    assert plan.numbers.objectives == ("rougeL", "energy_total_j")
