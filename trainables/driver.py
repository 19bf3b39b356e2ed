"""The Tune trial driver: runs a trial's segments and forwards every report to Tune.

A trial runs in segments: one at its start, one after each PBT exploit or restart. A segment
starts from a checkpoint (a PBT donor's, or the trial's own) or from scratch, and runs the worker
loop (`trainables.train_loop.run_worker`) on one of two paths:

- **local** (one worker, no ZeRO: the common case of one GPU per trial): the loop runs in this
  Tune trial's own process through Ray Train's local mode (`ScalingConfig(num_workers=0)`). No
  Train controller, worker actor or queue actor is started, and with `reuse_actors` the process,
  its imports and its prepared data serve the next trial too. Local mode neither persists
  checkpoints nor calls report callbacks: the loop hands each report to `Segment.forward` here,
  which uploads the checkpoint into the study's `train_runs/` exactly where Train would put it.
- **train_worker_group** (several workers: DDP, DeepSpeed ZeRO): a `TorchTrainer` per segment.
  `TuneReportCallback` would forward rank-0 metrics and no checkpoint, so PBT would never exploit
  (FIELD_NOTES); instead a Train callback puts every report (all workers' and the persisted
  checkpoint's path) on a queue that this driver drains.

Either way each report becomes one `tune.report` with a small pointer checkpoint (`Pointer`: the
Train checkpoint's place relative to `train_runs/`, whose it is and its score), so PBT clones,
the checkpoint janitor, `--resume`, the meters and every parquet column behave the same on both.
A PBT exploit restarts the driver with the donor's pointer; the segment loads the donor's model,
optimizer, scheduler, RNG and data position, then applies the trial's own hyperparameters.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import schema, storage
from core.config import StudyConfig, apply_settings
from core.footprint import CarbonIntensity
from core.measurement import ENERGY_PARTS, measured_sum, weakest_source
from trainables.live_metrics import LiveTags
from trainables.report import WorkerReport, combine_workers

if TYPE_CHECKING:
    import ray.train
    from ray.util.queue import Queue

POINTER_FILE = "train_checkpoint.json"
LOCAL_PATH, TRAIN_PATH = "local", "train_worker_group"


@dataclass(frozen=True)
class StudyContext:
    """What every trial driver needs from the study; shipped once via `tune.with_parameters`."""

    config: StudyConfig
    strategy: str
    study_name: str
    study_path: str  # the study's folder on its storage (a local path or a URI)
    carbon: CarbonIntensity  # converts each report's energy at the intensity of its hour
    price_usd_per_device_hour: float | None  # None: not applicable (local machine)
    # The experiments study: each variation's dotted settings (a trial is one variation)
    variations: dict[str, dict[str, Any]] | None = None

    @property
    def train_runs_path(self) -> str:
        return storage.join(self.study_path, schema.TRAIN_RUNS_DIR)

    def totals_location(self, trial_id: str) -> str:
        return storage.join(self.study_path, schema.TRIAL_TOTALS_DIR, f"{trial_id}.json")

    @property
    def execution_path(self) -> str:
        return execution_path(self.config)

    @property
    def live_tags(self) -> LiveTags:
        return LiveTags(self.study_name, self.config.seed, self.strategy)

    def trial_settings(
        self, trial_id: str, params: dict[str, Any]
    ) -> tuple[StudyConfig, dict[str, Any], int]:
        """What a trial trains with: its config, its hyperparameters and its seed. A tuning
        study's trials share the config and differ in hyperparameters; an experiments study's
        trial is variation v (the config with v's knob turned), repeat k, seeded by k alone so
        every variation's repeat k starts from the same seed (paired comparisons)."""
        if self.variations is None:
            return self.config, params, trial_seed(self.config.seed, trial_id)
        name = params[schema.VARIATION]
        cfg = apply_settings(self.config, self.variations[name], f"variation {name!r}")
        return cfg, {}, trial_seed(self.config.seed, f"repeat_{params[schema.REPEAT]}")


def execution_path(cfg: StudyConfig) -> str:
    """`local` for single-worker trials (DeepSpeed's too: one rank in a process group of its
    own, `trainables.train_loop.single_rank_group`), else `train_worker_group`."""
    return LOCAL_PATH if cfg.resources.workers_per_trial == 1 else TRAIN_PATH


def trial_seed(study_seed: int, trial_id: str) -> int:
    """The trial's own seed (model init, data order, dropout): distinct for every trial of a
    study, the same for the same study seed and trial. Tune numbers a study's trials
    `<prefix>_<index>` in the order its searcher made them, so trial k of a study with seed s
    gets the same seed in every strategy (paired seeds across strategies)."""
    index = trial_id.rsplit("_", 1)[-1]
    return random.Random(f"greentune-trial:{study_seed}:{index}").randrange(2**31)


@dataclass(frozen=True)
class Pointer:
    """What a Tune checkpoint holds: where the Train checkpoint lies, whose it is, how it scored."""

    checkpoint: str  # "<run folder>/<checkpoint folder>", relative to the study's train_runs/
    trial_id: str
    score: float | None  # the search metric at the report that saved it
    iteration: int  # that report's number in its trial
    totals: dict[str, Any] | None = None  # the trial's TrialTotals at that report

    def location(self, ctx: StudyContext) -> str:
        return storage.join(ctx.train_runs_path, self.checkpoint)

    @classmethod
    def read(cls, directory: Path) -> Pointer:
        return cls.from_json((directory / POINTER_FILE).read_text())

    @classmethod
    def from_json(cls, text: str) -> Pointer:
        return cls(**json.loads(text))

    def write(self, directory: Path) -> None:
        (directory / POINTER_FILE).write_text(json.dumps(asdict(self)))


def relative_checkpoint(path: str) -> str:
    """`<run>/<checkpoint>` of a Train checkpoint path (its last two parts)."""
    return "/".join(path.rstrip("/").split("/")[-2:])


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
    energy_source: dict[str, str | None] = field(
        default_factory=lambda: dict.fromkeys(ENERGY_PARTS)
    )
    # (measured, attempted) device-windows per part: how much of each figure was measured
    energy_coverage: dict[str, list[int]] = field(
        default_factory=lambda: {p: [0, 0] for p in ENERGY_PARTS}
    )
    co2_kg: float | None = None  # each interval's energy at the intensity of its moment, summed

    def add(self, report: WorkerReport, carbon: CarbonIntensity, now_s: float) -> None:
        self.reports += 1
        self.train_s += report.train_s
        self.eval_s += report.eval_s
        self.device_s += report.device_s
        self.samples += report.samples
        self.tokens += report.tokens
        self.flops += report.flops
        for part in ENERGY_PARTS:
            value = getattr(report.energy, f"{part}_j")
            measured, attempted = getattr(report.energy, f"{part}_coverage")
            covered = self.energy_coverage.setdefault(part, [0, 0])
            covered[0], covered[1] = covered[0] + measured, covered[1] + attempted
            if value is not None:
                self.energy_j[part] = (self.energy_j[part] or 0.0) + value
                self.energy_source[part] = weakest_source(
                    (self.energy_source[part], getattr(report.energy, f"{part}_source"))
                )
            if covered[0] < covered[1] and self.energy_source[part] is not None:
                self.energy_source[part] = "partial"  # some reads failed: a lower bound
        if report.energy.total_j is not None:
            self.co2_kg = (self.co2_kg or 0.0) + carbon.co2_kg(report.energy.total_j, now_s)

    @property
    def energy_total_j(self) -> float | None:
        return measured_sum(self.energy_j.values())

    @classmethod
    def load(cls, location: str) -> TrialTotals:
        text = storage.read_text(location)
        return cls(**json.loads(text)) if text else cls()

    def save(self, location: str) -> None:
        storage.write_text(location, json.dumps(asdict(self)))  # atomic: never a half-written file


def tune_metrics(
    report: WorkerReport,
    totals: TrialTotals,
    ctx: StudyContext,
    segment: int,
    restored: Pointer | None,
    now_s: float,
) -> dict[str, Any]:
    """The row Tune records for one report: quality, throughput and the trial's running totals."""
    zero = report.rank_zero
    assert zero is not None, "rank 0's report carries the quality figures"
    interval_s = report.train_s / report.workers or 1e-9  # wall seconds the workers trained
    energy = totals.energy_total_j
    price = ctx.price_usd_per_device_hour
    metrics = {
        **zero.quality,
        schema.STEP: zero.step,
        schema.EPOCH: zero.epoch,
        schema.TRIAL_EPOCHS: totals.samples / max(1, ctx.config.data.n_train),
        schema.SEGMENT: segment,
        schema.RESTORED_FROM: restored.trial_id if restored else "",
        schema.RESTORED_FROM_SCORE: restored.score if restored else None,
        schema.RESTORED_FROM_ITERATION: restored.iteration if restored else None,
        schema.SAMPLES_PER_S: report.samples / interval_s,  # the whole trial's, all workers
        schema.TOKENS_PER_S: report.tokens / interval_s,
        schema.STEP_TIME_S: zero.step_time_s,
        schema.TRIAL_TRAIN_S: totals.train_s,
        schema.TRIAL_EVAL_S: totals.eval_s,
        schema.DEVICE_S: totals.device_s,
        schema.TRAIN_FLOPS: totals.flops,
        schema.TRAIN_FLOPS_SOURCE: "analytic_estimate",
        schema.TRAINABLE_PARAMS: zero.trainable_params,
        schema.PADDING_FRACTION: zero.padding_fraction,
        schema.CHECKPOINT_BYTES: zero.checkpoint_bytes,
        schema.CHECKPOINT_SAVE_S: report.checkpoint_save_s,
        # from the last worker's report call to this driver: checkpoint upload, Train's poll, queue
        schema.REPORT_LATENCY_S: now_s - report.sent_s,
        schema.CPU_UTIL_PCT: report.cpu_util_pct,
        schema.GPU_UTIL_PCT: report.gpu_util_pct,
        schema.PEAK_RSS_BYTES: report.peak_rss_bytes,
        schema.PEAK_CUDA_ALLOCATED_BYTES: report.peak_cuda_allocated_bytes,
        schema.PEAK_CUDA_RESERVED_BYTES: report.peak_cuda_reserved_bytes,
        schema.TRUNCATED_SOURCE_FRACTION: zero.truncated_source_fraction,
        schema.WORKERS: report.workers,
        schema.EXECUTION_PATH: ctx.execution_path,
        schema.PROCESS_ID: os.getpid(),
        schema.EARLY_STOPPED: zero.early_stopped,
        schema.ENERGY_TOTAL_J: energy,
        schema.CO2_KG: totals.co2_kg,
        schema.INTENSITY_G_PER_KWH: ctx.carbon.at(now_s),
        schema.NODE_ID: zero.node_id,
        schema.COST_USD: totals.device_s / 3600 * price if price is not None else None,
    }
    for part in ENERGY_PARTS:
        metrics[f"energy_{part}_j"] = totals.energy_j[part]
        metrics[f"energy_{part}_source"] = totals.energy_source[part]
        measured, attempted = totals.energy_coverage.get(part, (0, 0))
        metrics[f"energy_{part}_coverage"] = measured / attempted if attempted else None
    return metrics


class Segment:
    """One segment of a trial: turns each combined report into a `tune.report` with a pointer."""

    def __init__(self, ctx: StudyContext, trial_id: str, restored: Pointer | None, seed: int):
        self.ctx, self.trial_id, self.restored, self.seed = ctx, trial_id, restored, seed
        self.totals_location = ctx.totals_location(trial_id)
        on_file = TrialTotals.load(self.totals_location)
        self.totals = on_file  # a PBT exploit: the trial's own accounting goes on
        if restored is None:
            # A fresh start, or a restart with no checkpoint yet: nothing of earlier attempts
            # survives in the model, so nothing of them is this trial's (their energy stays in
            # the whole-cluster figure; study.results drops their superseded reports).
            self.totals = TrialTotals(segments=on_file.segments)
        elif restored.trial_id == trial_id and restored.totals:
            # A restart from the trial's own checkpoint (a crash, --resume) continues the totals
            # saved with it: work done after that checkpoint was lost likewise.
            self.totals = TrialTotals(**{**restored.totals, "segments": on_file.segments})
        self.totals.segments += 1
        # a restart of this trial (not its first segment, not an exploit): from which report
        self.restart_from = (
            (0 if restored is None else restored.iteration)
            if (self.totals.segments > 1 and (restored is None or restored.trial_id == trial_id))
            else None
        )
        self.run_name = schema.run_name(trial_id, self.totals.segments, uuid.uuid4().hex[:6])
        self.launched = time.perf_counter()
        self.iteration = (
            restored.iteration if restored else 0
        )  # Tune continues a checkpoint's count
        self._first_report = True

    def forward(self, per_worker: list[WorkerReport], checkpoint: str | None) -> None:
        """Add the workers' interval to the trial's totals and report it to Tune.

        `checkpoint`: the Train checkpoint of this report, relative to `train_runs/`.
        """
        from ray import tune

        from trainables.live_metrics import publish

        report = combine_workers(per_worker)
        zero = report.rank_zero
        now_s = time.time()
        self.totals.add(report, self.ctx.carbon, now_s)
        self.totals.save(self.totals_location)
        metrics = tune_metrics(
            report, self.totals, self.ctx, self.totals.segments, self.restored, now_s
        )
        if self.restart_from is not None:  # the reports this restart supersedes (study.results)
            metrics[schema.RESTORED_FROM] = self.trial_id
            metrics[schema.RESTORED_FROM_ITERATION] = self.restart_from
        interval_j = report.energy.total_j
        publish(
            self.ctx.live_tags,
            self.trial_id,
            energy_j=metrics[schema.ENERGY_TOTAL_J],
            power_w=interval_j / (report.device_s / report.workers) if interval_j else None,
            co2_kg=metrics[schema.CO2_KG],
            cost_usd=metrics[schema.COST_USD],
        )
        metrics[schema.REPORT_TIME_S] = now_s
        metrics[schema.CHECKPOINT_PATH] = checkpoint
        metrics[schema.TRIAL_SEED] = self.seed
        # Start-up cost of this segment (0 after its first report): process and actor starts
        # (launch) and the worker's data/model set-up and restore (setup).
        metrics[schema.SEGMENT_SETUP_S] = zero.setup_s
        metrics[schema.SEGMENT_LAUNCH_S] = (
            time.perf_counter() - self.launched - zero.setup_s - report.device_s / report.workers
            if self._first_report
            else 0.0
        )
        self._first_report = False
        self.iteration += 1
        score = metrics.get(self.ctx.config.search.metric)
        with tempfile.TemporaryDirectory() as tmp:
            if checkpoint is not None:
                Pointer(
                    checkpoint, self.trial_id, score, self.iteration, asdict(self.totals)
                ).write(Path(tmp))
            tune.report(
                metrics, checkpoint=tune.Checkpoint.from_directory(tmp) if checkpoint else None
            )


def trial_driver(config: dict[str, Any], ctx: StudyContext) -> None:
    """Tune function trainable: run this trial's next segment, forward each report to Tune."""
    from ray import tune

    from trainables.session import quiet_worker_logs

    quiet_worker_logs()
    trial_id = tune.get_context().get_trial_id()
    restored = None
    pointer = tune.get_checkpoint()
    if pointer:
        with pointer.as_directory() as directory:
            restored = Pointer.read(Path(directory))
    cfg, params, seed = ctx.trial_settings(trial_id, config)
    segment = Segment(ctx, trial_id, restored, seed)
    restore_from = restored.location(ctx) if restored else None
    if ctx.execution_path == LOCAL_PATH:
        _run_local(ctx, cfg, segment, params, restore_from)
    else:
        _run_train_group(ctx, cfg, segment, params, restore_from)


def checkpoint_folder_name() -> str:
    """The folder name Ray Train gives a checkpoint (`checkpoint_<date>_<time>.<microseconds>`)."""
    return f"checkpoint_{datetime.now():%Y-%m-%d_%H-%M-%S.%f}"


def _run_local(
    ctx: StudyContext,
    cfg: StudyConfig,
    segment: Segment,
    params: dict[str, Any],
    restore_from: str | None,
) -> None:
    """The worker loop in this process, through Train's local mode."""
    import ray.train
    from ray.train.torch import TorchTrainer

    from trainables.session import LocalSession
    from trainables.train_loop import run_worker

    run_location = storage.join(ctx.train_runs_path, segment.run_name)

    def report(worker_report: WorkerReport, checkpoint_dir: Path | None) -> None:
        relative = None
        if checkpoint_dir is not None:  # what Train would have persisted, in Train's layout
            name = checkpoint_folder_name()
            storage.upload_dir(checkpoint_dir, storage.join(run_location, name))
            relative = f"{segment.run_name}/{name}"
        segment.forward([worker_report], relative)

    def loop() -> None:
        run_worker(cfg, params, segment.seed, LocalSession(restore_from, report))

    TorchTrainer(
        loop,
        scaling_config=ray.train.ScalingConfig(num_workers=0),
        run_config=ray.train.RunConfig(name=segment.run_name),
    ).fit()


class _ForwardReports:
    """Train controller callback: every report's per-worker figures and checkpoint path, queued."""

    def __init__(self, queue: Queue):
        self.queue = queue

    def after_report(
        self,
        run_context: Any,
        metrics: list[dict[str, Any]],
        checkpoint: ray.train.Checkpoint | None,
    ) -> None:
        from trainables.session import REPORT_KEY

        self.queue.put(([m[REPORT_KEY] for m in metrics], checkpoint.path if checkpoint else None))


def _run_train_group(
    ctx: StudyContext,
    cfg: StudyConfig,
    segment: Segment,
    params: dict[str, Any],
    restore_from: str | None,
) -> None:
    """A Ray Train worker group for this segment; its reports drained from a queue actor."""
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.train.v2.api.callback import UserCallback
    from ray.util.queue import Empty, Queue

    from trainables.train_loop import train_worker

    resources = cfg.resources
    queue = Queue(actor_options={"num_cpus": 0})
    callback = type("ForwardReports", (_ForwardReports, UserCallback), {})(queue)
    trainer = TorchTrainer(
        train_worker,
        # The segment's start: a donor's (PBT) or this trial's own checkpoint. Passed as a path,
        # since Train V2 dropped `resume_from_checkpoint`; a worker restarted within the segment
        # gets the run's own newest checkpoint from `ray.train.get_checkpoint()` instead.
        train_loop_config={
            "study": cfg,
            "params": params,
            "trial_seed": segment.seed,
            "restore_from": restore_from,
        },
        scaling_config=ray.train.ScalingConfig(
            num_workers=resources.workers_per_trial,
            use_gpu=resources.gpus_per_worker > 0,
            resources_per_worker={
                "CPU": resources.cpus_per_worker,
                **({"GPU": resources.gpus_per_worker} if resources.gpus_per_worker else {}),
            },
        ),
        run_config=ray.train.RunConfig(
            name=segment.run_name,
            storage_path=ctx.train_runs_path,
            # Keep every checkpoint: the study's CheckpointJanitor deletes what no trial can use.
            checkpoint_config=ray.train.CheckpointConfig(num_to_keep=None),
            failure_config=ray.train.FailureConfig(max_failures=1),
            callbacks=[callback],
        ),
    )

    outcome: dict[str, BaseException | None] = {"error": None}

    def fit() -> None:
        try:
            trainer.fit()
        except BaseException as e:  # re-raised in the driver thread below
            outcome["error"] = e

    thread = threading.Thread(target=fit, name="train-fit", daemon=True)
    thread.start()
    while True:
        try:  # blocks until a report arrives; the timeout only notices the end of the run
            per_worker, checkpoint_path = queue.get(timeout=0.5)
        except Empty:
            if not thread.is_alive() and queue.empty():
                break
            continue
        segment.forward(
            [WorkerReport.from_dict(r) for r in per_worker],
            relative_checkpoint(checkpoint_path) if checkpoint_path else None,
        )
    thread.join()
    if outcome["error"] is not None:
        raise outcome["error"]
