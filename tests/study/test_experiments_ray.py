"""The experiments study end to end (real local Ray, real DeepSpeed on CPU, real parquet):
every runnable variation over paired seeds, a GPU-only one skipped with its reason, and the
report's tables read from what the study wrote."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.report import main as report_main
from core import schema
from core.metadata import read_metadata
from tests.conftest import run_study

PLAN = """
seeds: 2
baseline:
  data.n_train: 64
  data.n_validation: 8
  data.n_test: 16
  train.epochs: 1
  train.evals_per_epoch: 2
  eval.max_new_tokens: 8
  eval.test_every_trial: true
  resources.max_concurrent_trials: 1
variations:  # two knobs in one variation: ZeRO in the trial's process, and a visible cut
  - name: zero2-cut
    set: {train.zero_stage: 2, data.max_source_tokens: 32}
    expect:
      - {effect: gpu_memory, direction: reduces}
      - {effect: memory, direction: reduces}
      - {effect: speed, direction: increases, situational: true}
  - {name: fp16, set: {train.precision: fp16}, needs_gpu: tensor cores}
"""


def test_a_bad_plan_exits_2_before_ray(tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text("variations: [{name: a, set: {train.zero_stage: 5}}]\n")
    result = run_study("experiments", "--set", f"search.experiments={plan}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: experiments variation 'a': train.zero_stage=5: use one of 0, 1, 2, 3"
    ]
    assert not (tmp_path / "greentune_results").exists()


@pytest.mark.ray
def test_experiments_run_every_variation_over_paired_seeds_and_report_the_effects(tmp_path: Path):
    plan = tmp_path / "plan.yaml"
    plan.write_text(PLAN)
    args = ("--set", f"search.experiments={plan}", "--storage", str(tmp_path / "s"), "--name", "x")
    dry = run_study("experiments", *args, "--dry-run", cwd=tmp_path)
    assert dry.returncode == 0 and "4 trials" in dry.stdout and '"fp16": "needs a GPU' in dry.stdout
    result = run_study("experiments", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    # a quiet console: not one of DeepSpeed's torch.distributed deprecation warnings per step
    assert "is deprecated" not in result.stdout + result.stderr
    folder = tmp_path / "s" / "x"
    trials = pd.read_parquet(folder / schema.TRIALS_FILE)
    reports = pd.read_parquet(folder / schema.REPORTS_FILE)
    variation, repeat = (
        schema.CONFIG_PREFIX + schema.VARIATION,
        schema.CONFIG_PREFIX + schema.REPEAT,
    )
    assert sorted(zip(trials[variation], trials[repeat])) == [
        (v, r) for v in ("baseline", "zero2-cut") for r in (0, 1)
    ]
    # paired: repeat k starts from the same seed in every variation; the repeats differ
    seeds = reports.groupby([repeat, variation])[schema.TRIAL_SEED].first().unstack(variation)
    assert (seeds.nunique(axis=1) == 1).all() and seeds.iloc[:, 0].nunique() == 2
    # each trial in a fresh process (its peak memory its own), on the in-process path
    assert reports.groupby(schema.TRIAL_ID)[schema.PROCESS_ID].first().nunique() == 4
    assert set(reports[schema.EXECUTION_PATH]) == {"local"}
    # each variation's knob reached its worker
    cut = reports.groupby(variation)[schema.TRUNCATED_SOURCE_FRACTION].min()
    assert cut["zero2-cut"] > cut["baseline"]
    # every trial's final model scored on the test split
    assert trials[schema.TEST_ROUGEL].notna().all() and (trials[schema.TEST_N] == 16).all()
    meta = read_metadata(folder)
    assert meta.experiments["skipped"] == {"fp16": "needs a GPU: tensor cores"}
    assert meta.experiments["runnable"] == ["baseline", "zero2-cut"]
    assert {k: v["samples"] for k, v in meta.data_details["splits"].items()} == {
        "train": 64, "validation": 8
    }  # fmt: skip
    assert meta.test["split_details"]["samples"] == 16  # counted when read, at the end
    assert [m["model"] for m in meta.models] == ["tiny-bart"]

    out = tmp_path / "report"
    assert report_main([str(folder), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    for title in (
        "Effects of each technique",
        "Not run here",
        "Each variation's own figures",
        "Models on builtin",
        "Dataset details",
        "Environment",
        "Model details",
        "Hyperparameters",
    ):
        assert f"## {title}" in md
    assert "reduces gpu memory: not measurable here (no GPU)" in md
    assert "| fp16 | needs a GPU: tensor cores |" in md
    effects = md.split("## Effects of each technique")[1].split("## ")[0]
    assert "| zero2-cut | baseline |" in effects
    assert len(pd.read_parquet(out / "effects.parquet")) == 4
    assert "<img alt='Effects plot'" in (out / "report.html").read_text()
