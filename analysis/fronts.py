"""The quality-energy front of each study and its hypervolume, on the same axes for every strategy.

A multi-objective strategy (optuna-mo, mo-asha) looks for trials that are good *and* cheap; a
single-objective one for the best trial. Both are judged here the same way: each trial is a
point (its best validation `metric`, the energy it cost), the study's front is the trials no
other trial of the study beats on both, and the front's hypervolume is the share of the box
[0, reference kWh] x [worst, best score] it dominates (larger is better).

Energy is the **trial's share of the whole cluster**: the trial's own meter x (the study's
whole-cluster energy / the sum of its trials' meters), so idle time and start-up (what a
strategy that pauses and restarts trials costs) count, spread over the trials in proportion
to their metered energy. Where a study has no whole-cluster reading the trials' own meters are
used, and the table says so. The reference kWh is 1.1 x the largest point over every compared
study (so each study's costliest trial still adds area); the score's reference is 0 for a
metric maximised in [0, 1] (ROUGE), 1.1 x the worst value for one minimised (a loss).
Validation scores, as every selection in greentune: the test split scores the selected model
only.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.summary import cluster_energy_figures, order_strategies, trial_totals
from core.pareto import hypervolume_2d, nondominated_fronts
from core.schema import BEST_PREFIX, CLUSTER_ENERGY_KWH, ENERGY_KWH, SEED, STRATEGY
from core.stats import bootstrap_ci

if TYPE_CHECKING:
    from analysis.load import Study

SHARE_KWH = "cluster_share_kwh"  # a trial's share of the study's whole-cluster energy
ON_FRONT = "on_front"
HYPERVOLUME = "hypervolume"
ENERGY_BASIS = "energy_basis"
BASIS_CLUSTER = "trial's share of the whole cluster"
BASIS_TRIALS = "trials' own meters (no whole-cluster reading)"
REFERENCE_MARGIN = 1.1


def trial_points(study: Study) -> pd.DataFrame:
    """One row per trial with a score and an energy: `trial_totals` plus `cluster_share_kwh`
    (see the module's note), `energy_basis` and `on_front` (on the study's own front)."""
    trials = trial_totals(study.reports, study.metric, study.mode)
    score = BEST_PREFIX + study.metric
    trials = trials.dropna(subset=[score, ENERGY_KWH]).reset_index(drop=True)
    cluster = cluster_energy_figures(study.metadata)[CLUSTER_ENERGY_KWH]
    metered = float(trials[ENERGY_KWH].sum())
    if math.isfinite(cluster) and metered > 0:
        trials[SHARE_KWH] = trials[ENERGY_KWH] * (cluster / metered)
        trials[ENERGY_BASIS] = BASIS_CLUSTER
    else:
        trials[SHARE_KWH] = trials[ENERGY_KWH]
        trials[ENERGY_BASIS] = BASIS_TRIALS
    points = _objectives(trials, score, study.mode)
    fronts = nondominated_fronts(points)
    trials[ON_FRONT] = False
    if fronts:
        trials.loc[fronts[0], ON_FRONT] = True
    return trials


def _objectives(trials: pd.DataFrame, score: str, mode: str) -> list[tuple[float, float]]:
    sign = -1.0 if mode == "max" else 1.0
    return [(float(x), sign * float(y)) for x, y in zip(trials[SHARE_KWH], trials[score])]


def front_table(studies: Sequence[Study]) -> pd.DataFrame:
    """One row per study: strategy, seed, trials, trials on its front, the normalised
    hypervolume of its front, the reference point and the energy basis."""
    points = {s.name: trial_points(s) for s in studies}
    largest = max((float(p[SHARE_KWH].max()) for p in points.values() if len(p)), default=0.0)
    reference_kwh = REFERENCE_MARGIN * largest
    rows = []
    for s in studies:
        trials, score = points[s.name], BEST_PREFIX + s.metric
        if s.mode == "max":
            reference_score, best_score = 0.0, -1.0  # ROUGE in [0, 1], negated
        else:
            worst = max(
                (float(p[BEST_PREFIX + s.metric].max()) for p in points.values()), default=0
            )
            reference_score, best_score = REFERENCE_MARGIN * worst, 0.0
        box = reference_kwh * (reference_score - best_score)
        area = hypervolume_2d(_objectives(trials, score, s.mode), (reference_kwh, reference_score))
        rows.append(
            {
                "study": s.name,
                STRATEGY: s.strategy,
                SEED: s.seed,
                "trials": len(trials),
                "on_front": int(trials[ON_FRONT].sum()) if len(trials) else 0,
                HYPERVOLUME: area / box if box > 0 else math.nan,
                "reference_kwh": reference_kwh,
                ENERGY_BASIS: ", ".join(sorted(set(trials[ENERGY_BASIS]))) or "no trials",
            }
        )
    return pd.DataFrame(rows)


def hypervolume_by_strategy(per_study: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: seeds, mean normalised hypervolume and its 95 % bootstrap interval over
    seeds (NaN with one seed), in the catalogue's order."""
    rows = []
    for strategy in order_strategies(list(per_study[STRATEGY].unique())):
        group = per_study[per_study[STRATEGY] == strategy]
        values = group[HYPERVOLUME].to_numpy(float)
        low, high = bootstrap_ci(values)
        rows.append(
            {
                STRATEGY: strategy,
                "seeds": len(values),
                "hypervolume_mean": float(np.nanmean(values)) if len(values) else math.nan,
                "hypervolume_ci_low": low,
                "hypervolume_ci_high": high,
                "trials_on_front_mean": float(group["on_front"].mean()),
            }
        )
    return pd.DataFrame(rows)
