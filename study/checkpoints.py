"""Disk stays bounded: delete Train checkpoints that no trial can still use, and only those.

A Train checkpoint (`train_runs/<run>/checkpoint_*`) is kept while any of these may need it:

- it is the newest of a run whose trial is still live (the run may restart a worker from it);
- a live trial's latest Tune checkpoint points at it (the trial's own resume, or, right after a
  PBT exploit, the donor's checkpoint the exploited trial is about to load);
- it is the checkpoint of the best report so far (the selected model, evaluated on the test
  split when the study ends);
- a PBT study may still clone it: every trial's latest checkpoint, finished trials' included,
  while any trial is live (`study.pbt` ranks finished trials too);
- it belongs to a live trial and is younger than `RESTORE_WINDOW_S`: `--resume` restores each
  trial from the checkpoint named in the experiment state Tune saved last, and Tune saves that
  state only every `TUNE_GLOBAL_CHECKPOINT_S` (10 s, set by study.run), so a trial's latest
  pointer can be ahead of the one a resume would use.

Everything else goes. The decision (`deletable`) is a pure function; `CheckpointJanitor` is the
Tune callback that gathers the facts in the study process, where Tune's scheduler lives, so no
trial driver ever deletes a checkpoint another trial may clone.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from study import schema

CHECKPOINT_GLOB = "checkpoint_*"
RESTORE_WINDOW_S = 60.0  # six of Tune's experiment-state periods


def deletable(runs: dict[str, list[str]], live_runs: set[str], protected: set[str]) -> list[str]:
    """Checkpoint paths to delete. `runs` maps a run folder to its checkpoints, oldest first."""
    doomed = []
    for run, checkpoints in runs.items():
        newest = checkpoints[-1] if checkpoints else None
        for path in checkpoints:
            if path in protected or (run in live_runs and path == newest):
                continue
            doomed.append(path)
    return doomed


def pointer_target(tune_checkpoint: Any, train_runs_dir: Path) -> str | None:
    """The Train checkpoint path a Tune pointer checkpoint names (None if unreadable)."""
    from trainables.driver import Pointer

    path = getattr(tune_checkpoint, "path", None)
    if not path:
        return None
    try:
        return str(train_runs_dir / Pointer.read(Path(path)).checkpoint)
    except (OSError, ValueError, KeyError, TypeError):
        return None


class CheckpointJanitor(Callback):
    def __init__(
        self,
        train_runs_dir: Path,
        selected: Callable[[], dict[str, Any] | None],
        scheduler: Any = None,
    ):
        self.train_runs_dir = Path(train_runs_dir)
        # the selected model's report so far (study.results.ResultsWriter.selected): one rule,
        # shared with the held-out evaluation that scores it
        self.selected = selected
        self.scheduler = scheduler
        self.deleted_bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks at the first start; a resumed study builds a new janitor
        return {**self.__dict__, "selected": lambda: None, "scheduler": None}

    def on_trial_result(self, iteration, trials, trial, result, **info):
        self.collect(trials)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.collect(trials)

    def on_experiment_end(self, trials, **info):
        self.collect(trials)

    def collect(self, trials) -> None:
        if not self.train_runs_dir.is_dir():
            return
        runs = {
            str(run): sorted(str(c) for c in run.glob(CHECKPOINT_GLOB) if c.is_dir())
            for run in self.train_runs_dir.iterdir()
            if run.is_dir()
        }
        live = [t for t in trials if t.status not in ("TERMINATED", "ERROR")]
        live_ids = {t.trial_id for t in live}
        live_runs = set(newest_run_per_trial(runs, live_ids).values())
        protected = {pointer_target(t.checkpoint, self.train_runs_dir) for t in live}
        selected = self.selected()
        if selected:  # the selected model: evaluated on the test split when the study ends
            protected.add(str(self.train_runs_dir / selected[schema.CHECKPOINT_PATH]))
        now = time.time()
        protected |= {
            path
            for run, paths in runs.items()
            if Path(run).name.split("-s")[0] in live_ids
            for path in paths
            if now - Path(path).stat().st_mtime < RESTORE_WINDOW_S
        }
        pbt_state = getattr(self.scheduler, "_trial_state", None)  # PBT's population (Ray's)
        if pbt_state is not None and live:
            # While any trial may still exploit, every trial's latest checkpoint, finished ones
            # included, is a possible clone source (study.pbt ranks finished trials too).
            protected |= {
                pointer_target(t.checkpoint, self.train_runs_dir)
                for t in trials
                if t.status != "ERROR"
            }
        protected.discard(None)
        for path in deletable(runs, live_runs, protected):
            self.deleted_bytes += sum(
                f.stat().st_size for f in Path(path).rglob("*") if f.is_file()
            )
            shutil.rmtree(path, ignore_errors=True)


def newest_run_per_trial(runs: dict[str, Any], trial_ids: set[str]) -> dict[str, str]:
    """Each trial's latest segment run (run folders are named `<trial_id>-s<segment>-<tag>`)."""
    newest: dict[str, tuple[int, str]] = {}
    for run in runs:
        name = Path(run).name
        trial_id, segment = name.split("-s")[0], int(name.split("-s")[1].split("-")[0])
        if trial_id in trial_ids and segment >= newest.get(trial_id, (-1, ""))[0]:
            newest[trial_id] = (segment, run)
    return {t: run for t, (_, run) in newest.items()}
