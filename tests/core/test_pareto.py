"""Pareto dominance, non-dominated sorting, crowding and the 2-D hypervolume (all minimised)."""

import math

import pytest

from core.pareto import (
    crowding_distances,
    dominates,
    hypervolume_2d,
    nondominated_fronts,
    pareto_order,
)


def test_dominance_needs_one_strict_improvement():
    assert dominates((1, 1), (1, 2)) and dominates((0, 0), (1, 1))
    assert not dominates((1, 1), (1, 1))  # equal points do not dominate each other
    assert not dominates((0, 2), (1, 1)) and not dominates((1, 1), (0, 2))


def test_fronts_peel_in_layers_and_nan_goes_last():
    points = [(1, 5), (2, 2), (5, 1), (3, 3), (4, 4), (math.nan, 0), (6, 6)]
    assert nondominated_fronts(points) == [[0, 1, 2], [3], [4], [6], [5]]


def test_crowding_gives_the_ends_infinity_and_the_middle_its_gap():
    points = [(0, 4), (1, 2), (3, 1), (4, 0)]
    d = crowding_distances(points, [0, 1, 2, 3])
    assert d[0] == d[3] == math.inf
    # point 1: neighbours 0 and 2: (3 - 0) / 4 + (4 - 1) / 4 = 1.5; point 2: (4-1)/4 + (2-0)/4
    assert d[1] == pytest.approx(1.5) and d[2] == pytest.approx(1.25)


def test_order_is_front_then_spread_then_index():
    points = [(0, 4), (1, 2), (3, 1), (4, 0), (5, 5)]
    assert pareto_order(points) == [0, 3, 1, 2, 4]


def test_hypervolume_by_hand():
    # reference (4, 4): (1, 3) adds 3 x 1; (2, 1) adds 2 x 2; (3, 2) is dominated by (2, 1)
    assert hypervolume_2d([(1, 3), (2, 1), (3, 2)], (4, 4)) == pytest.approx(7.0)
    assert hypervolume_2d([(5, 0)], (4, 4)) == 0.0  # beyond the reference: nothing
    assert hypervolume_2d([], (4, 4)) == 0.0
