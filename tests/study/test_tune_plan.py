"""`build_tune_plan`: the thin adapter from a strategy's numbers to Ray Tune objects (built
without starting Ray; the attributes read are Ray 2.60's)."""

import pytest
from ray.tune.schedulers import AsyncHyperBandScheduler, FIFOScheduler

from core.config import resolve_config
from search_spaces import load_space
from study.strategies import build_tune_plan, derive_numbers

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


@pytest.mark.parametrize("strategy", ["grid", "random", "asha", "pbt"])
def test_the_plans_numbers_are_used_not_derived_again(strategy):
    numbers = derive_numbers(strategy, SPACE, CFG)
    assert build_tune_plan(strategy, SPACE, CFG, 2, numbers).numbers is numbers
    assert build_tune_plan(strategy, SPACE, CFG, 2).numbers == numbers
