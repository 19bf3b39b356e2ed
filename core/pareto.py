"""Pareto dominance, non-dominated sorting and the 2-D hypervolume: plain functions, no pandas.

Every objective is *minimised* here; a caller maximising one (ROUGE) passes its negative. Used
by MO-ASHA's rung decision (`study/mo_asha.py`) and by the report's ROUGE-energy fronts
(`analysis/summary.py`), so both rank by the same rule.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

Point = Sequence[float]


def dominates(a: Point, b: Point) -> bool:
    """a is no worse than b in every objective and better in one (all minimised)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def nondominated_fronts(points: Sequence[Point]) -> list[list[int]]:
    """Indices by front: the first front is dominated by no point, the second only by the first,
    and so on (NSGA-II's fast non-dominated sort, Deb et al. 2002). A point with a NaN is put
    in a last front of its own kind (never better than a finite one)."""
    finite = [i for i, p in enumerate(points) if all(math.isfinite(v) for v in p)]
    broken = [i for i in range(len(points)) if i not in set(finite)]
    dominated_by = {i: 0 for i in finite}
    beats: dict[int, list[int]] = {i: [] for i in finite}
    for i in finite:
        for j in finite:
            if i != j and dominates(points[i], points[j]):
                beats[i].append(j)
                dominated_by[j] += 1
    fronts, current = [], [i for i in finite if dominated_by[i] == 0]
    while current:
        fronts.append(current)
        following = []
        for i in current:
            for j in beats[i]:
                dominated_by[j] -= 1
                if dominated_by[j] == 0:
                    following.append(j)
        current = sorted(following)
    return fronts + ([broken] if broken else [])


def crowding_distances(points: Sequence[Point], front: Sequence[int]) -> dict[int, float]:
    """NSGA-II's crowding distance within one front: the ends get infinity, the others the sum
    over objectives of their neighbours' gap, as a share of the front's range."""
    distance = {i: 0.0 for i in front}
    if len(front) <= 2:
        return {i: math.inf for i in front}
    for k in range(len(points[front[0]])):
        ordered = sorted(front, key=lambda i: points[i][k])
        low, high = points[ordered[0]][k], points[ordered[-1]][k]
        distance[ordered[0]] = distance[ordered[-1]] = math.inf
        if high == low:
            continue
        for before, i, after in zip(ordered, ordered[1:], ordered[2:]):
            distance[i] += (points[after][k] - points[before][k]) / (high - low)
    return distance


def pareto_order(points: Sequence[Point]) -> list[int]:
    """Every index, best first: by front, then by crowding distance (larger first: the point that
    keeps the front most spread), then by index (the earlier first)."""
    out: list[int] = []
    for front in nondominated_fronts(points):
        distance = crowding_distances(points, front)
        out += sorted(front, key=lambda i: (-distance[i], i))
    return out


def hypervolume_2d(points: Sequence[Point], reference: Point) -> float:
    """The area dominated by `points` and bounded by `reference` (both objectives minimised; a
    point not better than the reference in both adds nothing)."""
    inside = sorted(
        (float(x), float(y))
        for x, y in points
        if math.isfinite(x) and math.isfinite(y) and x < reference[0] and y < reference[1]
    )
    area, best_y = 0.0, float(reference[1])
    for x, y in inside:  # by x ascending: each point adds the strip below the best y so far
        if y < best_y:
            area += (reference[0] - x) * (best_y - y)
            best_y = y
    return area
