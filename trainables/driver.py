"""The Tune trial driver: one Ray Train `TorchTrainer` per trial segment, every report forwarded.

Why not `TuneReportCallback` (FIELD_NOTES): it forwards rank-0 metrics and no checkpoint, so PBT
never exploits. Here a Train callback in the controller puts every report (all workers' metrics and
the persisted Train checkpoint's path) on a queue; the driver sums the workers' figures, adds them
to the trial's running totals and calls `tune.report` with a small pointer checkpoint (a JSON file
naming the Train checkpoint). A PBT exploit restarts the driver with the donor's pointer: the new
segment's Train run (uniquely named, so V2 does not auto-restore the trial's own run) starts from
the donor's checkpoint and then applies this trial's own hyperparameters.

One worker group lives as long as a segment: a trial starts one at its start and one per PBT
exploit or restart, not one per report.
"""

from __future__ import annotations

import json
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from study import schema
from study.footprint import CarbonIntensity
from trainables.energy import ENERGY_PARTS, SOURCE_RANK
from trainables.train_loop import MAX_KEYS, SUMMED_KEYS

POINTER_FILE = "train_checkpoint.json"
TOTALS_FILE = "greentune_trial_totals.json"


@dataclass(frozen=True)
class StudyContext:
    """What every trial driver needs from the study; plain data, shipped once via with_parameters."""

    config: dict[str, Any]  # StudyConfig.to_dict()
    strategy: str
    study_name: str
    train_runs_path: str  # where Train run folders go (shared storage on a cluster)
    carbon: CarbonIntensity  # converts each report's energy at the intensity of its hour
    price_usd_per_device_hour: float | None  # None: not applicable (local machine)


@dataclass
class TrialTotals:
    """A trial's running totals over every segment it ran (its own work, not a donor's)."""

    segments: int = 0
    reports: int = 0
    train_s: float = 0.0
    eval_s: float = 0.0
    device_s: float = 0.0
    samples: int = 0
    tokens: int = 0
    flops: float = 0.0
    energy_j: dict[str, float | None] = field(default_factory=lambda: dict.fromkeys(ENERGY_PARTS))
    energy_source: dict[str, str | None] = field(default_factory=lambda: dict.fromkeys(ENERGY_PARTS))
    co2_kg: float | None = None  # each interval's energy at the intensity of its moment, summed

    def add(self, report: dict[str, Any], carbon: CarbonIntensity, now_s: float) -> None:
        self.reports += 1
        self.train_s += report["interval_train_s"]
        self.eval_s += report["interval_eval_s"]
        self.device_s += report["interval_device_s"]
        self.samples += report["interval_samples"]
        self.tokens += report["interval_tokens"]
        self.flops += report["interval_flops"]
        for part in ENERGY_PARTS:
            value = report.get(f"interval_energy_{part}_j")
            if value is not None:
                self.energy_j[part] = (self.energy_j[part] or 0.0) + value
                self.energy_source[part] = weakest(self.energy_source[part], report.get(f"energy_{part}_source"))
        energy_j = interval_energy_j(report)
        if energy_j is not None:
            self.co2_kg = (self.co2_kg or 0.0) + carbon.co2_kg(energy_j, now_s)

    @property
    def energy_total_j(self) -> float | None:
        parts = [v for v in self.energy_j.values() if v is not None]
        return sum(parts) if parts else None


def interval_energy_j(report: dict[str, Any]) -> float | None:
    """Energy of one report interval over the measured parts; None if no part was measured."""
    parts = [report[f"interval_energy_{p}_j"] for p in ENERGY_PARTS if report.get(f"interval_energy_{p}_j") is not None]
    return sum(parts) if parts else None


def weakest(a: str | None, b: str | None) -> str | None:
    """A sum is only as well measured as its weakest part."""
    if a is None or b is None:
        return a or b
    return max(a, b, key=lambda s: SOURCE_RANK.get(s, 99))


def combine_workers(per_worker: list[dict[str, Any]]) -> dict[str, Any]:
    """One report from every worker's: sums for shares of work, max for peaks, rank 0 for quality."""
    ranked = sorted(per_worker, key=lambda m: m.get("rank", 0))
    combined = dict(ranked[0])
    for key in SUMMED_KEYS:
        values = [m.get(key) for m in ranked if m.get(key) is not None]
        combined[key] = sum(values) if values else None
    for key in MAX_KEYS:
        values = [m[key] for m in ranked if m.get(key) is not None]
        if values:
            combined[key] = max(values)
    for part in ENERGY_PARTS:
        source = None
        for m in ranked:
            source = weakest(source, m.get(f"energy_{part}_source"))
        combined[f"energy_{part}_source"] = source
    combined["cpu_util_pct"] = sum(m.get("cpu_util_pct", 0.0) for m in ranked)
    combined["workers"] = len(ranked)
    return combined


def tune_metrics(report: dict[str, Any], totals: TrialTotals, ctx: StudyContext, segment: int,
                 restored_from: str | None, now_s: float) -> dict[str, Any]:
    """The row Tune records for one report: quality, throughput and the trial's running totals."""
    quality = {k: report[k] for k in (*schema.ROUGE_COLUMNS, "val_loss", "train_loss") if k in report}
    interval_s = report["interval_train_s"] or 1e-9
    energy = totals.energy_total_j
    metrics = {
        **quality,
        schema.STEP: report["step"],
        schema.EPOCH: report["epoch"],
        schema.TRIAL_EPOCHS: totals.samples / max(1, ctx.config["data"]["n_train"]),
        schema.SEGMENT: segment,
        schema.RESTORED_FROM: restored_from or "",
        schema.SAMPLES_PER_S: report["interval_samples"] / interval_s,
        schema.TOKENS_PER_S: report["interval_tokens"] / interval_s,
        schema.STEP_TIME_S: report["step_time_s"],
        schema.TRIAL_TRAIN_S: totals.train_s,
        schema.TRIAL_EVAL_S: totals.eval_s,
        schema.DEVICE_S: totals.device_s,
        schema.TRAIN_FLOPS: totals.flops,
        schema.TRAIN_FLOPS_SOURCE: "analytic_estimate",
        schema.TRAINABLE_PARAMS: report["trainable_params"],
        schema.PADDING_FRACTION: report["padding_fraction"],
        schema.CHECKPOINT_BYTES: report.get("checkpoint_bytes"),
        schema.CHECKPOINT_SAVE_S: report.get("checkpoint_save_s"),
        # from the last worker's report call to this driver: checkpoint upload, Train's poll, queue
        schema.REPORT_LATENCY_S: now_s - report["report_sent_s"] if report.get("report_sent_s") else None,
        schema.CPU_UTIL_PCT: report["cpu_util_pct"],
        schema.GPU_UTIL_PCT: report.get("gpu_util_pct"),
        schema.PEAK_RSS_BYTES: report.get("peak_rss_bytes"),
        schema.PEAK_CUDA_ALLOCATED_BYTES: report.get("peak_cuda_allocated_bytes"),
        schema.PEAK_CUDA_RESERVED_BYTES: report.get("peak_cuda_reserved_bytes"),
        "truncated_source_fraction": report["truncated_source_fraction"],
        "workers": report["workers"],
        "early_stopped": report["early_stopped"],
        schema.ENERGY_TOTAL_J: energy,
        schema.CO2_KG: totals.co2_kg,
        schema.INTENSITY_G_PER_KWH: ctx.carbon.at(now_s),
        schema.NODE_ID: report.get("node_id"),
        schema.COST_USD: (totals.device_s / 3600 * ctx.price_usd_per_device_hour
                          if ctx.price_usd_per_device_hour is not None else None),
    }
    for part in ENERGY_PARTS:
        metrics[f"energy_{part}_j"] = totals.energy_j[part]
        metrics[f"energy_{part}_source"] = totals.energy_source[part]
    return metrics


class _ForwardReports:
    """Train controller callback: every report's per-worker metrics and checkpoint path, queued."""

    def __init__(self, queue):
        self.queue = queue

    def after_report(self, run_context, metrics, checkpoint):
        self.queue.put((metrics, checkpoint.path if checkpoint else None))


def trial_driver(config: dict[str, Any], ctx: StudyContext) -> None:
    """Tune function trainable: run this trial's Train workers, forward each report to Tune."""
    import ray.train
    from ray import tune
    from ray.train.torch import TorchTrainer
    from ray.train.v2.api.callback import UserCallback
    from ray.util.queue import Empty, Queue

    from study.live_metrics import publish
    from trainables.train_loop import train_worker

    tune_ctx = tune.get_context()
    trial_id = tune_ctx.get_trial_id()
    totals_path = Path(tune_ctx.get_trial_dir()) / TOTALS_FILE
    totals = _load_totals(totals_path)
    totals.segments += 1

    resume_from, restored_from = None, None
    pointer = tune.get_checkpoint()
    if pointer:
        with pointer.as_directory() as directory:
            info = json.loads((Path(directory) / POINTER_FILE).read_text())
        resume_from = info["path"]
        restored_from = info["trial_id"]

    resources = ctx.config["resources"]
    queue = Queue(actor_options={"num_cpus": 0})
    callback = type("ForwardReports", (_ForwardReports, UserCallback), {})(queue)
    trainer = TorchTrainer(
        train_worker,
        # The segment's start: a donor's (PBT) or this trial's own checkpoint. Passed as a path,
        # since Train V2 dropped `resume_from_checkpoint`; a worker restarted within the segment
        # gets the run's own newest checkpoint from `ray.train.get_checkpoint()` instead.
        train_loop_config={"study": ctx.config, "params": config, "restore_from": resume_from},
        scaling_config=ray.train.ScalingConfig(
            num_workers=resources["workers_per_trial"],
            use_gpu=resources["gpus_per_worker"] > 0,
            resources_per_worker={"CPU": resources["cpus_per_worker"],
                                  **({"GPU": resources["gpus_per_worker"]}
                                     if resources["gpus_per_worker"] else {})}),
        run_config=ray.train.RunConfig(
            name=f"{trial_id}-s{totals.segments}-{uuid.uuid4().hex[:6]}",
            storage_path=ctx.train_runs_path,
            # Keep every checkpoint: the study's CheckpointJanitor deletes what no trial can use.
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=None),
            failure_config=ray.train.FailureConfig(max_failures=1),
            callbacks=[callback]),
    )

    outcome: dict[str, BaseException | None] = {"error": None}

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as e:  # re-raised in the driver thread below
            outcome["error"] = e

    launched = time.perf_counter()
    first_report = True
    thread = threading.Thread(target=fit, name="train-fit", daemon=True)
    thread.start()
    while True:
        try:
            per_worker, checkpoint_path = queue.get(timeout=0.5)
        except Empty:
            if not thread.is_alive() and queue.empty():
                break
            continue
        report = combine_workers(per_worker)
        now_s = time.time()
        totals.add(report, ctx.carbon, now_s)
        totals_path.write_text(json.dumps(asdict(totals)))
        metrics = tune_metrics(report, totals, ctx, totals.segments, restored_from, now_s)
        interval_j = interval_energy_j(report)
        publish(trial_id, ctx.strategy, energy_j=metrics[schema.ENERGY_TOTAL_J],
                power_w=interval_j / report["interval_device_s"] * report["workers"] if interval_j else None,
                co2_kg=metrics[schema.CO2_KG], cost_usd=metrics[schema.COST_USD])
        metrics["report_time_s"] = now_s
        # Start-up cost of this segment (0 after its first report): Train controller and worker
        # processes (launch) and the worker's data/model set-up and restore (setup).
        metrics["segment_setup_s"] = report.get("setup_s", 0.0)
        metrics["segment_launch_s"] = (time.perf_counter() - launched - report["setup_s"]
                                       - report["interval_device_s"] / report["workers"]) if first_report else 0.0
        first_report = False
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / POINTER_FILE).write_text(json.dumps({"path": checkpoint_path, "trial_id": trial_id}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(tmp))
    thread.join()
    if outcome["error"] is not None:
        raise outcome["error"]


def _load_totals(path: Path) -> TrialTotals:
    if not path.exists():
        return TrialTotals()
    data = json.loads(path.read_text())
    return TrialTotals(**data)
