"""MO-ASHA: asynchronous successive halving that ranks each rung by Pareto front, not by one score.

Schmucker et al. (2021, "Multi-objective Asynchronous Successive Halving") keep ASHA's rungs and
its asynchronous promotion, and replace the rung's scalar cut-off by a multi-objective order. Here
the objectives are the search metric (ROUGE-L by default, maximised) and the energy the trial has
used so far (its own meter, minimised), both as reported at the rung; the order is non-dominated
sorting with NSGA-II's crowding distance breaking ties within a front (`core.pareto`). The
decision, like Ray's ASHA, is taken once per trial and rung on what the rung has recorded so far:
the trial continues if it ranks in the rung's top 1/eta (the first trial at a rung always does).

`continues` is the whole decision, a pure function; `make_mo_asha` is the thin Tune adapter.
Every decision is kept (`decisions`), written to `rung_decisions.parquet` by the results writer.
"""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from core import schema
from core.pareto import pareto_order

if TYPE_CHECKING:
    from ray.tune.schedulers import FIFOScheduler


def continues(
    recorded: Mapping[str, Sequence[float]], trial_id: str, reduction_factor: int
) -> bool:
    """True when `trial_id` ranks in the top 1/eta of the rung's `recorded` points (objectives
    minimised, `trial_id` among them): position < n / eta, so a rung's first trial continues."""
    ids = list(recorded)
    order = pareto_order([recorded[i] for i in ids])
    return order.index(ids.index(trial_id)) < len(ids) / reduction_factor


def _objective(value: Any, sign: float) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return sign * float(value) if ok else math.nan  # NaN: ranked after every finite point


def make_mo_asha(
    rungs: Sequence[int], max_t: int, reduction_factor: int, time_attr: str, energy: str
) -> FIFOScheduler:
    """MO-ASHA for trials of `max_t` reports, its rungs at `rungs` (study.strategies.asha_rungs),
    ranking by (the search metric, `energy`); metric and mode come from the TuneConfig."""
    from ray.tune.schedulers import FIFOScheduler, TrialScheduler

    class MOASHA(FIFOScheduler):
        def __init__(self) -> None:
            super().__init__()
            self._metric: str | None = None
            self._mode: str | None = None
            self.decisions_file = schema.RUNG_DECISIONS_FILE
            self.decisions: list[dict[str, Any]] = []
            self.recorded: dict[int, dict[str, tuple[float, float]]] = {r: {} for r in rungs}

        def set_search_properties(self, metric: str | None, mode: str | None, **spec: Any) -> bool:
            self._metric = metric or self._metric
            self._mode = mode or self._mode
            return True

        def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
            t = result.get(time_attr, 0)
            if t >= max_t:
                return TrialScheduler.STOP
            rung = next((r for r in sorted(rungs, reverse=True) if t >= r), None)
            if rung is None or trial.trial_id in self.recorded[rung]:
                return TrialScheduler.CONTINUE
            sign = -1.0 if self._mode == "max" else 1.0
            point = (
                _objective(result.get(self._metric), sign),
                _objective(result.get(energy), 1.0),
            )
            recorded = self.recorded[rung]
            recorded[trial.trial_id] = point
            go_on = continues(recorded, trial.trial_id, reduction_factor)
            self.decisions.append(
                {
                    schema.TIMESTAMP_S: time.time(),
                    schema.TRIAL_ID: trial.trial_id,
                    "rung": rung,
                    str(self._metric): result.get(self._metric),
                    energy: result.get(energy),
                    "at_rung": len(recorded),
                    "continues": go_on,
                }
            )
            return TrialScheduler.CONTINUE if go_on else TrialScheduler.STOP

        def debug_string(self) -> str:
            counts = ", ".join(f"{r}: {len(self.recorded[r])}" for r in rungs)
            return f"MO-ASHA: trials recorded per rung {{{counts}}}"

        def save(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "wb") as f:
                pickle.dump(self.__dict__, f)

        def restore(self, checkpoint_path: str) -> None:
            with open(checkpoint_path, "rb") as f:
                self.__dict__.update(pickle.load(f))

    return MOASHA()
