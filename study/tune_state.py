"""The one place that touches Ray Tune's private state (Ray 2.60), for `--resume`.

Tune pickles a study's callbacks and stopper into `tuner.pkl` when the Tuner is built and hands
them back from `Tuner.restore` with the state and paths they had then (FIELD_NOTES). A resumed
study therefore rebuilds its own callbacks for the folder being resumed and swaps them in here;
it also needs the restored scheduler (PBT's population, the janitor's clone sources).
"""

from __future__ import annotations

from typing import Any


def restored_scheduler(tuner: Any) -> Any:
    """The scheduler instance `Tuner.restore` brought back (PBT keeps its population in it)."""
    return tuner._local_tuner._tune_config.scheduler


def replace_study_callbacks(
    tuner: Any, callbacks: list[Any], stop: Any, owned: tuple[type, ...]
) -> None:
    """Swap the restored copies of the study's own callbacks (instances of `owned`) and its
    stopper for freshly built ones; other callbacks (MLflow's) stay as restored."""
    run_config = tuner._local_tuner.get_run_config()
    kept = [c for c in (run_config.callbacks or []) if not isinstance(c, owned)]
    run_config.callbacks = [*callbacks, *kept]
    run_config.stop = stop
