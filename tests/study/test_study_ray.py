"""Real studies on a real local Ray (each in its own process, as a user runs them).

Each study is the smallest that still trains, evaluates, checkpoints and reports: 64 training
dialogues, 2 epochs with 2 reports each, half a CPU per Train worker (4 trials at once).
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from study import schema
from tests.conftest import REPO, TINY_STUDY, run_study

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]

TEST_SPACE = """
parameters:
  lr:
    domain: {type: loguniform, low: 1.0e-4, high: 3.0e-2}
    grid: [1.0e-3, 1.0e-2]
    mutate: perturb
  batch_size:
    domain: {type: choice, values: [8, 16]}
    grid: [8]
    mutate: perturb
"""


@pytest.fixture
def study_args(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(TEST_SPACE)
    return [*TINY_STUDY, "--set", "train.evals_per_epoch=2", "--set", f"search.space={space}",
            "--storage", str(tmp_path / "results")]


def load(study_dir: Path):
    return (pd.read_parquet(study_dir / schema.REPORTS_FILE), pd.read_parquet(study_dir / schema.TRIALS_FILE),
            json.loads((study_dir / schema.METADATA_FILE).read_text()))


def test_grid_study_end_to_end(tmp_path, study_args):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    proc = run_study("grid", "--name", "g", "--mlflow", tracking, *study_args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study_dir = tmp_path / "results" / "g"
    reports, trials, meta = load(study_dir)
    # the closing summary
    assert f"folder:     {study_dir}" in proc.stdout and "best rougeL:" in proc.stdout
    assert "trials:     2 (0 errors)" in proc.stdout
    # metadata: resolved config, derived numbers, versions, hardware, footprint inputs
    assert meta["derived"]["num_trials"] == 2 and meta["derived"]["grid_points"] == 2
    assert meta["config"]["data"]["n_train"] == 64 and meta["versions"]["ray"] == "2.60.0"
    assert meta["hardware"]["logical_cpus"] == os.cpu_count() and meta["finished_at"] > meta["started_at"]
    assert meta["footprint"]["intensity_g_per_kwh"] > 0
    assert meta["cost"]["billed_usd"] is None and meta["cost"]["nodes"] == 1  # no price on a local machine
    cluster = meta["cluster_energy"]  # the whole node, study start to end, is more than the trials
    assert cluster["energy_j"] > cluster["trials_energy_j"] > 0 and cluster["overhead_energy_j"] > 0
    # one row per report, every trial its 4 reports once, units in the column names
    assert len(reports) == 8 and reports[schema.REPORT_ID].is_unique
    assert sorted(reports.groupby(schema.TRIAL_ID)[schema.ITERATION].apply(sorted).sum()) == [1, 1, 2, 2, 3, 3, 4, 4]
    for col in (*schema.ROUGE_COLUMNS, schema.VAL_LOSS, schema.TOKENS_PER_S, schema.ENERGY_TOTAL_J,
                schema.ENERGY_CPU_SOURCE, schema.DEVICE_S, schema.CO2_KG, schema.TRAIN_FLOPS,
                schema.PEAK_RSS_BYTES, schema.CHECKPOINT_BYTES, "config/lr"):
        assert col in reports.columns, col
    assert set(reports["config/lr"]) == {1e-3, 1e-2}
    assert (reports[schema.ENERGY_CPU_SOURCE] == "estimated").all() and reports[schema.ENERGY_GPU_J].isna().all()
    assert (reports.groupby(schema.TRIAL_ID)[schema.ENERGY_TOTAL_J].diff().dropna() > 0).all()
    assert reports[schema.COST_USD].isna().all()  # local machine: not applicable, not invented
    assert len(trials) == 2 and set(trials[schema.STATUS]) == {"TERMINATED"}
    assert set(trials[schema.STOP_REASON]) == {"completed"} and set(trials[schema.N_REPORTS]) == {4}
    # checkpoints of finished trials are cleaned up, except the best trial's newest
    runs = list((study_dir / schema.TRAIN_RUNS_DIR).glob("*/checkpoint_2*"))
    assert len(runs) == 1, runs
    # MLflow got every trial with its parameters and metrics, energy included
    import mlflow

    mlflow.set_tracking_uri(tracking)
    logged = mlflow.search_runs(experiment_names=["g"])
    assert len(logged) == 2
    assert set(logged["params.lr"].astype(float)) == {1e-3, 1e-2}
    assert logged["metrics.energy_total_j"].notna().all() and logged["metrics.rougeL"].notna().all()


def test_pbt_really_exploits(tmp_path, study_args):
    # a population of 2 where the lower half (1 trial) clones the upper half at every report;
    # 8 reports of 256 examples each, so a trial cannot finish before the other has started (a
    # clone of a finished donor has nothing left to train, and reports nothing)
    proc = run_study("pbt", "--name", "p", *study_args, "--set", "data.n_train=256", "--set", "train.epochs=4",
                     "--set", "budget.trial_epochs=8", "--set", "search.pbt_quantile_fraction=0.5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    study_dir = tmp_path / "results" / "p"
    reports, trials, meta = load(study_dir)
    assert meta["derived"]["pbt_population"] == 2 and len(trials) == 2
    # PBT's own evidence on disk
    assert (study_dir / "pbt_global.txt").read_text().strip()
    assert list(study_dir.glob("pbt_policy_*.txt"))
    # an exploited trial's first report after the exploit continues the donor's model
    cloned = reports[(reports[schema.RESTORED_FROM] != "") & (reports[schema.RESTORED_FROM] != reports[schema.TRIAL_ID])]
    assert len(cloned), "no report came from a cloned checkpoint"
    first = cloned.sort_values(schema.TIMESTAMP_S).groupby([schema.TRIAL_ID, schema.SEGMENT]).head(1)
    checked = 0
    for _, row in first.iterrows():
        donor = reports[(reports[schema.TRIAL_ID] == row[schema.RESTORED_FROM])
                        & (reports[schema.ITERATION] == row[schema.ITERATION] - 1)
                        & (reports[schema.TIMESTAMP_S] < row[schema.TIMESTAMP_S])]
        if donor.empty:
            continue
        donor_row = donor.sort_values(schema.TIMESTAMP_S).iloc[-1]
        # half an epoch (one report) past the donor's checkpoint, not past its own
        assert row[schema.EPOCH] == pytest.approx(donor_row[schema.EPOCH] + 0.5)
        assert row[schema.STEP] > donor_row[schema.STEP]
        assert row[schema.VAL_LOSS] != donor_row[schema.VAL_LOSS]  # it trained on from there
        checked += 1
    assert checked >= 1
    assert reports[schema.REPORT_ID].is_unique
    # energy and device time are the trial's own, summed over its segments: an exploited trial's
    # totals keep growing past the exploit (neither reset nor replaced by the donor's)
    for _, trial in reports.sort_values(schema.TIMESTAMP_S).groupby(schema.TRIAL_ID):
        assert (trial[schema.ENERGY_TOTAL_J].diff().dropna() > 0).all()
        assert (trial[schema.DEVICE_S].diff().dropna() > 0).all()
    assert reports[schema.SEGMENT].max() >= 2


def test_asha_stops_trials_early(tmp_path, study_args):
    proc = run_study("asha", "--name", "a", "--set", "budget.trial_epochs=6", "--set", "search.metric=val_loss",
                     "--set", "search.mode=min", *study_args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports, trials, meta = load(tmp_path / "results" / "a")
    assert meta["derived"]["num_trials"] == 6 and meta["derived"]["asha_rungs"] == [1, 3]
    assert len(trials) == 6 and set(trials[schema.STATUS]) == {"TERMINATED"}  # stopped ones freed their CPUs
    stopped = trials[trials[schema.STOP_REASON] == "scheduler_stopped"]
    assert len(stopped) >= 1 and (stopped[schema.N_REPORTS] < 4).all()
    assert (trials[trials[schema.STOP_REASON] == "completed"][schema.N_REPORTS] == 4).all()


def test_resume_after_the_study_process_is_killed(tmp_path, study_args):
    env = {**os.environ, "PYTHONPATH": str(REPO), "RAY_AUTH_MODE": "disabled"}
    args = [sys.executable, "-m", "study.run", "grid", "--name", "r", *study_args]
    proc = subprocess.Popen(args, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    reports_file = tmp_path / "results" / "r" / schema.REPORTS_FILE
    deadline = time.time() + 400
    while time.time() < deadline:
        if reports_file.exists() and len(pd.read_parquet(reports_file)) >= 2:
            break
        time.sleep(1)
    else:
        pytest.fail("the study reported nothing within 400 s")
    os.killpg(proc.pid, signal.SIGKILL)  # the study process and the local Ray it started
    proc.wait()
    before = len(pd.read_parquet(reports_file))
    assert before < 8

    again = run_study("grid", "--name", "r", "--resume", *study_args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming r:" in again.stdout
    reports, trials, _ = load(tmp_path / "results" / "r")
    errors = "\n".join(p.read_text()[-2000:] for p in (tmp_path / "results" / "r").glob("*/error.txt"))
    assert set(trials[schema.STATUS]) == {"TERMINATED"} and len(trials) == 2, errors
    # every report once: each trial's iterations 1..4 exactly once
    per_trial = reports.groupby(schema.TRIAL_ID)[schema.ITERATION].apply(sorted)
    assert all(its == [1, 2, 3, 4] for its in per_trial), per_trial
    assert reports[schema.REPORT_ID].is_unique
    # the killed run's cluster energy (its last poll) is kept and counted with the resumed run's
    meta = json.loads((tmp_path / "results" / "r" / schema.METADATA_FILE).read_text())
    (killed_run,) = meta["cluster_energy"]["previous_runs"]
    assert killed_run["energy_j"] > 0 and killed_run["nodes"][0]["cpu_j"] > 0


def test_energy_budget_stops_the_study(tmp_path, study_args):
    # 2e-6 kWh = 7.2 J: spent by the first reports (each trial's first interval is ~10 J here)
    proc = run_study("grid", "--name", "b", "--set", "budget.energy_kwh=2e-6", *study_args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "stopped on budget: budget.energy_kwh: spent" in proc.stdout
    reports, trials, meta = load(tmp_path / "results" / "b")
    assert meta["stopped_on_budget"].startswith("budget.energy_kwh")
    assert len(reports) < 8 and "budget" in set(trials[schema.STOP_REASON])
