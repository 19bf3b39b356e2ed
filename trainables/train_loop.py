"""The Ray Train worker loop: fine-tune a seq2seq summarizer, evaluate, checkpoint, report.

Reads top to bottom: set up data, model and engine; restore if a checkpoint was given (the
trial's own, or a PBT donor's); apply this trial's hyperparameters; then train, evaluate and
report until the trial's epoch budget is spent or early stopping ends it.

Every worker reports its own figures; the trial driver (trainables/driver.py) sums the additive
ones over workers (`SUMMED_KEYS`) and takes quality figures from rank 0.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import random
import resource
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from study.config import ConfigError, StudyConfig, TrainConfig, from_dict
from trainables import batching
from trainables.models import build_model, load_tokenizer

STATE_FILE = "trial_state.json"
RNG_FILE = "rng_state.pt"

# Figures each worker measures for its own share; the driver adds them up over workers.
SUMMED_KEYS = ("interval_samples", "interval_tokens", "interval_train_s", "interval_eval_s",
               "interval_device_s", "interval_energy_gpu_j", "interval_energy_cpu_j",
               "interval_energy_ram_j", "interval_flops")
MAX_KEYS = ("peak_rss_bytes", "peak_cuda_allocated_bytes", "peak_cuda_reserved_bytes", "checkpoint_save_s",
            "report_sent_s")


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


def trial_train_config(cfg: StudyConfig, params: dict[str, Any]) -> TrainConfig:
    """The study's train settings with this trial's hyperparameters applied, validated."""
    train = from_dict(TrainConfig, {**dataclasses.asdict(cfg.train), **params}, prefix="train.")
    train.validate()
    return train


def apply_freeze(model, freeze: str) -> int:
    """Freeze part of the model; returns the number of trainable parameters left."""
    if freeze == "embeddings":
        for module in (model.get_input_embeddings(), getattr(model.get_encoder(), "embed_positions", None)):
            if module is not None:
                module.requires_grad_(False)
    elif freeze == "encoder":
        model.get_encoder().requires_grad_(False)
    elif freeze.startswith("layers:"):
        n = int(freeze.split(":")[1])
        layers = getattr(model.get_encoder(), "layers", None) or getattr(model.get_encoder(), "block", None)
        if layers is None or n > len(layers):
            raise ConfigError(f"train.freeze={freeze!r}: the encoder has {len(layers or [])} layers")
        model.get_input_embeddings().requires_grad_(False)
        for layer in layers[:n]:
            layer.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def train_worker(loop_config: dict[str, Any]) -> None:
    import ray.train
    import ray.train.torch

    from trainables.datasets import load_split
    from trainables.energy import EnergyMeter, cuda_device_uuid
    from trainables.engine import make_engine

    entered = time.perf_counter()
    cfg: StudyConfig = from_dict(StudyConfig, loop_config["study"])
    train_cfg = trial_train_config(cfg, loop_config["params"])
    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    node_id = ray.get_runtime_context().get_node_id()
    if cfg.resources.torch_threads:
        torch.set_num_threads(cfg.resources.torch_threads)
    device = ray.train.torch.get_device()
    if train_cfg.precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ConfigError(f"train.precision='bf16': {torch.cuda.get_device_name(device)} cannot do bf16 "
                          f"(it needs Ampere or newer); use fp16 or fp32")

    # ---- data: the same examples and tokenizer on every worker (deterministic from the seed)
    train_pairs = load_split(cfg.data, cfg.data.train_split, cfg.data.n_train, cfg.data.seed)
    val_pairs = load_split(cfg.data, cfg.data.validation_split, cfg.data.n_validation, cfg.data.seed)
    tokenizer = load_tokenizer(cfg.model, [t for pair in train_pairs for t in pair])
    train_set = batching.encode_pairs(train_pairs, tokenizer, cfg.data.max_source_tokens,
                                      cfg.data.max_target_tokens)
    val_set = batching.encode_pairs(val_pairs, tokenizer, cfg.data.max_source_tokens,
                                    cfg.data.max_target_tokens)
    source_lengths = [len(s) for s in train_set.sources]

    # ---- model and engine
    model = build_model(cfg.model, tokenizer, seed=cfg.seed)
    trainable_params = apply_freeze(model, train_cfg.freeze)
    total_params = sum(p.numel() for p in model.parameters())

    @functools.lru_cache(maxsize=2)  # one shuffle per epoch, not one per step
    def epoch_batches(epoch: int, batch_size: int) -> list[list[int]]:
        order = batching.batch_order(source_lengths, batch_size, cfg.data.seed + cfg.seed, epoch,
                                     cfg.data.sortish)
        return batching.shard_batches(order, rank, world)

    batches_per_epoch = len(epoch_batches(0, train_cfg.batch_size))
    if batches_per_epoch == 0:
        raise ConfigError(f"data.n_train={len(train_set)}: too few examples for batch_size="
                          f"{train_cfg.batch_size} x {world} workers; add data or lower the batch size")
    # DeepSpeed reads the launcher's variables; Ray Train is our launcher.
    os.environ.setdefault("LOCAL_RANK", str(ctx.get_local_rank()))
    os.environ.setdefault("RANK", str(rank))
    os.environ.setdefault("WORLD_SIZE", str(world))
    engine = make_engine(model, train_cfg, device, world)
    samples_per_epoch = batches_per_epoch * train_cfg.batch_size  # this rank's share

    # ---- restore: this trial's own checkpoint, or a PBT donor's, then this trial's settings
    progress = Progress()
    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None and loop_config.get("restore_from"):
        checkpoint = ray.train.Checkpoint(loop_config["restore_from"])
    if checkpoint:
        with checkpoint.as_directory() as directory:
            progress = _load_state(Path(directory), engine, rank)
    engine.apply_hparams(train_cfg)

    max_reports = train_cfg.epochs * train_cfg.evals_per_epoch
    batches_per_report = max(1, batches_per_epoch // train_cfg.evals_per_epoch)
    meter = EnergyMeter(gpu_uuid=cuda_device_uuid(device.index) if device.type == "cuda" else None,
                        cpu_tdp_w=cfg.energy.cpu_tdp_w)
    pad_id = tokenizer.pad_token_id
    padding = batching.padding_fraction(source_lengths, epoch_batches(0, train_cfg.batch_size))
    metric, mode = cfg.search.metric, cfg.search.mode

    setup_s = time.perf_counter() - entered  # data, tokenizer, model, engine, restore
    while progress.reports < max_reports:
        meter.begin_window("report")
        cpu0, wall0 = time.process_time(), time.perf_counter()
        # ---- train for one report interval
        loss_sum, samples, tokens = torch.zeros(()), 0, 0
        n_steps = 0
        while n_steps < batches_per_report:
            batches = epoch_batches(progress.epoch, train_cfg.batch_size)
            position = progress.samples_in_epoch // train_cfg.batch_size
            if position >= len(batches):
                progress.epoch, progress.samples_in_epoch = progress.epoch + 1, 0
                continue
            indices = batches[position]
            batch = {k: v.to(device) for k, v in batching.collate(train_set, indices, pad_id).items()}
            engine.set_lr(progress.samples / (train_cfg.epochs * samples_per_epoch))
            loss_sum += engine.train_step(batch).float().cpu()
            n_steps += 1
            samples += len(indices)
            tokens += batching.batch_tokens(train_set, indices)
            progress.samples_in_epoch += len(indices)
            progress.samples += len(indices)
            progress.step += 1
        train_s = time.perf_counter() - wall0

        # ---- evaluate (all ranks: the validation shards, then gathered)
        eval0 = time.perf_counter()
        quality = evaluate(engine, tokenizer, val_set, cfg, device, rank, world)
        eval_s = time.perf_counter() - eval0
        progress.reports += 1
        score = quality[metric] if metric in quality else None
        improved = score is not None and (
            progress.best_metric is None or (score > progress.best_metric if mode == "max"
                                             else score < progress.best_metric))
        progress.reports_since_best = 0 if improved else progress.reports_since_best + 1
        if improved:
            progress.best_metric = score
        early_stop = bool(train_cfg.early_stopping_patience
                          and progress.reports_since_best >= train_cfg.early_stopping_patience)

        measurement = meter.end_window("report")
        wall_s = time.perf_counter() - wall0
        metrics: dict[str, Any] = {
            "rank": rank,
            "interval_samples": samples,
            "interval_tokens": tokens,
            "interval_train_s": train_s,
            "interval_eval_s": eval_s,
            "interval_device_s": wall_s,
            "interval_energy_gpu_j": measurement.gpu_j,
            "interval_energy_cpu_j": measurement.cpu_j,
            "interval_energy_ram_j": measurement.ram_j,
            "energy_gpu_source": measurement.gpu_source,
            "energy_cpu_source": measurement.cpu_source,
            "energy_ram_source": measurement.ram_source,
            # Analytic estimate: 6 x parameters x tokens (forward 2, backward 4), labelled as such.
            "interval_flops": 6.0 * total_params * tokens,
            "cpu_util_pct": 100.0 * (time.process_time() - cpu0) / max(wall_s, 1e-9),
            "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
            **_cuda_memory(device),
        }
        if rank == 0:
            metrics.update(quality)
            metrics.update({
                "train_loss": (loss_sum / max(n_steps, 1)).item(),  # .item() syncs: once per report
                "step": progress.step,
                "epoch": progress.samples / samples_per_epoch,
                "step_time_s": train_s / max(n_steps, 1),
                "trainable_params": trainable_params,
                "padding_fraction": padding,
                "truncated_source_fraction": train_set.truncated_source_fraction,
                "truncated_target_fraction": train_set.truncated_target_fraction,
                "early_stopped": early_stop,
                "setup_s": setup_s,  # non-zero in a segment's first report only
                "node_id": node_id,
            })
            setup_s = 0.0

        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            saving = time.perf_counter()
            _save_state(directory, engine, progress, rank)
            metrics["checkpoint_save_s"] = time.perf_counter() - saving
            if rank == 0:
                metrics["checkpoint_bytes"] = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
            # DDP: rank 0 holds the whole state. ZeRO: every rank saves its own shard.
            shards = train_cfg.zero_stage > 0
            ckpt = ray.train.Checkpoint.from_directory(tmp) if (rank == 0 or shards) else None
            metrics["report_sent_s"] = time.time()  # the driver measures the report's latency from here
            ray.train.report(metrics, checkpoint=ckpt)
        if early_stop:
            break


def evaluate(engine, tokenizer, val_set: batching.EncodedSplit, cfg: StudyConfig, device, rank: int,
             world: int) -> dict[str, float]:
    """Validation loss and ROUGE on the whole validation set, split over the workers."""
    import torch.distributed as dist

    from trainables.engine import seq2seq_loss
    from trainables.evaluation import rouge_scores

    model = engine.unwrapped
    model.eval()
    indices = list(range(len(val_set)))
    # Same number of batches on every rank (ZeRO-3 generation is collective): pad the shard.
    per_rank = -(-len(indices) // world)
    mine = (indices[rank::world] + indices[:1] * per_rank)[:per_rank]
    real = len(indices[rank::world])
    loss_sum, loss_n, predictions = 0.0, 0, []
    with torch.no_grad():
        for start in range(0, per_rank, cfg.eval.batch_size):
            chunk = mine[start:start + cfg.eval.batch_size]
            batch = {k: v.to(device) for k, v in batching.collate(val_set, chunk, tokenizer.pad_token_id).items()}
            keep = max(0, min(len(chunk), real - start))
            loss = seq2seq_loss(model, batch, 0.0)
            loss_sum += loss.item() * keep
            loss_n += keep
            generated = model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                       num_beams=cfg.eval.num_beams, max_new_tokens=cfg.eval.max_new_tokens,
                                       length_penalty=cfg.eval.length_penalty,
                                       **engine.generation_kwargs())
            predictions += tokenizer.batch_decode(generated, skip_special_tokens=True)[:keep]
    mine = mine[:real]
    if world > 1:
        gathered: list[Any] = [None] * world
        dist.all_gather_object(gathered, (mine, predictions, loss_sum, loss_n))
        pairs = sorted((i, p) for m, preds, _, _ in gathered for i, p in zip(m, preds))
        predictions = [p for _, p in pairs]
        loss_sum, loss_n = sum(g[2] for g in gathered), sum(g[3] for g in gathered)
    references = val_set.target_texts
    scores = rouge_scores([p.strip() for p in predictions], references) if rank == 0 else {}
    return {"val_loss": loss_sum / max(loss_n, 1), **scores}


def _cuda_memory(device) -> dict[str, float]:
    if device.type != "cuda":
        return {}
    return {"peak_cuda_allocated_bytes": torch.cuda.max_memory_allocated(device),
            "peak_cuda_reserved_bytes": torch.cuda.max_memory_reserved(device),
            # NVML's utilisation over its last sample period (~1/6 s to 1 s), at report time
            "gpu_util_pct": float(torch.cuda.utilization(device))}


def _save_state(directory: Path, engine, progress: Progress, rank: int) -> None:
    engine.save(directory, rank)
    if rank == 0:
        (directory / STATE_FILE).write_text(json.dumps(dataclasses.asdict(progress)))
        torch.save({"python": random.getstate(), "torch": torch.get_rng_state()}, directory / RNG_FILE)


def _load_state(directory: Path, engine, rank: int) -> Progress:
    engine.load(directory)
    rng = torch.load(directory / RNG_FILE, weights_only=False)
    random.setstate(rng["python"])
    torch.set_rng_state(rng["torch"])
    return Progress(**json.loads((directory / STATE_FILE).read_text()))

