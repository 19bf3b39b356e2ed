"""Study-folder fixtures with known numbers (no Ray): `write_study` and `write_realistic_studies`.

A plain module (not conftest.py) so its name cannot clash with other test folders' conftest."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from core.metadata import StudyMetadata, write_metadata
from core.schema import (
    CO2_KG,
    CONFIG_PREFIX,
    COST_USD,
    DEVICE_S,
    EARLY_STOPPED,
    ENERGY_CPU_J,
    ENERGY_CPU_SOURCE,
    ENERGY_GPU_J,
    ENERGY_GPU_SOURCE,
    ENERGY_RAM_J,
    ENERGY_RAM_SOURCE,
    ENERGY_TOTAL_J,
    EPOCH,
    ITERATION,
    REPORT_TIME_S,
    REPORTS_FILE,
    RESTORED_FROM,
    ROUGE1,
    ROUGE2,
    ROUGEL,
    ROUGELSUM,
    SEGMENT,
    STOP_BUDGET,
    STOP_COMPLETED,
    STOP_EARLY,
    STOP_ERROR,
    STOP_REASON,
    STUDY_ELAPSED_S,
    TIMESTAMP_S,
    TRIAL_EPOCHS,
    TRIAL_EVAL_S,
    TRIAL_ID,
    TRIAL_TRAIN_S,
    TRIALS_FILE,
)
from study.cluster_meter import cluster_total
from study.results import ResultsWriter

STARTED_AT = 1_700_000_000
GPU_W = 100.0  # device_s = gpu_j / GPU_W in the simple fixture
G_PER_KWH = 400.0  # co2_kg = total_j / 3.6e6 * 0.4
USD_PER_H = 3.0  # cost_usd = device_s / 3600 * 3


def report_row(
    trial: str,
    elapsed_s: float,
    rouge_l: float,
    gpu_j: float,
    cpu_j: float,
    ram_j: float,
    *,
    iteration: int,
    segment: int = 1,
    restored_from: str | None = None,
    config: dict[str, Any] | None = None,
    cost: bool = True,
    device_s: float | None = None,
    busy_s: float | None = None,
    sources: tuple[str, str, str] = ("counter", "estimated", "estimated"),
    startup: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """One report; energy, device time, CO2 and cost are this trial's cumulative totals.

    startup: (segment_launch_s, segment_setup_s), non-zero in a segment's first report only."""
    total_j = gpu_j + cpu_j + ram_j
    dev = gpu_j / GPU_W if device_s is None else device_s
    row = {
        TRIAL_ID: trial,
        ITERATION: iteration,
        SEGMENT: segment,
        RESTORED_FROM: restored_from,
        TIMESTAMP_S: STARTED_AT + elapsed_s,
        STUDY_ELAPSED_S: float(elapsed_s),
        TRIAL_EPOCHS: float(iteration),
        EPOCH: float(iteration),
        ROUGE1: rouge_l + 0.05,
        ROUGE2: rouge_l - 0.1,
        ROUGEL: rouge_l,
        ROUGELSUM: rouge_l + 0.01,
        ENERGY_GPU_J: gpu_j,
        ENERGY_CPU_J: cpu_j,
        ENERGY_RAM_J: ram_j,
        ENERGY_TOTAL_J: total_j,
        ENERGY_GPU_SOURCE: sources[0],
        ENERGY_CPU_SOURCE: sources[1],
        ENERGY_RAM_SOURCE: sources[2],
        DEVICE_S: dev,
        CO2_KG: total_j / 3.6e6 * G_PER_KWH / 1000.0,
        COST_USD: dev / 3600.0 * USD_PER_H if cost else np.nan,
    }
    if startup is not None:
        row["segment_launch_s"], row["segment_setup_s"] = startup
    if busy_s is not None:  # cumulative seconds the workers were busy: 90 % training, 10 % eval
        row[TRIAL_TRAIN_S] = 0.9 * busy_s
        row[TRIAL_EVAL_S] = 0.1 * busy_s
    for key, value in (config or {}).items():
        row[CONFIG_PREFIX + key] = value
    return row


def write_tables(
    folder: Path,
    name: str,
    strategy: str,
    seed: int,
    metric: str,
    reports: list[dict[str, Any]],
    stop_reasons: dict[str, str],
) -> None:
    """reports.parquet and trials.parquet written by the study's own writer
    (`study.results.ResultsWriter`), fed through Tune's callback hooks as Tune would feed it.

    stop_reasons: trial -> completed (the default) | scheduler_stopped | early_stopping | budget |
    error | running (no end yet)."""
    writer = ResultsWriter(
        folder, name, strategy, seed, STARTED_AT, metric, "max", max_reports=0,
        flush_interval_s=math.inf,
    )  # fmt: skip
    trials: dict[str, SimpleNamespace] = {}
    for row in reports:
        config = {k[len(CONFIG_PREFIX) :]: v for k, v in row.items() if k.startswith(CONFIG_PREFIX)}
        result = {k: v for k, v in row.items() if k not in _NOT_IN_A_TUNE_RESULT}
        result.update(
            training_iteration=row[ITERATION],
            config=config,
            **{REPORT_TIME_S: STARTED_AT + row[STUDY_ELAPSED_S]},
        )
        trial = trials.setdefault(row[TRIAL_ID], SimpleNamespace(trial_id=row[TRIAL_ID]))
        trial.config, trial.last_result, trial.status = config, result, "RUNNING"
        writer.on_trial_result(0, list(trials.values()), trial, result)
    for trial_id, trial in trials.items():
        reason = stop_reasons.get(trial_id, STOP_COMPLETED)
        if reason == "running":
            continue
        if reason == STOP_ERROR:
            trial.status = "ERROR"
            writer.on_trial_error(0, list(trials.values()), trial)
            continue
        trial.status = "TERMINATED"
        # how the writer tells the reasons apart: the trial's own flag, its report count against
        # the trials' full length, whether the study budget had stopped it
        trial.last_result = {**trial.last_result, EARLY_STOPPED: reason == STOP_EARLY}
        done = trial.last_result["training_iteration"]
        writer.max_reports = done if reason == STOP_COMPLETED else done + 1
        writer.budget_stopper = SimpleNamespace(reason="budget" if reason == STOP_BUDGET else None)
        writer.on_trial_complete(0, list(trials.values()), trial)
    writer.flush()
    written = pd.read_parquet(folder / TRIALS_FILE).set_index(TRIAL_ID)[STOP_REASON]
    for trial_id in trials:  # the writer named every stop as the test asked
        asked = stop_reasons.get(trial_id, STOP_COMPLETED)
        assert written[trial_id] == ("" if asked == "running" else asked), (trial_id, asked)
    assert len(pd.read_parquet(folder / REPORTS_FILE)) == len(reports)


# Columns the writer derives itself from a Tune result (identity, time, the config)
_NOT_IN_A_TUNE_RESULT = {TRIAL_ID, ITERATION, TIMESTAMP_S, STUDY_ELAPSED_S}


def write_study(
    root: Path,
    strategy: str,
    seed: int,
    reports: list[dict[str, Any]],
    stop_reasons: dict[str, str] | None = None,
    *,
    running: bool = False,
    dataset: str = "builtin",
    metric: str = "rougeL",
    model: str = "tiny-bart",
    wall_s: float | None = None,
    footprint: dict[str, Any] | None = None,
    write_trials: bool = True,
    metadata: dict[str, Any] | None = None,
) -> Path:
    """Write a study folder from report rows (see `report_row`); returns the folder.

    metadata: extra metadata.json keys (e.g. `cluster_energy`, `baseline`)."""
    name = f"{strategy}-{model}-{dataset}-seed{seed}"
    folder = root / name
    folder.mkdir(parents=True)
    write_tables(folder, name, strategy, seed, metric, reports, stop_reasons or {})
    if not write_trials:
        (folder / TRIALS_FILE).unlink()
    elapsed = max(r[STUDY_ELAPSED_S] for r in reports) if wall_s is None else wall_s
    metadata = {
        "study": name,
        "strategy": strategy,
        "seed": seed,
        "config": {
            "name": name,
            "seed": seed,
            "model": {"name": model},
            "data": {"dataset": dataset},
            "search": {"metric": metric, "mode": "max"},
        },
        "derived": {},
        "footprint": footprint
        if footprint is not None
        else {"region": "eastus", "intensity_g_per_kwh": G_PER_KWH, "pue": 1.0},
        "started_at": STARTED_AT,
        "finished_at": None if running else STARTED_AT + elapsed,
        "stopped_on_budget": False,
        **(metadata or {}),
    }
    write_metadata(folder, StudyMetadata.from_dict(metadata))  # the study's own writer
    return folder


def cluster_energy(nodes: list[dict[str, Any]], trials_j: float | None) -> dict[str, Any]:
    """metadata.json `cluster_energy` as `study.cluster_meter.read_cluster_meter` writes it, from
    per-node joules: [{"gpu_j": 5000 or None, "cpu_j": 1500, "ram_j": 700}, ...]."""
    readings = []
    for i, n in enumerate(nodes):
        gpu_j = n.get("gpu_j")
        readings.append(
            {
                "node": f"node-{i}",
                "duration_s": 400.0,
                "gpus": 0 if gpu_j is None else 1,
                "gpu_j": gpu_j,
                "gpu_source": None if gpu_j is None else "counter",
                "cpu_j": n["cpu_j"],
                "cpu_source": "estimated",
                "cpu_model": "tdp",
                "ram_j": n["ram_j"],
                "ram_source": "estimated",
            }
        )
    total = cluster_total(readings)
    return {
        "nodes": readings,
        **total,
        "trials_energy_j": trials_j,
        "overhead_energy_j": (total["energy_j"] - trials_j) if trials_j is not None else None,
        "note": "nodes that joined after the study started are not metered",
    }


def held_out(rouge_l: float, low: float, high: float, n: int = 500) -> dict[str, Any]:
    """metadata.json `test` as study.run writes it: the selected model on the held-out split."""
    return {
        "evaluated": True,
        "split": "test",
        "n": n,
        "rouge1": rouge_l + 0.05,
        "rouge2": rouge_l - 0.1,
        "rougeL": rouge_l,
        "rougeLsum": rouge_l + 0.01,
        "rougeL_ci95": [low, high],
    }


# lead-3 baseline on the validation set (metadata.json `baseline`)
BASELINE = {"lead_k": 3, "rouge1": 0.25, "rouge2": 0.08, "rougeL": 0.2, "rougeLsum": 0.23}


# --------------------------------------------------------------------------------------------
# Known numbers: grid x 2 seeds, asha x 1 seed (test_summary, test_report)

# grid seed s: trials a and b, energies x (1 + 2 s)
#   a: t=100 rougeL .20 (gpu 1000, cpu 200, ram 50 J), t=200 .30 (2000, 400, 100)
#   b: t=150 .25 (500, 100, 25),                       t=300 .35 (1500, 300, 75)
# -> per seed: GPU 3500 J, CPU 700, RAM 175, total 4375 J; 4 trial-epochs; device 35 s
GRID_TOTAL_J = 4375.0
# Whole cluster, study start to end (GPU counter; CPU and RAM estimated):
#   grid seed 0, one node: GPU 5000, CPU 1500, RAM 700 = 7200 J; overhead 7200 - 4375 = 2825 J
#   grid seed 1, two nodes: GPU 9000 + 6000, CPU 3000 + 1500, RAM 1000 + 500 = 21000 J;
#     overhead 21000 - 3 x 4375 = 7875 J (share 0.375)
GRID_CLUSTER = {
    0: cluster_energy([{"gpu_j": 5000, "cpu_j": 1500, "ram_j": 700}], GRID_TOTAL_J),
    1: cluster_energy(
        [
            {"gpu_j": 9000, "cpu_j": 3000, "ram_j": 1000},
            {"gpu_j": 6000, "cpu_j": 1500, "ram_j": 500},
        ],
        3 * GRID_TOTAL_J,
    ),
}
# asha seed 0: c stopped after one report, d completed
#   c: t=50 .22 (400, 100, 0); d: t=120 .33 (800, 200, 0), t=220 .345 (1600, 400, 0)
ASHA_TOTAL_J = 2500.0


def grid_rows(f: float) -> list[dict]:
    cfg_a, cfg_b = {"lr": 1e-3, "batch_size": 16}, {"lr": 3e-4, "batch_size": 8}
    return [
        report_row("a", 100, 0.20, 1000 * f, 200 * f, 50 * f, iteration=1, config=cfg_a),
        report_row("b", 150, 0.25, 500 * f, 100 * f, 25 * f, iteration=1, config=cfg_b),
        report_row("a", 200, 0.30, 2000 * f, 400 * f, 100 * f, iteration=2, config=cfg_a),
        report_row("b", 300, 0.35, 1500 * f, 300 * f, 75 * f, iteration=2, config=cfg_b),
    ]


def asha_rows() -> list[dict]:
    cfg_c, cfg_d = {"lr": 1e-4, "batch_size": 32}, {"lr": 5e-4, "batch_size": 16}
    return [
        report_row("c", 50, 0.22, 400, 100, 0, iteration=1, config=cfg_c),
        report_row("d", 120, 0.33, 800, 200, 0, iteration=1, config=cfg_d),
        report_row("d", 220, 0.345, 1600, 400, 0, iteration=2, config=cfg_d),
    ]


# --------------------------------------------------------------------------------------------
# A realistic set: grid, random, asha, pbt x 3 seeds on 4 slots (one pbt seed still running)

_LRS = (1e-4, 3e-4, 1e-3)
_BATCHES = (8, 16, 32)


def _peak(lr: float, batch: int) -> float:
    return 0.30 + 0.05 * (1 - abs(np.log10(lr) + 3.5)) - 0.004 * abs(batch - 16) / 8


def _simulate(
    strategy: str, seed: int, configs: list[tuple[float, int]], epochs: list[int], slots: int = 4
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rng = np.random.default_rng(100 * seed + len(strategy))
    free = [0.0] * slots
    rows, reasons = [], {}
    for k, ((lr, batch), n_epochs) in enumerate(zip(configs, epochs, strict=True)):
        trial = f"{strategy}_{seed}_{k:05d}"
        slot = int(np.argmin(free))
        t = free[slot] + 20.0
        gpu = cpu = ram = busy = 0.0
        peak = _peak(lr, batch) + rng.normal(0, 0.006)
        for e in range(1, n_epochs + 1):
            dur = 280.0 * (32 / batch) ** 0.3 * rng.uniform(0.92, 1.08)
            t += dur
            busy += dur
            gpu += dur * rng.uniform(230, 270)
            cpu += dur * 45.0
            ram += dur * 9.0
            rouge = peak * (1 - np.exp(-e / 1.3)) + rng.normal(0, 0.002)
            rows.append(
                report_row(
                    trial,
                    round(t, 1),
                    rouge,
                    gpu,
                    cpu,
                    ram,
                    iteration=e,
                    device_s=gpu / 250.0,
                    busy_s=busy,
                    config={"lr": lr, "batch_size": batch},
                )
            )
        free[slot] = t
        reasons[trial] = "completed" if n_epochs == max(epochs) else "scheduler_stopped"
    return rows, reasons


def _pbt(
    seed: int, epochs: int = 6, population: int = 4
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    rng = np.random.default_rng(7 + seed)
    trials = [f"pbt_{seed}_{k:05d}" for k in range(population)]
    cfg = {t: (float(rng.choice(_LRS)), int(rng.choice(_BATCHES))) for t in trials}
    score = {t: 0.0 for t in trials}
    seg = {t: 1 for t in trials}
    state = {
        t: {"t": 20.0, "gpu": 0.0, "cpu": 0.0, "ram": 0.0, "busy": 0.0, "restored": None}
        for t in trials
    }
    rows = []
    for e in range(1, epochs + 1):
        for t in trials:
            s = state[t]
            dur = 300.0 * rng.uniform(0.93, 1.07)
            s["t"] += dur
            s["busy"] += dur
            s["gpu"] += dur * rng.uniform(230, 270)
            s["cpu"] += dur * 45.0
            s["ram"] += dur * 9.0
            lr, batch = cfg[t]
            gain = (_peak(lr, batch) + 0.012 - score[t]) * 0.55
            score[t] += gain + rng.normal(0, 0.002)
            rows.append(
                report_row(
                    t,
                    round(s["t"], 1),
                    score[t],
                    s["gpu"],
                    s["cpu"],
                    s["ram"],
                    iteration=e,
                    segment=seg[t],
                    restored_from=s["restored"],
                    device_s=s["gpu"] / 250.0,
                    busy_s=s["busy"],
                    config={"lr": lr, "batch_size": batch},
                )
            )
        if e >= 2 and e < epochs:  # exploit: the worst clones the best, perturbs lr
            ranked = sorted(trials, key=lambda t: score[t])
            worst, best = ranked[0], ranked[-1]
            score[worst] = score[best]
            cfg[worst] = (cfg[best][0] * float(rng.choice((0.8, 1.2))), cfg[best][1])
            seg[worst] += 1
            state[worst]["restored"] = best
    return rows, {t: "completed" for t in trials}


def _realistic_metadata(rows: list[dict[str, Any]], *, cluster: bool) -> dict[str, Any]:
    """The lead-3 baseline, and (where `cluster`) a one-node whole-cluster reading: the trials'
    own meters plus 20 % idle / start-up on the GPU, CPU and RAM estimated."""
    meta: dict[str, Any] = {"baseline": BASELINE, "concurrent_trials": 4, "ray_init_s": 4.2}
    if cluster:
        last = pd.DataFrame(rows).groupby(TRIAL_ID).last()
        gpu, cpu, ram = (float(last[c].sum()) for c in (ENERGY_GPU_J, ENERGY_CPU_J, ENERGY_RAM_J))
        node = {"gpu_j": gpu * 1.2, "cpu_j": cpu * 1.3, "ram_j": ram * 1.25}
        meta["cluster_energy"] = cluster_energy([node], gpu + cpu + ram)
    return meta


def write_realistic_studies(root: Path) -> list[Path]:
    """12 studies: grid/random/asha/pbt x seeds 0-2, with the pbt seed 2 still running (no
    whole-cluster reading yet) and random from before the cluster meter (none either); every
    study holds the lead-3 baseline."""
    paths = []
    grid = [(lr, b) for lr in _LRS for b in _BATCHES]

    def write(strategy, seed, rows, reasons, running=False, cluster=True):
        meta = _realistic_metadata(rows, cluster=cluster and not running)
        return write_study(
            root,
            strategy,
            seed,
            rows,
            reasons,
            running=running,
            footprint=_FOOTPRINT,
            metadata=meta,
        )

    for seed in range(3):
        rows, reasons = _simulate("grid", seed, grid, [3] * len(grid))
        paths.append(write("grid", seed, rows, reasons))
        rng = np.random.default_rng(seed)
        sampled = [(float(10 ** rng.uniform(-4, -3)), int(rng.choice(_BATCHES))) for _ in range(9)]
        rows, reasons = _simulate("random", seed, sampled, [3] * 9)
        paths.append(write("random", seed, rows, reasons, cluster=False))
        asha_cfg = [
            (float(10 ** rng.uniform(-4, -3)), int(rng.choice(_BATCHES))) for _ in range(12)
        ]
        ranks = np.argsort(np.argsort([-_peak(*c) for c in asha_cfg]))
        asha_epochs = [3 if r < 2 else (2 if r < 5 else 1) for r in ranks]
        rows, reasons = _simulate("asha", seed, asha_cfg, asha_epochs)
        paths.append(write("asha", seed, rows, reasons))
        rows, reasons = _pbt(seed)
        running = seed == 2
        if running:
            rows = rows[: len(rows) * 2 // 3]
            reasons = {t: "running" for t in reasons}
        paths.append(write("pbt", seed, rows, reasons, running=running))
    return paths


_FOOTPRINT = {
    "region": "eastus",
    "intensity_g_per_kwh": G_PER_KWH,
    "pue": 1.0,
    "vm_size": "NC24ads_A100_v4",
}
