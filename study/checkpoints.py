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

import fnmatch
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from core import schema, storage

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

CHECKPOINT_GLOB = "checkpoint_*"
TUNE_STATE_PERIOD_S = 10  # how often Tune saves its experiment state (study.run sets it)
RESTORE_WINDOW_S = 6.0 * TUNE_STATE_PERIOD_S  # six of Tune's experiment-state periods


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


def pointer_target(tune_checkpoint: Any, train_runs_root: str) -> str | None:
    """The Train checkpoint a Tune pointer checkpoint names, as a path in the train runs'
    filesystem (None if unreadable). Reads through the checkpoint's own filesystem, so a
    pointer on a URI storage is read where it lies."""
    from trainables.driver import POINTER_FILE, Pointer

    path = getattr(tune_checkpoint, "path", None)
    if not path:
        return None
    fs = getattr(tune_checkpoint, "filesystem", None)
    try:
        if fs is None:
            text = (Path(path) / POINTER_FILE).read_text()
        else:
            with fs.open_input_stream(f"{path}/{POINTER_FILE}") as f:
                text = f.read().decode("utf-8")
        return f"{train_runs_root}/{Pointer.from_json(text).checkpoint}"
    except (OSError, ValueError, KeyError, TypeError):
        return None


def trial_of_run(run: str) -> str:
    return schema.parse_run_name(run)[0]


class CheckpointJanitor(Callback):
    """Deletes the Train checkpoints no trial can use, on a local folder or a URI storage (through
    `pyarrow.fs`, as Train wrote them)."""

    def __init__(
        self,
        train_runs: str | Path,
        selected: Callable[[], dict[str, Any] | None],
        scheduler: Any = None,
    ):
        self.train_runs = str(train_runs)  # the study's train_runs/: a folder or a URI
        # the selected model's report so far (study.results.ResultsWriter.selected): one rule,
        # shared with the held-out evaluation that scores it
        self.selected = selected
        self.scheduler = scheduler
        self.deleted_bytes = 0

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles callbacks at the first start; a resumed study builds a new janitor
        return {**self.__dict__, "selected": lambda: None, "scheduler": None}

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        self.collect(trials)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.collect(trials)

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        self.collect(trials)

    def collect(self, trials: list[Trial]) -> None:
        import pyarrow.fs

        fs, root = storage.filesystem(self.train_runs)
        runs: dict[str, list[str]] = {}
        mtime: dict[str, float | None] = {}
        for run in fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True)):
            if run.type != pyarrow.fs.FileType.Directory:
                continue
            found = sorted(
                (
                    c
                    for c in fs.get_file_info(pyarrow.fs.FileSelector(run.path))
                    if _is_checkpoint(c)
                ),
                key=lambda c: c.path,
            )
            runs[run.path] = [c.path for c in found]
            mtime |= {c.path: c.mtime.timestamp() if c.mtime is not None else None for c in found}
        if not runs:
            return
        live = [t for t in trials if t.status not in ("TERMINATED", "ERROR")]
        live_ids = {t.trial_id for t in live}
        live_runs = set(newest_run_per_trial(runs, live_ids).values())
        protected = {pointer_target(t.checkpoint, root) for t in live}
        selected = self.selected()
        if selected:  # the selected model: evaluated on the test split when the study ends
            protected.add(f"{root}/{selected[schema.CHECKPOINT_PATH]}")
        now = time.time()
        protected |= {
            path
            for run, paths in runs.items()
            if trial_of_run(run) in live_ids
            for path in paths
            # an unknown age is not an old one
            if mtime[path] is None or now - mtime[path] < RESTORE_WINDOW_S
        }
        pbt_state = getattr(self.scheduler, "_trial_state", None)  # PBT's population (Ray's)
        if pbt_state is not None and live:
            # While any trial may still exploit, every trial's latest checkpoint, finished ones
            # included, is a possible clone source (study.pbt ranks finished trials too).
            protected |= {pointer_target(t.checkpoint, root) for t in trials if t.status != "ERROR"}
            # and whatever PBT holds as a donor: a checkpoint, or a save still in flight (Ray's
            # `_FutureTrainingResult`, no path yet): then every checkpoint of that trial stays
            for trial, state in pbt_state.items():
                held = getattr(state, "last_checkpoint", None)
                if held is None:
                    continue
                if getattr(held, "path", None):
                    protected.add(pointer_target(held, root))
                else:
                    protected |= {
                        p
                        for run, paths in runs.items()
                        if trial_of_run(run) == trial.trial_id
                        for p in paths
                    }
        protected.discard(None)
        for path in deletable(runs, live_runs, protected):
            self.deleted_bytes += sum(
                f.size
                for f in fs.get_file_info(pyarrow.fs.FileSelector(path, recursive=True))
                if f.type == pyarrow.fs.FileType.File
            )
            fs.delete_dir(path)


def _is_checkpoint(info: Any) -> bool:
    import pyarrow.fs

    return info.type == pyarrow.fs.FileType.Directory and fnmatch.fnmatch(
        info.base_name, CHECKPOINT_GLOB
    )


def newest_run_per_trial(runs: dict[str, Any], trial_ids: set[str]) -> dict[str, str]:
    """Each trial's latest segment run (run folders are named `<trial_id>-s<segment>-<tag>`)."""
    newest: dict[str, tuple[int, str]] = {}
    for run in runs:
        trial_id, segment = schema.parse_run_name(run)
        if trial_id in trial_ids and segment >= newest.get(trial_id, (-1, ""))[0]:
            newest[trial_id] = (segment, run)
    return {t: run for t, (_, run) in newest.items()}
