"""The verdict: one sentence per objective naming the winner and its margin, with the interval.

Objectives: the best test ROUGE-L (the selected model on held-out data), and the least
whole-cluster energy, CO2 and dollars to reach the ROUGE-L target. Strategies are compared pair by
pair on the seeds they share (`compare` gives every strategy the same study seeds): the margin is
the mean paired difference between the winner and the runner-up, with a 95 % bootstrap interval
over those seeds. With a single shared seed the test-ROUGE interval is over the test examples
(both models scored the same examples), which leaves seed-to-seed variation out, and the sentence
says so. Where the interval holds zero the sentence says the strategies do not differ at 95 %.

    >>> for v in verdicts(studies, per_study_summary(studies, target)):
    ...     print(v.sentence)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.load import Study
from analysis.summary import order_strategies
from core.schema import (
    CLUSTER_CO2_TO_TARGET_KG,
    CLUSTER_COST_TO_TARGET_USD,
    CLUSTER_ENERGY_TO_TARGET_KWH,
    EXAMPLE,
    ROUGEL,
    SEED,
    STRATEGY,
    TEST_ROUGEL,
)
from core.stats import bootstrap_ci


@dataclass(frozen=True)
class Objective:
    name: str
    column: str
    best: str  # "max" or "min"
    unit: str
    format: Callable[[float], str]


def _rouge(v: float) -> str:
    return f"{v:.4f}"


def _sig(v: float) -> str:
    return f"{v:.3g}"


def _energy(v: float) -> str:
    return f"{v * 1000:.3g} Wh" if abs(v) < 1 else f"{v:.3g} kWh"


OBJECTIVES = (
    Objective("Best test ROUGE-L", TEST_ROUGEL, "max", "", _rouge),
    Objective(
        "Least whole-cluster energy to reach the target",
        CLUSTER_ENERGY_TO_TARGET_KWH,
        "min",
        "",
        _energy,
    ),
    Objective(
        "Least whole-cluster CO2e to reach the target", CLUSTER_CO2_TO_TARGET_KG, "min", " kg", _sig
    ),
    Objective(
        "Fewest dollars (billed) to reach the target",
        CLUSTER_COST_TO_TARGET_USD,
        "min",
        "",
        lambda v: f"${v:,.3g}",
    ),
)


@dataclass(frozen=True)
class Verdict:
    objective: str
    sentence: str
    winner: str | None
    runner_up: str | None = None
    margin: float = math.nan  # winner - runner-up, paired
    low: float = math.nan
    high: float = math.nan
    differs: bool | None = None  # None: not decidable (too few seeds, or not applicable)


def _per_seed(per_study: pd.DataFrame, column: str) -> dict[str, dict[int, float]]:
    out: dict[str, dict[int, float]] = {}
    for _, row in per_study.iterrows():
        out.setdefault(str(row[STRATEGY]), {})[int(row[SEED])] = float(row[column])
    return out


def _example_difference(studies: Sequence[Study], a: str, b: str, seed: int) -> np.ndarray | None:
    """Per-example ROUGE-L differences a - b on the test examples both were scored on."""
    found = {s.strategy: s for s in studies if s.seed == seed and s.test_scores is not None}
    if a not in found or b not in found:
        return None
    merged = (
        found[a]
        .test_scores[[EXAMPLE, ROUGEL]]
        .merge(found[b].test_scores[[EXAMPLE, ROUGEL]], on=EXAMPLE, suffixes=("_a", "_b"))
    )
    return (merged[f"{ROUGEL}_a"] - merged[f"{ROUGEL}_b"]).to_numpy(float) if len(merged) else None


def judge(
    objective: Objective,
    per_study: pd.DataFrame,
    studies: Sequence[Study] = (),
    target: float | None = None,
) -> Verdict:
    """The verdict on one objective from one row per study (`per_study_summary`)."""
    name = objective.name
    if objective.column != TEST_ROUGEL and target is not None and math.isfinite(target):
        name += f" (validation ROUGE-L {target:.4f})"
    values = _per_seed(per_study, objective.column)
    seeds = {s: len(v) for s, v in values.items()}
    complete = {s: v for s, v in values.items() if v and all(math.isfinite(x) for x in v.values())}
    if not complete:
        why = (
            "no strategy has it (no VM price: a local machine)"
            if "dollars" in name.lower()
            else "no strategy reached it"
            if objective.column != TEST_ROUGEL
            else "no study was scored on test data"
        )
        return Verdict(name, f"{name}: not applicable: {why}.", None)
    sign = 1.0 if objective.best == "max" else -1.0
    ranked = sorted(complete, key=lambda s: -sign * np.mean(list(complete[s].values())))
    partial = [s for s in order_strategies(list(values)) if s not in complete]
    missing = (
        (
            " "
            + "; ".join(
                f"{s} reached it in "
                f"{sum(math.isfinite(x) for x in values[s].values())}/{seeds[s]} seeds"
                for s in partial
            )
            + "."
        )
        if partial and objective.column != TEST_ROUGEL
        else ""
    )
    winner = ranked[0]
    best = float(np.mean(list(complete[winner].values())))
    if len(ranked) == 1:
        return Verdict(
            name,
            f"{name}: {winner}, {objective.format(best)}{objective.unit}; no other "
            f"strategy has it in every seed.{missing}",
            winner,
        )
    runner = ranked[1]
    other = float(np.mean(list(complete[runner].values())))
    shared = sorted(set(complete[winner]) & set(complete[runner]))
    diffs = [complete[winner][k] - complete[runner][k] for k in shared]
    over = f"over {len(shared)} paired seeds"
    if len(shared) >= 2:
        low, high = bootstrap_ci(diffs)
        margin = float(np.mean(diffs))
    elif (
        objective.column == TEST_ROUGEL
        and shared
        and (d := _example_difference(studies, winner, runner, shared[0])) is not None
        and len(d) > 1
    ):
        margin, (low, high) = float(d.mean()), bootstrap_ci(d)
        over = (
            f"over {len(d)} test examples of one seed; seed-to-seed variation not included: "
            "run more seeds (compare --seeds 3)"
        )
    else:
        margin, low, high = float(np.mean(diffs)) if diffs else math.nan, math.nan, math.nan
    ratio = f", {best / other:.2f}x" if objective.column != TEST_ROUGEL and other else ""
    fmt = objective.format
    head = (
        f"{name}: {winner}, {fmt(best)}{objective.unit} against {fmt(other)}{objective.unit} "
        f"for {runner} (difference {margin:+.3g}{ratio}"
    )
    if not (math.isfinite(low) and math.isfinite(high)):
        return Verdict(
            name,
            f"{head}; one seed, no interval): not decidable at 95 %.{missing}",
            winner,
            runner,
            margin,
        )
    differs = not (low <= 0 <= high)
    tail = f"95 % CI {low:+.3g} to {high:+.3g} {over})" + (
        ": the winner at 95 %." if differs else ": the strategies do not differ at 95 %."
    )
    return Verdict(name, f"{head}; {tail}{missing}", winner, runner, margin, low, high, differs)


def verdicts(
    studies: Sequence[Study], per_study: pd.DataFrame, target: float | None = None
) -> list[Verdict]:
    """One verdict per objective, in `OBJECTIVES` order."""
    return [judge(o, per_study, studies, target) for o in OBJECTIVES]
