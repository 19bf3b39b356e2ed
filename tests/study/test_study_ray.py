"""Real studies on a real local Ray (each in its own process, as a user runs them).

Each study is the smallest that still trains, evaluates, checkpoints and reports: 64 training
dialogues, 2 epochs with 2 reports each, half a CPU per trial (4 trials at once) unless a test
says otherwise.
"""

import base64
import contextlib
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest
import yaml

from core import schema
from study.run import DEFAULT_STORAGE
from tests.conftest import LR_BATCH_SPACE, REPO, TINY_STUDY, run_study

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]

TEST_SPACE = LR_BATCH_SPACE


@pytest.fixture
def study_args(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(TEST_SPACE)
    return [
        *TINY_STUDY,
        "--set",
        "train.evals_per_epoch=2",
        "--set",
        f"search.space={space}",
        "--storage",
        str(tmp_path / "results"),
    ]


def load(study_dir: Path):
    return (
        pd.read_parquet(study_dir / schema.REPORTS_FILE),
        pd.read_parquet(study_dir / schema.TRIALS_FILE),
        json.loads((study_dir / schema.METADATA_FILE).read_text()),
    )


LOAD_BEST_MODEL = """
import json, sys
from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
model = AutoModelForSeq2SeqLM.from_pretrained(sys.argv[1])
tokenizer = AutoTokenizer.from_pretrained(sys.argv[1])
ids = tokenizer(["Amanda: I baked cookies. Do you want some?"], return_tensors="pt")
(summary,) = tokenizer.batch_decode(model.generate(**ids), skip_special_tokens=True)
print(json.dumps([model.generation_config.max_new_tokens, summary]))
"""


def test_grid_study_end_to_end(tmp_path, study_args):
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    reads = tmp_path / "data_reads.jsonl"  # the data loader notes every split it reads here
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")},
        "PYTHONPATH": str(REPO),
        "GREENTUNE_DATA_READS": str(reads),
    }
    # two passes over the 2-point grid, two trials at a time (one CPU each): 4 trials, the
    # second pass in the processes the first pass used
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "study.run",
            "grid",
            "--name",
            "g",
            "--mlflow",
            tracking,
            *study_args,
            "--set",
            "budget.trial_epochs=8",
            "--set",
            "resources.cpus_per_worker=1",
        ],
        cwd=tmp_path,
        env=env,
        text=True,
        capture_output=True,
        timeout=800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # a quiet console (--verbose brings Ray Train's lines back): Tune's tables and our lines
    console = proc.stdout + proc.stderr
    for noise in ("Checkpoint successfully created", "Running in local mode", "Token auth"):
        assert noise not in console, noise
    assert "  CO2e:       " in proc.stdout and "  cost:       not applicable" in proc.stdout
    study_dir = tmp_path / "results" / "g"
    reports, trials, meta = load(study_dir)
    # the closing summary
    assert (
        f"folder:     {study_dir}" in proc.stdout and "selected:   validation rougeL" in proc.stdout
    )
    assert "trials:     4 (0 errors)" in proc.stdout and "test:       ROUGE-L" in proc.stdout
    # metadata: resolved config, derived numbers, versions, hardware, footprint inputs
    assert meta["derived"]["num_trials"] == 4 and meta["derived"]["grid_repeats"] == 2
    assert meta["config"]["data"]["n_train"] == 64 and meta["versions"]["ray"] == "2.60.0"
    assert (
        meta["hardware"]["logical_cpus"] == os.cpu_count()
        and meta["finished_at"] > meta["started_at"]
    )
    assert meta["footprint"]["intensity_g_per_kwh"] > 0 and meta["execution_path"] == "local"
    assert meta["ray_auth"] == "token"  # the local Ray admitted only holders of the study's token
    assert (
        meta["cost"]["billed_usd"] is None and meta["cost"]["nodes"] == 1
    )  # no price on a local machine
    cluster = meta["cluster_energy"]  # the whole node, study start to end, is more than the trials
    assert cluster["energy_j"] > cluster["trials_energy_j"] > 0 and cluster["overhead_energy_j"] > 0
    # the budget as spent: 4 trials x 2 epochs exactly
    assert meta["budget"]["unit"] == "trial_epochs" and meta["budget"]["amount"] == 8
    assert meta["budget"]["spent"] == pytest.approx(8.0)
    # one row per report, every trial its 4 reports once, units in the column names
    assert len(reports) == 16 and reports[schema.REPORT_ID].is_unique
    assert all(
        sorted(its) == [1, 2, 3, 4]
        for its in reports.groupby(schema.TRIAL_ID)[schema.ITERATION].apply(list)
    )
    for col in (
        *schema.ROUGE_COLUMNS,
        schema.VAL_LOSS,
        schema.TOKENS_PER_S,
        schema.ENERGY_TOTAL_J,
        schema.ENERGY_CPU_SOURCE,
        schema.DEVICE_S,
        schema.CO2_KG,
        schema.TRAIN_FLOPS,
        schema.PEAK_RSS_BYTES,
        schema.CHECKPOINT_BYTES,
        schema.CHECKPOINT_PATH,
        "config/lr",
    ):
        assert col in reports.columns, col
    assert set(reports["config/lr"]) == {1e-3, 1e-2} and set(reports[schema.EXECUTION_PATH]) == {
        "local"
    }
    assert (reports[schema.ENERGY_CPU_SOURCE] == "estimated").all() and reports[
        schema.ENERGY_GPU_J
    ].isna().all()
    assert (reports.groupby(schema.TRIAL_ID)[schema.ENERGY_TOTAL_J].diff().dropna() > 0).all()
    assert reports[schema.COST_USD].isna().all()  # local machine: not applicable, not invented
    # grid repeats are real repeats: their own seeds, so the same point trains differently
    firsts = reports[reports[schema.ITERATION] == 1]
    for lr, group in firsts.groupby("config/lr"):
        assert group[schema.TRIAL_SEED].nunique() == 2, lr
        assert group[schema.VAL_LOSS].nunique() == 2, lr
    # the second pass ran in the trial processes of the first (reused, set up once)
    assert reports[schema.PROCESS_ID].nunique() == 2
    assert len(trials) == 4 and set(trials[schema.STATUS]) == {"TERMINATED"}
    assert set(trials[schema.STOP_REASON]) == {"completed"} and set(trials[schema.N_REPORTS]) == {4}

    # selected on validation, scored once on the held-out split
    best = reports.loc[reports[schema.ROUGEL].idxmax()]
    assert meta["selection"]["validation_score"] == pytest.approx(best[schema.ROUGEL])
    assert meta["selection"]["checkpoint"] == best[schema.CHECKPOINT_PATH]
    scores = pd.read_parquet(study_dir / schema.TEST_SCORES_FILE)
    assert len(scores) == 16 == meta["test"]["n"] and meta["test"]["split"] == "test"
    assert meta["test"]["rougeL"] == pytest.approx(scores[schema.ROUGEL].mean())
    low, high = meta["test"]["rougeL_ci95"]
    assert low <= meta["test"]["rougeL"] <= high
    # scored in the warm worker the study started with its trials; this test's own process,
    # which loaded nothing for it beforehand, gives the same summaries and scores
    assert meta["test"]["ran_in"] == "warm_worker"
    from core.config import StudyConfig, from_dict
    from trainables.held_out import evaluate_checkpoint

    fresh = evaluate_checkpoint(
        from_dict(StudyConfig, meta["config"]),
        str(study_dir / schema.TRAIN_RUNS_DIR / meta["selection"]["checkpoint"]),
        "test",
        16,
    )
    assert fresh.predictions == list(scores[schema.PREDICTION])
    assert fresh.scores[schema.ROUGEL] == pytest.approx(list(scores[schema.ROUGEL]))
    # the lead-k floor, computed after the trials in the same worker
    assert meta["baseline"]["lead_k"] == 3 and 0 < meta["baseline"][schema.ROUGEL] < 1
    # the selected model as Hugging Face users take it: from_pretrained, generate, its card
    model_dir = study_dir / schema.BEST_MODEL_DIR
    assert Path(meta["selection"]["model"]) == model_dir.resolve()
    loaded = subprocess.run(  # in a fresh Python, as a user loads it
        [sys.executable, "-c", LOAD_BEST_MODEL, str(model_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    max_new, summary = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert max_new == meta["config"]["eval"]["max_new_tokens"] and isinstance(summary, str)
    card = (model_dir / schema.MODEL_CARD_FILE).read_text()
    emissions = yaml.safe_load(card.split("---\n")[1])["co2_eq_emissions"]
    assert emissions["emissions"] == pytest.approx(best[schema.CO2_KG] * 1000, rel=1e-5)
    assert emissions["training_type"] == "fine-tuning" and "estimated" in emissions["source"]
    assert "The whole search that found it (grid" in card
    assert f"model:      {meta['selection']['model']}" in proc.stdout
    # the data loader never read the test split before the final evaluation: every read of it
    # comes after the last report, and only the final evaluation's
    logged = [json.loads(line) for line in reads.read_text().splitlines()]
    test_reads = [r for r in logged if r["split"] == "test"]
    assert len(test_reads) == 1 and test_reads[0]["n"] == 16
    assert test_reads[0]["time_s"] > reports[schema.TIMESTAMP_S].max()
    assert {r["split"] for r in logged} == {"train", "validation", "test"}
    # checkpoints of finished trials are cleaned up, except the selected model's
    left = [
        p.relative_to(study_dir / schema.TRAIN_RUNS_DIR).as_posix()
        for p in (study_dir / schema.TRAIN_RUNS_DIR).glob("*/checkpoint_2*")
    ]
    assert left == [meta["selection"]["checkpoint"]]
    # MLflow: one parent run for the study, a nested run per trial (read back as a user would)
    import mlflow

    mlflow.set_tracking_uri(tracking)
    logged = mlflow.search_runs(experiment_names=["g"])
    parents = logged[logged["tags.greentune.kind"] == "study"]
    trials_logged = logged[logged["tags.mlflow.parentRunId"].notna()]
    assert len(parents) == 1 and len(trials_logged) == 4 and len(logged) == 5
    parent = parents.iloc[0]
    assert parent["run_id"] == meta["mlflow_run_id"] and parent["status"] == "FINISHED"
    assert (parent["tags.strategy"], parent["tags.seed"], parent["tags.model"]) == (
        "grid",
        "0",
        "tiny-bart",
    )
    assert parent["params.data.n_train"] == "64" and parent["params.train.epochs"] == "2"
    assert parent["metrics.cluster_energy_j"] == pytest.approx(cluster["energy_j"])
    assert parent["metrics.test_rougeL"] == pytest.approx(meta["test"]["rougeL"])
    assert (trials_logged["tags.mlflow.parentRunId"] == parent["run_id"]).all()
    assert set(trials_logged["tags.mlflow.runName"]) == set(trials[schema.TRIAL_ID])
    assert set(trials_logged["params.lr"].astype(float)) == {1e-3, 1e-2}
    assert trials_logged["metrics.energy_total_j"].notna().all()
    assert trials_logged["metrics.rougeL"].notna().all()
    assert (trials_logged["tags.energy_cpu_source"] == "estimated").all()
    assert not [c for c in logged.columns if c in ("metrics.pid", "metrics.done")]  # no bookkeeping
    client = mlflow.MlflowClient(tracking)
    artifacts = {a.path for a in client.list_artifacts(parent["run_id"])}
    assert {schema.METADATA_FILE, schema.REPORTS_FILE, schema.BEST_MODEL_DIR} <= artifacts
    history = client.get_metric_history(trials_logged.iloc[0]["run_id"], "rougeL")
    assert sorted(m.step for m in history) == [1, 2, 3, 4]  # every report, by its number

    # the report CLI on the study just made (the writer/reader contract on a real study; the
    # report's own tests use written fixtures)
    out = tmp_path / "report"
    report = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(study_dir), "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    for name in ("report.html", "report.md", "summary.parquet", "summary.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert str(out / name) in report.stdout
    (row,) = pd.read_parquet(out / "summary.parquet").to_dict("records")
    assert row["strategy"] == "grid" and row["n_seeds"] == 1 and row["trials_started_mean"] == 4
    assert row["best_rougeL_mean"] == reports[schema.ROUGEL].max()
    assert list(pd.read_csv(out / "summary.csv")["strategy"]) == ["grid"]
    html = (out / "report.html").read_text()  # self-contained: every plot an embedded PNG
    images = re.findall(r"<img [^>]*src='data:image/png;base64,([^']*)'", html)
    assert len(images) >= 5 and len(images) == html.count("<img ")
    assert all(base64.b64decode(png, validate=True).startswith(b"\x89PNG") for png in images)
    # the whole-cluster energy the study recorded is in the energy section, labelled, and the
    # lead-k baseline the study recorded is the floor
    md = (out / "report.md").read_text()
    assert "## Energy: whole cluster vs the trials' own meters" in md
    assert row["cluster_metered_seeds"] == 1 and row["cluster_energy_kwh_mean"] > 0
    assert "estimated" in row["cluster_energy_basis"]  # CPU and RAM are always estimated
    assert f"lead-{meta['baseline']['lead_k']} baseline" in md


def test_pbt_really_exploits(tmp_path, study_args):
    # a population of 2 where the lower half (1 trial) clones the upper half at every report;
    # 8 reports of 256 examples each, so a trial cannot finish before the other has started (a
    # clone of a finished donor has nothing left to train, and reports nothing)
    proc = run_study(
        "pbt",
        "--name",
        "p",
        *study_args,
        "--set",
        "data.n_train=256",
        "--set",
        "train.epochs=4",
        "--set",
        "budget.trial_epochs=8",
        "--set",
        "search.pbt_quantile_fraction=0.5",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # Tune stops trial processes (SIGTERM): Ray's handler's SystemExit, where Python cannot
    # raise it, is not printed (seen once in 9 runs of this test before the fix); nor Tune's
    # loggers missing a clone's own progress file (most runs before)
    for noise in ("Exception ignored in", "SystemExit", "Remote file not found"):
        assert noise not in proc.stdout + proc.stderr, proc.stderr[-3000:]
    study_dir = tmp_path / "results" / "p"
    reports, trials, meta = load(study_dir)
    assert meta["derived"]["pbt_population"] == 2 and len(trials) == 2
    # PBT's own evidence on disk, and ours: who cloned whom at which score
    assert (study_dir / "pbt_global.txt").read_text().strip()
    assert list(study_dir.glob("pbt_policy_*.txt"))
    decisions = pd.read_parquet(study_dir / schema.PBT_DECISIONS_FILE)
    exploits = decisions.dropna(subset=["donor"])
    assert len(exploits)
    # never a worse donor: a higher score, or the same with a lower validation loss
    assert (
        (exploits["donor_score"] > exploits["score"])
        | (
            (exploits["donor_score"] == exploits["score"])
            & (exploits["donor_val_loss"] < exploits[schema.VAL_LOSS])
        )
    ).all()
    # an exploited trial's first report after the exploit continues the donor's model
    cloned = reports[
        (reports[schema.RESTORED_FROM] != "")
        & (reports[schema.RESTORED_FROM] != reports[schema.TRIAL_ID])
    ]
    assert len(cloned), "no report came from a cloned checkpoint"
    first = (
        cloned.sort_values(schema.TIMESTAMP_S).groupby([schema.TRIAL_ID, schema.SEGMENT]).head(1)
    )
    for _, row in first.iterrows():
        donor = reports[
            (reports[schema.TRIAL_ID] == row[schema.RESTORED_FROM])
            & (reports[schema.ITERATION] == row[schema.RESTORED_FROM_ITERATION])
        ]
        donor_row = donor.sort_values(schema.TIMESTAMP_S).iloc[-1]
        assert row[schema.RESTORED_FROM_SCORE] == pytest.approx(donor_row[schema.ROUGEL])
        # half an epoch (one report) past the donor's checkpoint, not past its own
        assert row[schema.EPOCH] == pytest.approx(donor_row[schema.EPOCH] + 0.5)
        assert row[schema.STEP] > donor_row[schema.STEP]
        assert row[schema.VAL_LOSS] != donor_row[schema.VAL_LOSS]  # it trained on from there
        # (Tune may run the exploited trial in a reused process or a fresh one: CI saw both, so
        # nothing here claims reuse; tests/trainables/test_reuse.py and
        # benchmarks/segment_start.py cover the reused process)
    assert reports[schema.REPORT_ID].is_unique
    # energy and device time are the trial's own, summed over its segments: an exploited trial's
    # totals keep growing past the exploit (neither reset nor replaced by the donor's)
    for _, trial in reports.sort_values(schema.TIMESTAMP_S).groupby(schema.TRIAL_ID):
        assert (trial[schema.ENERGY_TOTAL_J].diff().dropna() > 0).all()
        assert (trial[schema.DEVICE_S].diff().dropna() > 0).all()
    assert reports[schema.SEGMENT].max() >= 2


FINISH_FIRST_SPACE = """
parameters:
  lr:
    domain: {type: loguniform, low: 1.0e-5, high: 1.0}
    grid: [3.0e-3]
    mutate: perturb
  batch_size:
    domain: {type: choice, values: [2, 32]}
    grid: [32]
    mutate: none
# Two good, fast trials (batch 32: 32 steps an epoch) and two slow ones (batch 2: 512 steps) that
# learn nothing (a learning rate far too low, or one that diverges): the good ones finish first,
# by a wide margin (short generations keep the evaluations, the same for every trial, small).
points_to_evaluate:
  - {lr: 3.0e-3, batch_size: 32}
  - {lr: 3.0e-3, batch_size: 32}
  - {lr: 1.0, batch_size: 2}
  - {lr: 1.0e-5, batch_size: 2}
"""


def test_pbt_learns_from_trials_that_finished(tmp_path):
    # PBT decides at report 3 of 4 only: by then the fast trials have finished, so the slow ones
    # can only clone a finished trial, which Ray's PBT would never rank.
    space = tmp_path / "space.yaml"
    space.write_text(FINISH_FIRST_SPACE)
    proc = run_study(
        "pbt",
        "--name",
        "f",
        *TINY_STUDY,
        "--set",
        f"search.space={space}",
        "--set",
        "data.n_train=1024",
        "--set",
        "train.evals_per_epoch=2",
        "--set",
        "budget.trial_epochs=8",
        "--set",
        "eval.max_new_tokens=4",
        "--set",
        "search.pbt_perturbation_interval=3",
        "--set",
        "search.metric=val_loss",
        "--set",
        "search.mode=min",
        "--storage",
        str(tmp_path / "results"),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study_dir = tmp_path / "results" / "f"
    reports, trials, _ = load(study_dir)
    decisions = pd.read_parquet(study_dir / schema.PBT_DECISIONS_FILE)
    configs = reports.groupby(schema.TRIAL_ID)["config/batch_size"].first()
    slow = set(configs[configs == 2].index)
    # the slow trials exploited, and at least one cloned a trial that had already finished
    exploits = decisions.dropna(subset=["donor"])
    assert set(exploits[schema.TRIAL_ID]) <= slow and len(exploits) >= 1
    assert exploits["donor_finished"].any(), decisions.to_string()
    # a donor is never a slow (worse) trial, and always beats the cloner's validation loss
    assert not set(exploits["donor"]) & slow
    assert (exploits["donor_score"] < exploits["score"]).all()  # mode=min: lower is better
    assert all(math.isfinite(v) for v in exploits["donor_score"])
    assert set(trials[schema.STATUS]) == {"TERMINATED"}


def spend_bound(meta) -> float:
    """The stated overshoot bound in trial-epochs: one report interval per running slot."""
    return meta["concurrent_trials"] / meta["config"]["train"]["evals_per_epoch"]


@pytest.mark.parametrize("strategy", ["asha"])  # random and the others: test_strategies_ray.py
def test_samplers_spend_the_budget_and_no_more(tmp_path, study_args, strategy):
    # A budget of 6 trial-epochs: ASHA keeps starting trials until it is spent, and
    # stop the running ones when it runs out; the spend overshoots by at most one report
    # interval (half an epoch here) per running slot.
    proc = run_study(
        strategy,
        "--name",
        strategy,
        "--set",
        "budget.trial_epochs=6",
        "--set",
        "search.metric=val_loss",
        "--set",
        "search.mode=min",
        # ASHA one trial at a time: its rung decisions then follow the seeded trial order. With
        # trials in parallel the rung arrivals can come in improving order, so that nothing is
        # stopped (seen once: four trials reaching rung 1 worst first).
        *(["--set", "resources.max_concurrent_trials=1"] if strategy == "asha" else []),
        *study_args,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports, trials, meta = load(tmp_path / "results" / strategy)
    spent = reports.groupby(schema.TRIAL_ID)[schema.TRIAL_EPOCHS].max().sum()
    assert meta["budget"]["spent"] == pytest.approx(spent)
    assert 6 <= spent <= 6 + spend_bound(meta)
    assert meta["derived"].get("num_trials") is None  # no trial count: the budget decides
    assert meta["stopped_on_budget"].startswith("budget.trial_epochs: spent")
    assert set(trials[schema.STATUS]) == {"TERMINATED"}  # stopped ones freed their CPUs
    if strategy == "asha":
        assert meta["derived"]["asha_rungs"] == [1, 3]
        stopped = trials[trials[schema.STOP_REASON] == "scheduler_stopped"]
        assert len(stopped) >= 1 and (stopped[schema.N_REPORTS] < 4).all()
    assert (trials[trials[schema.STOP_REASON] == "completed"][schema.N_REPORTS] == 4).all()


def _tree_digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.mark.parametrize("where", ["moved", "uri"])
def test_resume_after_the_study_process_is_killed(tmp_path, study_args, where):
    """Killed mid-study, then resumed: from a moved copy of its folder (the original must stay
    byte-identical), or, with a file:// URI storage, on a "new head" whose local folder is gone
    (`ray down` deleted it): the results come back from the URI."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")},
        "PYTHONPATH": str(REPO),
    }
    uri = (tmp_path / "remote").as_uri()
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    # the URI study also logs to MLflow: the resumed run must log into the same runs
    storage = ["--storage", uri, "--mlflow", tracking] if where == "uri" else []
    # 256 examples a report: the kill lands mid-study, whatever the machine's speed
    longer = ["--set", "data.n_train=512"]
    args = [
        sys.executable,
        "-m",
        "study.run",
        "grid",
        "--name",
        "r",
        *study_args,
        *longer,
        *storage,
    ]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # with a URI the tables are watched on the URI: copied there after every write
    first_dir = tmp_path / ("remote" if where == "uri" else "results") / "r"
    reports_file = first_dir / schema.REPORTS_FILE
    deadline = time.time() + 400
    while time.time() < deadline:
        if reports_file.exists() and len(pd.read_parquet(reports_file)) >= 2:
            break
        time.sleep(0.5)
    else:
        pytest.fail("the study reported nothing within 400 s")
    # the study process and the local Ray it started, trial workers included: they run in
    # process groups of their own and would otherwise write on for a few seconds
    family = psutil.Process(proc.pid).children(recursive=True)
    os.killpg(proc.pid, signal.SIGKILL)
    for p in family:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(family, timeout=60)
    proc.wait()
    before = len(pd.read_parquet(reports_file))
    assert before < 8

    if where == "moved":
        shutil.copytree(tmp_path / "results", tmp_path / "moved")
        original = _tree_digest(tmp_path / "results")
        study_dir = tmp_path / "moved" / "r"
        storage = ["--storage", str(tmp_path / "moved")]
    else:
        assert (tmp_path / DEFAULT_STORAGE / "r" / schema.METADATA_FILE).exists()
        shutil.rmtree(tmp_path / DEFAULT_STORAGE)  # the head and its disk are gone
        study_dir = tmp_path / "remote" / "r"
    again = run_study(
        "grid", "--name", "r", "--resume", *study_args, *longer, *storage, cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming r:" in again.stdout
    if where == "moved":  # the copy resumed where it is; the original was not touched
        assert _tree_digest(tmp_path / "results") == original
    else:
        assert "fetched metadata.json, reports.parquet, trials.parquet, cluster_energy.json" in (
            again.stdout
        )
        assert uri + "/r" in again.stdout  # the CLI says where the results live
        # the URI holds the results as the head wrote them last
        head = tmp_path / DEFAULT_STORAGE / "r"
        for name in (schema.METADATA_FILE, schema.REPORTS_FILE, schema.TRIALS_FILE):
            assert (study_dir / name).read_bytes() == (head / name).read_bytes(), name
    reports, trials, meta = load(study_dir)
    errors = "\n".join(p.read_text()[-2000:] for p in study_dir.glob("*/error.txt"))
    assert set(trials[schema.STATUS]) == {"TERMINATED"} and len(trials) == 2, errors
    # every report once: each trial's iterations 1..4 exactly once
    per_trial = reports.groupby(schema.TRIAL_ID)[schema.ITERATION].apply(sorted)
    assert all(its == [1, 2, 3, 4] for its in per_trial), per_trial
    assert reports[schema.REPORT_ID].is_unique
    # the killed run's cluster energy (its last poll) is kept and counted with the resumed run's
    (killed_run,) = meta["cluster_energy"]["previous_runs"]
    assert killed_run["energy_j"] > 0 and killed_run["nodes"][0]["cpu_j"] > 0
    assert meta["test"]["evaluated"] and meta["selection"]["trial_id"] in set(
        reports[schema.TRIAL_ID]
    )
    # the selected model's checkpoint is in the resumed study's own train_runs/
    assert (study_dir / schema.TRAIN_RUNS_DIR / meta["selection"]["checkpoint"]).is_dir()
    if where == "uri":  # one parent run, one nested run per trial, both runs' reports in them
        import mlflow

        mlflow.set_tracking_uri(tracking)
        logged = mlflow.search_runs(experiment_names=["r"])
        children = logged[logged["tags.mlflow.parentRunId"].notna()]
        assert len(logged) == 3 and set(children["tags.mlflow.parentRunId"]) == {
            meta["mlflow_run_id"]
        }
        client = mlflow.MlflowClient(tracking)
        for run_id in children["run_id"]:
            steps = {m.step for m in client.get_metric_history(run_id, "rougeL")}
            assert steps == {1, 2, 3, 4}, steps
        assert client.get_run(meta["mlflow_run_id"]).info.status == "FINISHED"


def test_energy_budget_stops_the_study(tmp_path, study_args):
    # 2e-6 kWh = 7.2 J of the whole machine x PUE: spent by the first reports
    proc = run_study(
        "grid", "--name", "b", "--set", "budget.energy_kwh=2e-6", *study_args, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "budget:     spent" in proc.stdout and "stopped when it ran out" in proc.stdout
    reports, trials, meta = load(tmp_path / "results" / "b")
    assert meta["stopped_on_budget"].startswith("budget.energy_kwh")
    assert meta["budget"]["scope"] == "cluster" and meta["budget"]["spent"] >= 2e-6
    # the whole cluster's energy with PUE: what the meter read, times the study's PUE
    cluster_kwh = meta["cluster_energy"]["energy_j"] / 3.6e6 * meta["footprint"]["pue"]
    assert meta["budget"]["spent"] == pytest.approx(cluster_kwh, rel=0.05)
    assert len(reports) < 8 and "budget" in set(trials[schema.STOP_REASON])


UNAUTHENTICATED_CLIENT = r"""
import os, subprocess, sys
from study import run
args = run.build_parser().parse_args(["grid", "--storage", sys.argv[1], "--dry-run"])
plan = run.plan_study(args)
run.start_ray(plan)  # as a local study starts its Ray
import ray
address = ray.get_runtime_context().gcs_address
stranger = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}  # no token
join = f"import ray; ray.init(address={address!r}); print('IN')"
out = subprocess.run([sys.executable, "-c", join],
                     env=stranger, capture_output=True, text=True, timeout=180)
print("MODE", os.environ.get("RAY_AUTH_MODE"), "STRANGER_IN", "IN" in out.stdout.split(),
      "AUTH_ERROR", "uthentication" in out.stderr)
"""


def test_a_local_study_admits_only_holders_of_its_token(tmp_path):
    # Ray's local processes listen on every interface (FIELD_NOTES); what keeps a stranger on the
    # network out is token auth with the study's own token. A client without it is refused.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")},
        "PYTHONPATH": str(REPO),
    }
    proc = subprocess.run(
        [sys.executable, "-c", UNAUTHENTICATED_CLIENT, str(tmp_path)],
        cwd=tmp_path,
        env=env,
        text=True,
        capture_output=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "MODE token STRANGER_IN False AUTH_ERROR True" in proc.stdout, proc.stdout
