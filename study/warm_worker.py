"""The work a local study does after its trials (held-out scoring, the study's description), in
a process that has loaded what it needs while the trials ran.

A fresh Ray task at the end of a default 2-core study spent about 3 s of wall time on its
process start and imports before scoring. `WarmWorkerStarter`, a Tune callback, starts a
`trainables.held_out.WarmWorker` (zero CPUs reserved, nice 19) when the first trial reports, so
its process start does not compete with the trials' own start-up, and its loads use only the
CPU the trials leave idle. On a cluster there is none: the held-out evaluation takes a trial's
GPU, so it runs as a task with a trial's resources.
"""

from __future__ import annotations

import sys
from typing import Any

from ray.tune import Callback
from ray.tune.experiment import Trial

from core.config import StudyConfig

WARM_WORKER = "warm_worker"
TASK = "task"


class WarmWorkerStarter(Callback):
    """Starts the study's warm worker at the first trial report (once per run of Tune)."""

    def __init__(self, cfg: StudyConfig) -> None:
        self.cfg = cfg
        self.worker: Any | None = None  # the actor handle, once started

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "worker": None}  # Tune pickles callbacks; a handle is per run

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        if self.worker is None:
            import ray

            from trainables.held_out import WarmWorker

            self.worker = ray.remote(num_cpus=0, max_restarts=0)(WarmWorker).remote(self.cfg)

    def stop(self) -> None:
        """End the worker's process (a `compare` runs its next study in the same Ray)."""
        if self.worker is not None:
            import ray

            ray.kill(self.worker)
            self.worker = None


def run_after_trials(
    starter: WarmWorkerStarter | None, task_options: dict[str, Any], fn: Any, *args: Any
) -> tuple[Any, str]:
    """`fn(*args)` in the warm worker, or in a Ray task of its own with `task_options` where
    there is none (a cluster, or no trial reported) or it died; returns the result and where it
    ran (`WARM_WORKER` or `TASK`)."""
    import ray

    worker = starter.worker if starter is not None else None
    if worker is not None:
        try:
            return ray.get(worker.run.remote(fn, *args)), WARM_WORKER
        except ray.exceptions.RayActorError as e:  # its process died: a fresh one does it
            print(
                f"warning: the warm worker is gone ({e!r:.200}); a new task runs it",
                file=sys.stderr,
            )
    return ray.get(ray.remote(**task_options)(fn).remote(*args)), TASK
