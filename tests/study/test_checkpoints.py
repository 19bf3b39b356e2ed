"""The checkpoint janitor: its decision (what no trial can still use, pure) and the janitor on
real folders with Ray's own trial, checkpoint and PBT state objects."""

import os
import time
from pathlib import Path

import pytest
from ray.train import Checkpoint
from ray.train._internal.session import _FutureTrainingResult, _TrainingResult
from ray.tune.experiment import Trial
from ray.tune.schedulers.pbt import _PBTTrialState

from core import schema
from study.checkpoints import (
    RESTORE_WINDOW_S,
    CheckpointJanitor,
    deletable,
    newest_run_per_trial,
)
from trainables.driver import Pointer


def test_only_unreachable_checkpoints_go():
    runs = {
        "r/t1-s1-a": ["r/t1-s1-a/c1", "r/t1-s1-a/c2", "r/t1-s1-a/c3"],
        "r/t2-s1-b": ["r/t2-s1-b/c1", "r/t2-s1-b/c2"],
    }
    # t1 is live (its newest stays); t2 finished, but PBT may still clone its c1
    doomed = deletable(runs, live_runs={"r/t1-s1-a"}, protected={"r/t2-s1-b/c1"})
    assert doomed == ["r/t1-s1-a/c1", "r/t1-s1-a/c2", "r/t2-s1-b/c2"]


def test_a_protected_checkpoint_is_never_deleted_even_when_old():
    runs = {"r/t1-s1-a": ["r/t1-s1-a/c1", "r/t1-s1-a/c2"]}
    assert deletable(runs, live_runs=set(), protected={"r/t1-s1-a/c1", "r/t1-s1-a/c2"}) == []


def test_newest_run_per_trial_follows_segments():
    runs = {"x/t1-s1-aa": [], "x/t1-s3-bb": [], "x/t1-s2-cc": [], "x/t2-s1-dd": []}
    assert newest_run_per_trial(runs, {"t1"}) == {"t1": "x/t1-s3-bb"}


# The janitor itself, on real folders (a local path and a file:// URI, read through pyarrow.fs as
# on abfss://) with Ray's own Trial, Checkpoint and PBT state objects; no Ray cluster needed.


def _old(path: Path) -> None:
    past = time.time() - 10 * RESTORE_WINDOW_S
    os.utime(path, (past, past))


def _janitor_study(tmp_path: Path, uri: bool):
    """t1 (finished) and t2 (running): three checkpoints each, all older than the restore window,
    each trial's Tune pointer naming its latest."""
    runs = tmp_path / "study" / schema.TRAIN_RUNS_DIR
    trials = {}
    for trial_id, run in (("t1_00000", "t1_00000-s1-aa"), ("t2_00001", "t2_00001-s1-bb")):
        for i in range(3):
            cp = runs / run / f"checkpoint_00000{i}"
            cp.mkdir(parents=True)
            (cp / "model.bin").write_bytes(b"x" * 1000)
            _old(cp)
        pointer_dir = tmp_path / "tune" / trial_id
        pointer_dir.mkdir(parents=True)
        Pointer(f"{run}/checkpoint_000002", trial_id, 0.3, 3).write(pointer_dir)
        trial = Trial("trial_driver", trial_id=trial_id, stub=True)
        trial.run_metadata.checkpoint_manager.register_checkpoint(
            _TrainingResult(Checkpoint.from_directory(str(pointer_dir)), {"rougeL": 0.3})
        )
        trials[trial_id] = trial
    trials["t1_00000"].set_status(Trial.TERMINATED)
    trials["t2_00001"].set_status(Trial.RUNNING)
    location = runs.as_uri() if uri else str(runs)
    return runs, location, trials


def _left(runs: Path) -> set[str]:
    return {f"{p.parent.name}/{p.name}" for p in runs.glob("*/checkpoint_*")}


class _PBT:  # the one attribute the janitor reads from Ray's PopulationBasedTraining
    def __init__(self, trials):
        self._trial_state = {t: _PBTTrialState(t) for t in trials}


@pytest.mark.parametrize("uri", [False, True], ids=["local", "file-uri"])
def test_janitor_keeps_every_checkpoint_of_a_donor_whose_save_is_in_flight(tmp_path, uri):
    runs, location, trials = _janitor_study(tmp_path, uri)
    pbt = _PBT(trials.values())
    # Ray's PBT asked t2 to save: its donor checkpoint is a future with no path yet
    pbt._trial_state[trials["t2_00001"]].last_checkpoint = _FutureTrainingResult(None)
    janitor = CheckpointJanitor(location, lambda: None, pbt)
    janitor.collect(list(trials.values()))
    assert _left(runs) == {
        "t1_00000-s1-aa/checkpoint_000002",  # a finished trial's latest: PBT may clone it
        "t2_00001-s1-bb/checkpoint_000000",  # the future may resolve to any of t2's
        "t2_00001-s1-bb/checkpoint_000001",
        "t2_00001-s1-bb/checkpoint_000002",
    }
    assert janitor.deleted_bytes == 2000


@pytest.mark.parametrize("uri", [False, True], ids=["local", "file-uri"])
def test_janitor_keeps_the_checkpoint_pbt_holds_and_the_selected_model(tmp_path, uri):
    runs, location, trials = _janitor_study(tmp_path, uri)
    pbt = _PBT(trials.values())
    # PBT holds an older t2 checkpoint as the donor (a resolved save), the selected model is t1's
    # first; nothing else is in flight, so t2's checkpoint_000001 has no claim and goes
    held = tmp_path / "tune" / "held"
    held.mkdir()
    Pointer("t2_00001-s1-bb/checkpoint_000000", "t2_00001", 0.2, 1).write(held)
    pbt._trial_state[trials["t2_00001"]].last_checkpoint = Checkpoint.from_directory(str(held))
    selected = {schema.CHECKPOINT_PATH: "t1_00000-s1-aa/checkpoint_000000"}
    CheckpointJanitor(location, lambda: selected, pbt).collect(list(trials.values()))
    assert _left(runs) == {
        "t1_00000-s1-aa/checkpoint_000000",  # the selected model
        "t1_00000-s1-aa/checkpoint_000002",
        "t2_00001-s1-bb/checkpoint_000000",  # PBT's donor
        "t2_00001-s1-bb/checkpoint_000002",  # the running trial's newest
    }
