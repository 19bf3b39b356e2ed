"""The worker loop: fine-tune a seq2seq summarizer, evaluate, checkpoint, report.

Reads top to bottom: set up data, model and engine; restore if a checkpoint was given (the
trial's own, or a PBT donor's); apply this trial's hyperparameters; then train, evaluate and
report until the trial's epoch budget is spent or early stopping ends it.

The same loop runs on a Ray Train worker group (`train_worker`, several workers) and in a Tune
trial's own process (one worker, `trainables.driver`); a `WorkerSession` says which
(`trainables.session`). Every worker reports its own figures as a `WorkerReport`; the trial
driver combines them (`trainables.report.combine_workers`).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from core import schema
from core.config import ConfigError, DataConfig, ModelConfig, StudyConfig, trial_train_config
from trainables import batching
from trainables.flops import stream_flops
from trainables.models import (
    attention_fallback,
    build_model,
    enable_gradient_checkpointing,
    load_tokenizer,
    model_inputs,
    source_prefix,
)
from trainables.report import RankZero, WorkerReport
from trainables.session import WorkerSession

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from trainables.engine import Engine

STATE_FILE = "trial_state.json"
RNG_FILE = "rng_state.pt"


@dataclasses.dataclass
class Progress:
    """Where training stands; saved in every checkpoint so a restore continues exactly."""

    step: int = 0  # optimizer steps
    epoch: int = 0  # current epoch index
    samples_in_epoch: int = 0  # samples of this rank already consumed in `epoch`
    samples: int = 0  # samples of this rank consumed in all (the LR schedule's clock)
    reports: int = 0
    best_metric: float | None = None
    reports_since_best: int = 0
    # Seed of the data order: the lineage's, so a PBT clone finishes its donor's epoch in the
    # donor's order (no example seen twice or skipped within an epoch).
    data_seed: int = 0


def apply_freeze(model: torch.nn.Module, freeze: str) -> int:
    """Freeze part of the model; returns the number of trainable parameters left."""
    if freeze == "embeddings":
        for module in (
            model.get_input_embeddings(),
            getattr(model.get_encoder(), "embed_positions", None),
        ):
            if module is not None:
                module.requires_grad_(False)
    elif freeze == "encoder":
        model.get_encoder().requires_grad_(False)
    elif freeze.startswith("layers:"):
        n = int(freeze.split(":")[1])
        layers = getattr(model.get_encoder(), "layers", None) or getattr(
            model.get_encoder(), "block", None
        )
        if layers is None or n > len(layers):
            raise ConfigError(
                f"train.freeze={freeze!r}: the encoder has {len(layers or [])} layers"
            )
        model.get_input_embeddings().requires_grad_(False)
        for layer in layers[:n]:
            layer.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_worker(loop_config: dict[str, Any]) -> None:
    """Ray Train's `train_loop_per_worker`: the worker loop on a Train worker group."""
    from trainables.session import quiet_worker_logs

    quiet_worker_logs()
    from trainables.session import TrainSession

    run_worker(
        loop_config["study"],
        loop_config["params"],
        loop_config["trial_seed"],
        TrainSession(restore_from=loop_config.get("restore_from")),
    )


@functools.lru_cache(maxsize=4)
def prepared_data(model_cfg: ModelConfig, data_cfg: DataConfig) -> PreparedData:
    """Tokenizer and encoded train/validation splits, built once per process and reused by every
    trial this process runs (they depend on the study's model and data settings only; nothing a
    trial does changes them: the loop reads them and never writes)."""
    from trainables.datasets import load_split

    train_pairs = load_split(data_cfg, data_cfg.train_split, data_cfg.n_train, data_cfg.seed)
    val_pairs = load_split(
        data_cfg, data_cfg.validation_split, data_cfg.n_validation, data_cfg.seed
    )
    tokenizer = load_tokenizer(model_cfg, [t for pair in train_pairs for t in pair])
    return PreparedData(
        tokenizer,
        encode_split(model_cfg, data_cfg, tokenizer, train_pairs),
        encode_split(model_cfg, data_cfg, tokenizer, val_pairs),
    )


def encode_split(
    model_cfg: ModelConfig,
    data_cfg: DataConfig,
    tokenizer: PreTrainedTokenizerBase,
    pairs: list[tuple[str, str]],
) -> batching.EncodedSplit:
    """Token ids of `pairs` for this model: its family's source prefix (T5's `summarize: `),
    then truncation to the study's lengths."""
    prefix = source_prefix(model_cfg)
    return batching.encode_pairs(
        [(prefix + s, t) for s, t in pairs] if prefix else pairs,
        tokenizer,
        data_cfg.max_source_tokens,
        data_cfg.max_target_tokens,
    )


@functools.lru_cache(maxsize=2)
def prepared_test(model_cfg: ModelConfig, data_cfg: DataConfig) -> batching.EncodedSplit:
    """The test split encoded with the study's tokenizer (`eval.test_every_trial` only)."""
    from trainables.datasets import load_split

    tokenizer = prepared_data(model_cfg, data_cfg).tokenizer
    pairs = load_split(data_cfg, data_cfg.test_split, data_cfg.n_test, data_cfg.seed)
    return encode_split(model_cfg, data_cfg, tokenizer, pairs)


@dataclasses.dataclass(frozen=True)
class PreparedData:
    tokenizer: Any
    train: batching.EncodedSplit
    validation: batching.EncodedSplit


def run_worker(
    cfg: StudyConfig, params: dict[str, Any], trial_seed: int, session: WorkerSession
) -> None:
    """Fine-tune, evaluate, checkpoint and report until the trial's epoch budget is spent.

    `trial_seed` seeds what a fresh trial draws (model init, data order, dropout); a restored
    segment continues the RNG state and data order saved in its checkpoint instead.
    """
    from meter.energy import EnergyMeter
    from meter.gpu import cuda_device_uuid
    from trainables.engine import make_engine

    entered = time.perf_counter()
    train_cfg = trial_train_config(cfg, params)
    rank, world, device = session.rank, session.world_size, session.device
    reset_memory_peaks(device)  # a reused process: this segment's peaks, not an earlier trial's
    if cfg.resources.torch_threads:
        torch.set_num_threads(cfg.resources.torch_threads)
    if (
        train_cfg.precision == "bf16"
        and device.type == "cuda"
        and not torch.cuda.is_bf16_supported()
    ):
        raise ConfigError(
            f"train.precision='bf16': {torch.cuda.get_device_name(device)} cannot do bf16 "
            f"(it needs Ampere or newer); use fp16 or fp32"
        )

    # ---- data: the same examples and tokenizer on every worker (deterministic from the seed)
    data = prepared_data(cfg.model, cfg.data)
    tokenizer, train_set, val_set = data.tokenizer, data.train, data.validation
    source_lengths = [len(s) for s in train_set.sources]

    # ---- model and engine (the trial's own seed: grid repeats and random trials differ)
    seed_everything(trial_seed)
    model = build_model(cfg.model, tokenizer, seed=trial_seed)
    trainable_params = apply_freeze(model, train_cfg.freeze)
    total_params = sum(p.numel() for p in model.parameters())
    if train_cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    inputs = model_inputs(model.config)  # BigBird's minimum length, LED's global attention
    flops_per_token = stream_flops(model)  # analytic, per stream (trainables.flops)
    # DeepSpeed reads the launcher's variables; Ray Train (or this process) is the launcher.
    os.environ.setdefault("LOCAL_RANK", str(session.local_rank))
    os.environ.setdefault("RANK", str(rank))
    os.environ.setdefault("WORLD_SIZE", str(world))
    if train_cfg.zero_stage and world == 1:
        single_rank_group()
    engine = make_engine(model, train_cfg, device, world)

    # ---- restore: this trial's own checkpoint, or a PBT donor's, then this trial's settings
    progress = Progress(data_seed=trial_seed)
    checkpoint = session.start_checkpoint()
    if checkpoint:
        with checkpoint.as_directory() as directory:
            progress = _load_state(Path(directory), engine, rank, default_data_seed=trial_seed)
    engine.apply_hparams(train_cfg)

    @functools.lru_cache(maxsize=2)  # one shuffle per epoch, not one per step
    def epoch_batches(epoch: int, batch_size: int) -> list[list[int]]:
        order = batching.batch_order(
            source_lengths, batch_size, progress.data_seed, epoch, cfg.data.sortish
        )
        return batching.shard_batches(order, rank, world)

    batches_per_epoch = len(epoch_batches(0, train_cfg.batch_size))
    if batches_per_epoch == 0:
        raise ConfigError(
            f"data.n_train={len(train_set)}: too few examples for batch_size="
            f"{train_cfg.batch_size} x {world} workers; add data or lower the batch size"
        )
    samples_per_epoch = batches_per_epoch * train_cfg.batch_size  # this rank's share
    max_reports = train_cfg.epochs * train_cfg.evals_per_epoch
    batches_per_report = max(1, batches_per_epoch // train_cfg.evals_per_epoch)
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    # every GPU this worker holds, each once (workers hold whole GPUs: resources.gpus_per_worker)
    gpu_uuids = [
        u for d in session.devices if d.type == "cuda" and (u := cuda_device_uuid(d.index))
    ]
    meter = EnergyMeter(
        gpu_uuids=gpu_uuids, cpu_tdp_w=cfg.energy.cpu_tdp_w, vm_size=cfg.energy.vm_size, sync=sync
    )
    pad_id = tokenizer.pad_token_id
    padding = batching.padding_fraction(source_lengths, epoch_batches(0, train_cfg.batch_size))
    metric, mode = cfg.search.metric, cfg.search.mode

    def next_indices() -> list[int]:
        """This rank's next batch of the lineage's data order (rolls over into the next epoch)."""
        batches = epoch_batches(progress.epoch, train_cfg.batch_size)
        position = progress.samples_in_epoch // train_cfg.batch_size
        if position >= len(batches):
            progress.epoch, progress.samples_in_epoch = progress.epoch + 1, 0
            return next_indices()
        return batches[position]

    def to_device(indices: list[int]) -> dict[str, torch.Tensor]:
        batch = batching.collate(train_set, indices, pad_id, inputs)
        if device.type == "cuda":  # pinned host memory: the copy overlaps the step queued before it
            return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}
        return batch

    setup_s = time.perf_counter() - entered  # data, tokenizer, model, engine, restore
    while progress.reports < max_reports:
        meter.begin_window("report")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        # ---- train for one report interval
        loss_sum = torch.zeros((), device=device)  # stays on the device: one host sync per report
        samples = source_tokens = target_tokens = n_steps = 0
        indices = next_indices()
        batch = to_device(indices)
        while n_steps < batches_per_report:
            engine.set_lr(progress.samples / (train_cfg.epochs * samples_per_epoch))
            loss_sum += engine.train_step(batch).float()
            n_steps += 1
            samples += len(indices)
            source, target = batching.stream_tokens(train_set, indices)
            source_tokens, target_tokens = source_tokens + source, target_tokens + target
            progress.samples_in_epoch += len(indices)
            progress.samples += len(indices)
            progress.step += 1
            if n_steps < batches_per_report:  # prepare the next batch while this step runs
                indices = next_indices()
                batch = to_device(indices)
        train_loss = (loss_sum / max(n_steps, 1)).item()  # .item() syncs: once per report
        train_s = time.perf_counter() - wall0
        if fallback := attention_fallback(engine.unwrapped):
            raise RuntimeError(f"{fallback}; the sparse-attention figures would be dense ones")

        # ---- evaluate (all ranks: the validation shards, then gathered)
        eval0 = time.perf_counter()
        quality = evaluate(engine, tokenizer, val_set, cfg, device, rank, world)
        eval_s = time.perf_counter() - eval0
        progress.reports += 1
        score = quality.get(metric) if rank == 0 else None
        improved = (
            score is not None
            and math.isfinite(score)
            and (
                progress.best_metric is None
                or (score > progress.best_metric if mode == "max" else score < progress.best_metric)
            )
        )
        progress.reports_since_best = 0 if improved else progress.reports_since_best + 1
        if improved:
            progress.best_metric = score
        early_stop = bool(
            train_cfg.early_stopping_patience
            and progress.reports_since_best >= train_cfg.early_stopping_patience
        )
        early_stop = agree_on_early_stop(early_stop, world)

        measurement = meter.end_window("report")
        cpu_s, wall_s = time.process_time() - cpu0, time.perf_counter() - wall0
        test_quality = {}
        if (
            cfg.eval.test_every_trial
            and cfg.data.n_test
            and (early_stop or progress.reports >= max_reports)
        ):  # after the metered window: scoring the test split is not the trial's training cost
            test_set = prepared_test(cfg.model, cfg.data)
            test = evaluate(engine, tokenizer, test_set, cfg, device, rank, world)
            test_quality = {
                schema.TEST_PREFIX + ("loss" if k == "val_loss" else k): v for k, v in test.items()
            }
            test_quality[schema.TEST_N] = len(test_set)
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            saving = time.perf_counter()
            _save_state(directory, engine, progress, rank)
            save_s = time.perf_counter() - saving
            rank_zero = None
            if rank == 0:
                rank_zero = RankZero(
                    quality={**quality, "train_loss": train_loss, **test_quality},
                    step=progress.step,
                    epoch=progress.samples / samples_per_epoch,
                    step_time_s=train_s / max(n_steps, 1),
                    trainable_params=trainable_params,
                    total_params=total_params,
                    padding_fraction=padding,
                    truncated_source_fraction=train_set.truncated_source_fraction,
                    truncated_target_fraction=train_set.truncated_target_fraction,
                    early_stopped=early_stop,
                    setup_s=setup_s,
                    node_id=session.node_id,
                    checkpoint_bytes=sum(
                        f.stat().st_size for f in directory.rglob("*") if f.is_file()
                    ),
                )
                setup_s = 0.0
            report = WorkerReport(
                rank=rank,
                samples=samples,
                tokens=source_tokens + target_tokens,
                train_s=train_s,
                eval_s=eval_s,
                device_s=wall_s,
                energy=measurement,
                flops=flops_per_token.training_flops(source_tokens, target_tokens),
                cpu_s=cpu_s,
                peak_rss_bytes=peak_rss_bytes(),
                checkpoint_save_s=save_s,
                sent_s=time.time(),
                rank_zero=rank_zero,
                **_cuda_memory(device),
            )
            # DDP: rank 0 holds the whole state. ZeRO: every rank saves its own shard.
            shards = train_cfg.zero_stage > 0
            session.report(report, directory if (rank == 0 or shards) else None)
        if early_stop:
            break


def single_rank_group() -> None:
    """A one-process gloo group for DeepSpeed in a single-worker trial (its engine needs one;
    Train makes it for a worker group). Made once per process; an in-memory store, no port."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
        # a reused process: DeepSpeed's clone of the group Train's local mode destroyed is dead
        from trainables.deepspeed_state import forget_world_group

        forget_world_group()


CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_memory_peaks(device: torch.device) -> None:
    """Start the peaks afresh: CUDA's allocator statistics, and this process's peak resident set
    size (Linux: `5` to clear_refs resets the high-water mark `getrusage` reads; elsewhere it
    stays the process's lifetime peak). The RSS peak then starts from what the process already
    holds, which in a reused process includes memory an earlier trial freed but the allocator
    kept: the experiments study starts every trial in a fresh process for that reason."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    try:
        CLEAR_REFS.write_text("5")
    except OSError:
        pass


def peak_rss_bytes() -> int:
    """Peak resident memory of this process since `reset_memory_peaks` (Python, torch, data, model,
    activations: the whole process, not the model alone)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def seed_everything(seed: int) -> None:
    """Python's and torch's generators (model init, dropout) from one trial seed."""
    random.seed(seed)
    torch.manual_seed(seed)


def agree_on_early_stop(stop: bool, world: int) -> bool:
    """Rank 0 alone sees ROUGE, so it decides; every rank follows (no rank trains on alone)."""
    if world == 1:
        return stop
    import torch.distributed as dist

    decision = [stop]
    dist.broadcast_object_list(decision, src=0)
    return bool(decision[0])


def evaluate(
    engine: Engine,
    tokenizer: PreTrainedTokenizerBase,
    val_set: batching.EncodedSplit,
    cfg: StudyConfig,
    device: torch.device,
    rank: int,
    world: int,
) -> dict[str, float]:
    """Validation loss and ROUGE on the whole validation set, split over the workers."""
    import torch.distributed as dist

    from trainables.evaluation import rouge_scores

    indices = list(range(len(val_set)))
    # Same number of batches on every rank (ZeRO-3 generation is collective): pad the shard.
    per_rank = -(-len(indices) // world)
    mine = (indices[rank::world] + indices[:1] * per_rank)[:per_rank]
    real = len(indices[rank::world])
    predictions, loss_sum = summarize(
        engine.unwrapped,
        tokenizer,
        val_set,
        mine,
        cfg,
        device,
        engine.generation_kwargs(),
        real=real,
    )
    loss_n = real
    mine = mine[:real]
    if world > 1:
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (mine, predictions, loss_sum, loss_n))
        pairs = sorted((i, p) for m, preds, _, _ in gathered for i, p in zip(m, preds))
        predictions = [p for _, p in pairs]
        loss_sum, loss_n = sum(g[2] for g in gathered), sum(g[3] for g in gathered)
    references = val_set.target_texts
    scores = rouge_scores(predictions, references) if rank == 0 else {}
    return {"val_loss": loss_sum / max(loss_n, 1), **scores}


def summarize(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    split: batching.EncodedSplit,
    indices: list[int],
    cfg: StudyConfig,
    device: torch.device,
    generation_kwargs: dict[str, Any],
    real: int | None = None,
) -> tuple[list[str], float]:
    """Summaries of `split[indices]` (the first `real` of them kept; the rest pad a shard) and
    the summed token-level loss over those kept."""
    from trainables.engine import seq2seq_loss

    real = len(indices) if real is None else real
    inputs = model_inputs(model.config)
    model.eval()
    loss_sum, predictions = 0.0, []
    with torch.no_grad():
        for start in range(0, len(indices), cfg.eval.batch_size):
            chunk = indices[start : start + cfg.eval.batch_size]
            batch = {
                k: v.to(device)
                for k, v in batching.collate(split, chunk, tokenizer.pad_token_id, inputs).items()
            }
            keep = max(0, min(len(chunk), real - start))
            # the next-token loss (ProphetNet's first stream): comparable across families
            loss_sum += seq2seq_loss(model, batch, 0.0, ngram_streams=False).item() * keep
            generated = model.generate(
                **{k: v for k, v in batch.items() if k != "labels"},
                num_beams=cfg.eval.num_beams,
                max_new_tokens=cfg.eval.max_new_tokens,
                length_penalty=cfg.eval.length_penalty,
                **optional_decoding(cfg),
                **generation_kwargs,
            )
            predictions += [
                p.strip()
                for p in tokenizer.batch_decode(generated, skip_special_tokens=True)[:keep]
            ]
    return predictions, loss_sum


def optional_decoding(cfg: StudyConfig) -> dict[str, int]:
    """Decoding settings passed only when set (0 = transformers' default: off)."""
    e = cfg.eval
    return {
        k: v
        for k, v in (
            ("min_new_tokens", e.min_new_tokens),
            ("no_repeat_ngram_size", e.no_repeat_ngram_size),
        )
        if v
    }


def _cuda_memory(device: torch.device) -> dict[str, float]:
    if device.type != "cuda":
        return {}
    return {
        "peak_cuda_allocated_bytes": torch.cuda.max_memory_allocated(device),
        "peak_cuda_reserved_bytes": torch.cuda.max_memory_reserved(device),
        # NVML's utilisation over its last sample period (~1/6 s to 1 s), at report time
        "gpu_util_pct": float(torch.cuda.utilization(device)),
    }


def _save_state(directory: Path, engine: Engine, progress: Progress, rank: int) -> None:
    engine.save(directory, rank)
    if rank == 0:
        (directory / STATE_FILE).write_text(json.dumps(dataclasses.asdict(progress)))
        torch.save(
            {"python": random.getstate(), "torch": torch.get_rng_state()}, directory / RNG_FILE
        )


def _load_state(directory: Path, engine: Engine, rank: int, default_data_seed: int) -> Progress:
    engine.load(directory)
    rng = torch.load(directory / RNG_FILE, weights_only=True)
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    return Progress(
        **{"data_seed": default_data_seed, **json.loads((directory / STATE_FILE).read_text())}
    )
