"""Population Based Training at full strength: finished trials count, diverged ones never donate.

Ray's PBT (2.60) ranks only live trials by their score at their last perturbation step, breaks
ties by insertion order, and clones only a checkpoint the donor saved while it was in the upper
quantile. On a population whose good trials finish first that leaves the stragglers to clone each
other (FIELD_NOTES). Here the decision is a pure function over plain data (`Standing`, `rank`,
`quantiles`, `choose_donor`), and `make_pbt` is the thin adapter over Ray's scheduler:

- **Who is ranked**: every trial that has a score and a clonable checkpoint, live or finished
  (errored trials are not). A live trial's standing is its latest checkpointed report (every
  greentune report carries its checkpoint, so the score and the model it would clone always
  belong together); the reporting trial's is the report in hand.
- **Order** (best first), the documented tie rule: valid before invalid; then the search metric
  (mode-adjusted); then validation loss, lower first; then the trial made first. *Invalid* means
  the metric is missing or not finite, or a loss (train or validation) is not finite: a diverged
  trial always ranks at the bottom.
- **Exploit**: only a live trial in the lower quantile, before its last report, exploits, and
  only a donor in the upper quantile that is valid and ranks strictly above it (never one that
  scores below it, never itself); among those the donor is drawn at random, as Ray does. A
  finished donor is cloned from its final checkpoint.
- Perturbation, explore and the exploit itself (config, checkpoint hand-over, policy logs
  `pbt_global.txt` / `pbt_policy_<trial>.txt`) are Ray's own.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core import schema

if TYPE_CHECKING:
    from ray.tune.execution.tune_controller import TuneController
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import PopulationBasedTraining


@dataclass(frozen=True)
class Standing:
    """Where one trial stands, from one of its reports."""

    trial_id: str
    order: int  # the order Tune made the trial in (ties go to the earlier)
    score: float | None  # the search metric, as reported
    val_loss: float | None
    train_loss: float | None
    live: bool  # may still exploit (running, pending or paused)

    @property
    def valid(self) -> bool:
        return _finite(self.score) and all(
            v is None or _finite(v) for v in (self.val_loss, self.train_loss)
        )


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def rank_key(s: Standing, mode: str) -> tuple:
    """Sort key, larger is better: valid, score (mode-adjusted), lower val_loss, earlier trial."""
    if not s.valid:
        return (0, 0.0, 0.0, -s.order)
    score = s.score if mode == "max" else -s.score
    val_loss = -s.val_loss if _finite(s.val_loss) else -math.inf
    return (1, score, val_loss, -s.order)


def rank(standings: Sequence[Standing], mode: str) -> list[Standing]:
    """Best first."""
    return sorted(standings, key=lambda s: rank_key(s, mode), reverse=True)


def quantiles(
    standings: Sequence[Standing], fraction: float, mode: str
) -> tuple[list[Standing], list[Standing]]:
    """(lower, upper): the worst and the best `ceil(n * fraction)` trials (at most half each);
    empty with fewer than two ranked trials (Ray's sizes)."""
    ordered = rank(standings, mode)
    if len(ordered) <= 1:
        return [], []
    k = min(math.ceil(len(ordered) * fraction), len(ordered) // 2)
    return ordered[len(ordered) - k :], ordered[:k]


def choose_donor(
    trial: Standing, upper: Sequence[Standing], mode: str, rng: random.Random
) -> Standing | None:
    """A donor for `trial`: drawn from the upper quantile's valid trials that rank above it."""
    mine = rank_key(trial, mode)
    better = [
        s for s in upper if s.valid and s.trial_id != trial.trial_id and rank_key(s, mode) > mine
    ]
    return rng.choice(better) if better else None


def standing_from_result(
    trial_id: str, order: int, result: dict[str, Any], metric: str, live: bool
) -> Standing:
    return Standing(
        trial_id,
        order,
        result.get(metric),
        result.get(schema.VAL_LOSS),
        result.get(schema.TRAIN_LOSS),
        live,
    )


def trial_order(trial_id: str) -> int:
    """Tune numbers trials `<prefix>_<index>` in the order they were made."""
    tail = trial_id.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def make_pbt(
    population_fits: bool, seed: int, max_t: int, gp: bool = False, **kwargs: Any
) -> PopulationBasedTraining:
    """Ray's PBT with the ranking and donor rule above, for trials of `max_t` reports; with
    `gp`, Ray's PB2 (Parker-Holder et al. 2020) under the same rule: only the explore step
    differs (a GP bandit over `hyperparam_bounds` picks the clone's new values).

    A trial at its last report has finished its budget: it does not exploit (Ray's would, and the
    clone would train the donor's last interval again, and again at every final report).

    One more change: Ray's PBT pauses a trial at its perturbation point whenever any other trial
    is PENDING or PAUSED, to share slots round-robin; an exploited trial is briefly PENDING
    while it restarts, so every trial reporting meanwhile would be paused too, each pause a
    segment restart for nothing when every trial has a slot. When the whole population fits in
    the slots we continue instead.
    """
    from ray.tune.experiment import Trial
    from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler

    if gp:
        from ray.tune.schedulers.pb2 import PB2 as base  # noqa: N813
    else:
        base = PopulationBasedTraining

    class FullStrengthPBT(base):
        def __init__(self, **kw: Any):
            super().__init__(**kw)
            self._rng = random.Random(seed)
            self.decisions: list[dict[str, Any]] = []  # every exploit decision, for tests and logs
            self.restarting: dict[str, Any] = {}  # exploited trials not yet running again

        def is_restarting(self) -> bool:
            """True while an exploited trial waits (paused or pending) to restart: the search must
            stay open then, or Tune would not keep the trial's process to reuse
            (study.strategies.variant_generator). A trial that ended meanwhile (the study's budget
            stopped it) holds nothing open, so the study can still finish."""
            waiting = (Trial.PAUSED, Trial.PENDING)
            self.restarting = {k: t for k, t in self.restarting.items() if t.status in waiting}
            return bool(self.restarting)

        def _exploit(
            self, tune_controller: TuneController, trial: Trial, trial_to_clone: Trial
        ) -> None:
            self.restarting[trial.trial_id] = (
                trial  # before Ray pauses it: the pause caches the actor
            )
            super()._exploit(tune_controller, trial, trial_to_clone)

        def on_trial_result(
            self, tune_controller: TuneController, trial: Trial, result: dict[str, Any]
        ) -> str:
            self.restarting.pop(trial.trial_id, None)
            decision = super().on_trial_result(tune_controller, trial, result)
            if decision == TrialScheduler.PAUSE and population_fits:
                return TrialScheduler.CONTINUE
            return decision

        def _standing(self, trial: Trial) -> Standing | None:
            """A trial's latest checkpointed report (what a clone of it would get)."""
            if trial.status == Trial.ERROR:
                return None
            latest = trial.latest_checkpoint_result
            if latest is None or latest.checkpoint is None:
                return None
            return standing_from_result(
                trial.trial_id,
                trial_order(trial.trial_id),
                latest.metrics,
                self._metric,
                live=not trial.is_finished(),
            )

        def _standings(self, current: Trial) -> dict[Any, Standing]:
            out = {}
            for t in self._trial_state:
                if t is current:
                    result = self._trial_state[t].last_result or {}
                    out[t] = standing_from_result(
                        t.trial_id, trial_order(t.trial_id), result, self._metric, live=True
                    )
                elif (s := self._standing(t)) is not None:
                    out[t] = s
            return out

        def _quantiles(self) -> tuple[list[Trial], list[Trial]]:
            # Ray calls this without the reporting trial; _checkpoint_or_exploit ranks itself.
            return [], []

        def _checkpoint_or_exploit(
            self,
            trial: Trial,
            tune_controller: TuneController,
            upper_quantile: list[Trial],
            lower_quantile: list[Trial],
        ) -> None:
            state = self._trial_state[trial]
            state.last_checkpoint = None  # no extra save: every report already carries one
            if (state.last_result or {}).get(self._time_attr, 0) >= max_t:
                return  # its budget is spent: nothing left to train from a clone
            standings = self._standings(trial)
            by_id = {s.trial_id: t for t, s in standings.items()}
            lower, upper = quantiles(list(standings.values()), self._quantile_fraction, self._mode)
            me = standings[trial]
            if me.trial_id not in {s.trial_id for s in lower}:
                return
            donor = choose_donor(me, upper, self._mode, self._rng)
            donor_trial = by_id[donor.trial_id] if donor else None
            donor_result = donor_trial.latest_checkpoint_result.metrics if donor_trial else {}
            self.decisions.append(
                {
                    schema.TIMESTAMP_S: time.time(),
                    schema.TRIAL_ID: me.trial_id,
                    schema.ITERATION: (state.last_result or {}).get(self._time_attr),
                    "score": me.score,
                    schema.VAL_LOSS: me.val_loss,
                    "donor": donor.trial_id if donor else None,
                    "donor_score": donor.score if donor else None,
                    "donor_val_loss": donor.val_loss if donor else None,
                    "donor_iteration": donor_result.get(self._time_attr),
                    "donor_finished": (not donor.live) if donor else None,
                    "lower_quantile": ",".join(s.trial_id for s in lower),
                    "upper_quantile": ",".join(s.trial_id for s in upper),
                    "ranking": ",".join(
                        s.trial_id for s in rank(list(standings.values()), self._mode)
                    ),
                }
            )
            if donor is None:
                return
            latest = donor_trial.latest_checkpoint_result
            clone_state = self._trial_state[donor_trial]
            clone_state.last_checkpoint = latest.checkpoint
            clone_state.last_result = latest.metrics
            clone_state.last_score = self._metric_op * latest.metrics[self._metric]
            self._exploit(tune_controller, trial, donor_trial)

    return FullStrengthPBT(**kwargs)
