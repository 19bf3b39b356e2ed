"""Scale: what greentune's own bookkeeping costs as a study grows.

    python benchmarks/scale.py bookkeeping [--trials 200]  # per-trial cost of our Tune callbacks
    python benchmarks/scale.py writer                      # parquet flush time vs rows on disk
    python benchmarks/scale.py pbt-disk                    # checkpoint disk, a long PBT study
    python benchmarks/scale.py report-cost                 # a report's cost, 1 and 2 workers

bookkeeping: runs the same Tune study of `--trials` very short trials twice on a local Ray, once
bare and once with the callbacks a greentune study adds in the study process (ResultsWriter,
CheckpointJanitor, BudgetStopper). Each trial reports `--reports` times; every report writes a
small Train-style checkpoint folder under `train_runs/` and a pointer to it, as the trial driver
does, so the janitor has real folders to scan and delete. Printed: wall time of each run and the
difference per trial and per report (measured; one run each, so the noise is a few seconds).

writer: times `ResultsWriter.flush()` (reports.parquet + trials.parquet, atomic rewrite) with
100 to 3200 rows of a real study's width, without Ray. A study flushes at most once a second.

pbt-disk: runs `python -m study.run pbt` (tiny-bart, built-in data, 6 epochs x 4 reports per
trial, population 4) in a scratch folder and samples the size of `train_runs/` every 2 s. The
janitor's bound is the population, not the number of reports: printed are the peak, the final
size, the number of reports and the checkpoint size, so the peak can be read in checkpoints.

report-cost: the same one-trial grid study (tiny-bart, 256 examples, 8 reports, one CPU per
worker) with 1 and then 2 Train workers (DDP). Per report, from the study's own columns: the
slowest worker's checkpoint write (`checkpoint_save_s`), the latency from the last worker's
report call to the Tune driver (`report_latency_s`: checkpoint upload, Train's poll of its
workers every 0.5 s, the queue to the driver).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import schema  # noqa: E402
from trainables.driver import Pointer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def short_trial(config, train_runs: str, reports: int) -> None:
    """A trial as Tune sees a greentune trial: reports with a pointer to a Train checkpoint."""
    import uuid

    from ray import tune

    trial_id = tune.get_context().get_trial_id()
    run = Path(train_runs) / f"{trial_id}-s1-{uuid.uuid4().hex[:6]}"
    for i in range(1, reports + 1):
        checkpoint = run / f"checkpoint_{i:06d}"
        checkpoint.mkdir(parents=True)
        (checkpoint / "model.pt").write_bytes(b"\0" * 4096)
        relative = f"{run.name}/{checkpoint.name}"
        with tempfile.TemporaryDirectory() as tmp:
            Pointer(relative, trial_id, config["x"] * i, i).write(Path(tmp))
            tune.report(
                {
                    schema.ROUGEL: config["x"] * i,
                    schema.VAL_LOSS: 1.0 / i,
                    schema.ENERGY_TOTAL_J: float(i),
                    schema.EPOCH: float(i),
                    schema.REPORT_TIME_S: time.time(),
                    schema.CHECKPOINT_PATH: relative,
                },
                checkpoint=tune.Checkpoint.from_directory(tmp),
            )


def bookkeeping_run(trials: int, reports: int, with_callbacks: bool, root: Path) -> float:
    import ray
    from ray import tune

    from study.budget import Budget, BudgetStopper
    from study.checkpoints import CheckpointJanitor
    from study.results import ResultsWriter

    name = "with" if with_callbacks else "bare"
    study_dir, train_runs = root / name, root / name / schema.TRAIN_RUNS_DIR
    train_runs.mkdir(parents=True)
    callbacks, stop = [], None
    if with_callbacks:
        writer = ResultsWriter(
            study_dir, name, "random", 0, time.time(), schema.ROUGEL, "max", reports
        )
        callbacks = [writer, CheckpointJanitor(train_runs, writer.selected)]
        stop = BudgetStopper(Budget("trial_epochs", 10.0**9, "cluster"), pue=1.0)
    trainable = tune.with_resources(
        tune.with_parameters(short_trial, train_runs=str(train_runs), reports=reports), {"CPU": 0.5}
    )
    tuner = tune.Tuner(
        trainable,
        param_space={"x": tune.uniform(0, 1)},
        tune_config=tune.TuneConfig(
            num_samples=trials, metric=schema.ROUGEL, mode="max", reuse_actors=False
        ),
        run_config=tune.RunConfig(
            name=name,
            storage_path=str(root),
            callbacks=callbacks,
            stop=stop,
            verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
        ),
    )
    start = time.perf_counter()
    results = tuner.fit()
    wall = time.perf_counter() - start
    assert results.num_errors == 0, results.errors
    left = sum(1 for _ in train_runs.glob("*/checkpoint_*"))
    print(
        f"  {name:>5}: {wall:7.1f} s for {trials} trials x {reports} reports; Train-style "
        f"checkpoints left: {left}"
    )
    ray.shutdown()
    return wall


def bookkeeping(args) -> None:
    import ray

    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    print(
        f"bookkeeping: {args.trials} trials x {args.reports} reports, local Ray, "
        f"{os.cpu_count()} CPUs, "
        "4 trials at once"
    )
    with tempfile.TemporaryDirectory() as tmp:
        walls = {}
        for with_callbacks in (False, True):
            ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR")
            walls[with_callbacks] = bookkeeping_run(
                args.trials, args.reports, with_callbacks, Path(tmp)
            )
    extra = walls[True] - walls[False]
    print(
        f"  greentune callbacks: {extra:+.1f} s in all, {extra / args.trials * 1000:+.0f} ms "
        "per trial, "
        f"{extra / (args.trials * args.reports) * 1000:+.0f} ms per report (measured, one run each)"
    )


def writer(args) -> None:
    from study.results import ResultsWriter

    print("ResultsWriter.flush(): reports.parquet + trials.parquet rewritten atomically")
    with tempfile.TemporaryDirectory() as tmp:
        for n in (100, 400, 800, 1600, 3200):
            w = ResultsWriter(Path(tmp), "s", "pbt", 0, 0.0, schema.ROUGEL, "max", 8)
            trials = max(1, n // 8)
            w.rows = [
                {
                    **_wide_row(),
                    schema.TRIAL_ID: f"t{i % trials:05d}",
                    schema.REPORT_ID: f"r{i}",
                    schema.TIMESTAMP_S: float(i),
                    schema.ROUGEL: (i % 97) / 97,
                }
                for i in range(n)
            ]
            times = []
            for _ in range(5):
                w._dirty = True
                start = time.perf_counter()
                w.flush()
                times.append(time.perf_counter() - start)
            size = (Path(tmp) / schema.REPORTS_FILE).stat().st_size
            print(
                f"  {n:5d} rows ({trials:4d} trials, {len(w.rows[0])} columns): flush "
                f"{sorted(times)[2] * 1000:6.1f} ms (median of 5), reports.parquet "
                f"{size / 1024:.0f} KiB"
            )


def _wide_row() -> dict:
    """A row as wide as a real study's (about 60 columns of numbers and a few strings)."""
    row = {f"metric_{i}": float(i) for i in range(50)}
    row.update(
        {
            schema.STUDY: "s",
            schema.STRATEGY: "pbt",
            schema.SEED: 0,
            schema.ITERATION: 1,
            schema.ENERGY_CPU_SOURCE: "estimated",
            "config/lr": 1e-3,
            "config/batch_size": 8,
        }
    )
    return row


def pbt_disk(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable,
            "-m",
            "study.run",
            "pbt",
            "--name",
            "disk",
            "--storage",
            tmp,
            "--set",
            "train.epochs=6",
            "--set",
            "train.evals_per_epoch=4",
            "--set",
            "budget.trial_epochs=24",
        ]
        print("pbt-disk:", " ".join(cmd[1:]))
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.Popen(
            cmd, cwd=tmp, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        runs = Path(tmp) / "disk" / schema.TRAIN_RUNS_DIR
        peak, peak_checkpoints, samples = 0, 0, 0
        while proc.poll() is None:
            size, checkpoints = _disk(runs)
            if size > peak:
                peak, peak_checkpoints = size, checkpoints
            samples += 1
            time.sleep(2)
        import pandas as pd

        reports = pd.read_parquet(Path(tmp) / "disk" / schema.REPORTS_FILE)
        meta = json.loads((Path(tmp) / "disk" / schema.METADATA_FILE).read_text())
        final, final_checkpoints = _disk(runs)
        each = reports[schema.CHECKPOINT_BYTES].median()
        print(
            f"  exit {proc.returncode}; population {meta['derived']['pbt_population']}, "
            f"{len(reports)} reports "
            f"({reports[schema.RESTORED_FROM].ne('').sum()} after an exploit), {samples} samples"
        )
        print(
            f"  one checkpoint: {each / 1e6:.2f} MB; without the janitor: {len(reports)} "
            "checkpoints = "
            f"{len(reports) * each / 1e6:.1f} MB"
        )
        print(
            f"  peak train_runs/: {peak / 1e6:.1f} MB ({peak_checkpoints} checkpoints); "
            f"final: {final / 1e6:.1f} MB ({final_checkpoints} checkpoint(s))"
        )


def report_cost(args) -> None:
    import pandas as pd

    space = (
        "parameters:\n  lr:\n    domain: {type: loguniform, low: 1.0e-4, high: 1.0e-2}\n    "
        "grid: [1.0e-3]\n"
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "space.yaml").write_text(space)
        for workers in (1, 2):
            name = f"w{workers}"
            cmd = [
                sys.executable,
                "-m",
                "study.run",
                "grid",
                "--name",
                name,
                "--storage",
                tmp,
                "--set",
                f"search.space={Path(tmp) / 'space.yaml'}",
                "--set",
                "data.n_train=256",
                "--set",
                "train.epochs=2",
                "--set",
                "train.evals_per_epoch=4",
                "--set",
                "budget.trial_epochs=2",
                "--set",
                "resources.cpus_per_worker=1",
                "--set",
                f"resources.workers_per_trial={workers}",
                "--set",
                "eval.max_new_tokens=16",
                "--set",
                "data.n_validation=8",
            ]
            env = {**os.environ, "PYTHONPATH": str(REPO)}
            proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr[-2000:])
                raise SystemExit(proc.returncode)
            r = pd.read_parquet(Path(tmp) / name / schema.REPORTS_FILE).sort_values(
                schema.TIMESTAMP_S
            )
            print(
                f"  {workers} worker(s), {len(r)} reports: checkpoint save "
                f"{r[schema.CHECKPOINT_SAVE_S].median() * 1000:.0f} ms, "
                f"report latency {r[schema.REPORT_LATENCY_S].median() * 1000:.0f} ms (median; max "
                f"{r[schema.REPORT_LATENCY_S].max() * 1000:.0f} ms)"
            )


def _disk(runs: Path) -> tuple[int, int]:
    if not runs.is_dir():
        return 0, 0
    size = 0
    for f in runs.rglob("*"):
        try:
            if f.is_file():
                size += f.stat().st_size
        except OSError:  # deleted while we walk
            pass
    return size, sum(1 for _ in runs.glob("*/checkpoint_*"))


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__,
    )
    p.add_argument("what", choices=("bookkeeping", "writer", "pbt-disk", "report-cost"))
    p.add_argument("--trials", type=int, default=200)
    p.add_argument("--reports", type=int, default=2)
    args = p.parse_args()
    {
        "bookkeeping": bookkeeping,
        "writer": writer,
        "pbt-disk": pbt_disk,
        "report-cost": report_cost,
    }[args.what](args)


if __name__ == "__main__":
    main()
