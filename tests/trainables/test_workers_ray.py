"""Several Train workers per trial on a real local Ray: DDP, ZeRO-3 shards, early stopping."""

import pandas as pd
import pytest

from core import schema
from tests.conftest import TINY_STUDY, run_study

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]

ONE_POINT_SPACE = """
parameters:
  lr:
    domain: {type: loguniform, low: 1.0e-4, high: 1.0}
    grid: [LR]
    mutate: perturb
"""


def study(tmp_path, name, lr, *overrides):
    space = tmp_path / "space.yaml"
    space.write_text(ONE_POINT_SPACE.replace("LR", str(lr)))
    proc = run_study(
        "grid",
        "--name",
        name,
        "--storage",
        str(tmp_path / "results"),
        *TINY_STUDY,
        "--set",
        f"search.space={space}",
        *overrides,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study_dir = tmp_path / "results" / name
    return (
        study_dir,
        pd.read_parquet(study_dir / schema.REPORTS_FILE),
        pd.read_parquet(study_dir / schema.TRIALS_FILE),
    )


def test_two_ddp_workers_share_the_work(tmp_path):
    _, reports, _ = study(tmp_path, "ddp", 3e-3, "--set", "resources.workers_per_trial=2")
    assert (reports["workers"] == 2).all()
    assert set(reports[schema.EXECUTION_PATH]) == {"train_worker_group"}  # not the in-process path
    # 64 examples, batch 16, two ranks: 2 batches each per epoch, all 64 samples seen per epoch
    assert reports[schema.TRIAL_EPOCHS].iloc[-1] == pytest.approx(2.0)
    assert reports[schema.STEP].iloc[-1] == 4  # optimizer steps on each rank: half of one worker's
    # both workers' CPU time is metered and summed (two processes' estimates, not one)
    assert (reports[schema.CPU_UTIL_PCT] > 100).any()


def test_zero3_two_workers_save_every_shard(tmp_path):
    study_dir, reports, trials = study(
        tmp_path,
        "zero3",
        3e-3,
        "--set",
        "resources.workers_per_trial=2",
        "--set",
        "train.zero_stage=3",
        "--set",
        "train.offload_optimizer=true",
    )
    assert set(trials[schema.STATUS]) == {"TERMINATED"} and len(reports) == 2
    checkpoint = next((study_dir / schema.TRAIN_RUNS_DIR).glob("*/checkpoint_2*"))
    shards = {p.name for p in checkpoint.rglob("*.pt")}
    for rank in (0, 1):
        assert f"zero_pp_rank_{rank}_mp_rank_00_model_states.pt" in shards
        assert f"zero_pp_rank_{rank}_mp_rank_00_optim_states.pt" in shards


def test_early_stopping_ends_the_trial_and_says_why(tmp_path):
    # lr 1.0 diverges: validation loss stops improving, patience 1 ends the trial
    _, reports, trials = study(
        tmp_path,
        "early",
        1.0,
        "--set",
        "train.early_stopping_patience=1",
        "--set",
        "search.metric=val_loss",
        "--set",
        "search.mode=min",
        "--set",
        "train.epochs=6",
    )
    assert trials[schema.STOP_REASON].tolist() == ["early_stopping"]
    assert len(reports) < 6 and bool(reports["early_stopped"].iloc[-1])
