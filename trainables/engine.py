"""How one worker updates the model: optimizer, LR schedule, precision, DDP or DeepSpeed ZeRO.

Two engines share one small interface (`train_step`, `set_lr`, `save`, `load`, `apply_hparams`,
`unwrapped`): `TorchEngine` (single process or DDP, fp32/fp16/bf16 autocast) and
`DeepSpeedEngine` (ZeRO stage 1/2/3, optional CPU offload; its config derived from the trial's
`TrainConfig` by `deepspeed_config`).

The LR schedule is a pure function of the *fraction of the trial's epoch budget done*, not of an
optimizer-step count: PBT may hand a trial a donor's state and a different batch size, and a
step count would then mean something else (a step-based schedule silently drops LR to zero).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from core.config import TrainConfig
from trainables.batching import LABEL_PAD

TORCH_STATE_FILE = "engine_state.pt"
DEEPSPEED_TAG = "zero"


def lr_multiplier(done: float, warmup_ratio: float, schedule: str) -> float:
    """Factor on the base LR when a fraction `done` of training is behind: linear warmup over
    `warmup_ratio`, then linear or cosine decay to 0 at done=1 (or constant)."""
    if done < warmup_ratio:
        return max(done, 1e-3 * warmup_ratio) / warmup_ratio
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (done - warmup_ratio) / max(1e-12, 1 - warmup_ratio))
    if schedule == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    return max(0.0, 1 - progress)


def seq2seq_loss(
    model: torch.nn.Module,
    batch: dict[str, torch.Tensor],
    label_smoothing: float,
    ngram_streams: bool = True,
) -> torch.Tensor:
    """Token-level cross entropy over non-padding labels, with label smoothing.

    ProphetNet predicts the next n tokens in n streams (`logits` is the first, `logits_ngram` the
    others, each shifted inside the model so the same labels serve all): its training objective
    is the loss over every stream (`ngram_streams`, unless its config disables the n-gram loss);
    `ngram_streams=False` gives the next-token loss alone, comparable across families.
    """
    outputs = model(**batch)
    logits, labels = outputs.logits, batch["labels"]
    ngram_logits = getattr(outputs, "logits_ngram", None)
    config = getattr(model, "module", model).config  # DDP and DeepSpeed wrap the model
    if ngram_streams and ngram_logits is not None and not config.disable_ngram_loss:
        logits = torch.cat([logits.unsqueeze(1), ngram_logits], dim=1)  # (batch, n, len, vocab)
        labels = labels.unsqueeze(1).expand(-1, logits.size(1), -1)
    return F.cross_entropy(
        logits.reshape(-1, logits.size(-1)).float(),
        labels.reshape(-1),
        ignore_index=LABEL_PAD,
        label_smoothing=label_smoothing,
    )


def make_optimizer(params: Iterable[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(
            params,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            scale_parameter=False,
            relative_step=False,
            warmup_init=False,
        )
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def set_group_lr(optimizer: torch.optim.Optimizer, cfg: TrainConfig, done: float) -> float:
    lr = cfg.lr * lr_multiplier(done, cfg.warmup_ratio, cfg.lr_schedule)
    for group in optimizer.param_groups:
        group["lr"] = lr
    return lr


def autocast_dtype(precision: str) -> torch.dtype | None:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)


class Engine:
    """What both engines share: the LR from training progress, and the trial's own settings."""

    cfg: TrainConfig
    optimizer: torch.optim.Optimizer

    def set_lr(self, done: float) -> float:
        """LR for the next step, from the fraction of the epoch budget done."""
        return set_group_lr(self.optimizer, self.cfg, done)

    def apply_hparams(self, cfg: TrainConfig) -> None:
        """After loading a (possibly donor's) optimizer state, apply this trial's own settings."""
        self.cfg = cfg
        for group in self.optimizer.param_groups:
            group["weight_decay"] = cfg.weight_decay


class TorchEngine(Engine):
    """Plain PyTorch: one process, or DDP when the Train worker group has several."""

    def __init__(
        self, model: torch.nn.Module, cfg: TrainConfig, device: torch.device, world_size: int
    ):
        self.cfg, self.device = cfg, device
        model.to(device)
        self._model = model
        if world_size > 1:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
        self.model = model
        self.optimizer = make_optimizer(
            [p for p in self._model.parameters() if p.requires_grad], cfg
        )
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.precision == "fp16")
        self._micro = 0

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self._model

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        """One micro-batch; the optimizer steps every `grad_accum_steps` micro-batches."""
        self.model.train()
        dtype = autocast_dtype(self.cfg.precision)
        ctx = torch.autocast(self.device.type, dtype=dtype) if dtype else nullcontext()
        with ctx:
            loss = seq2seq_loss(self.model, batch, self.cfg.label_smoothing)
        self.scaler.scale(loss / self.cfg.grad_accum_steps).backward()
        self._micro += 1
        if self._micro % self.cfg.grad_accum_steps == 0:
            if self.cfg.max_grad_norm:
                self.scaler.unscale_(self.optimizer)
                torch.nn.utils.clip_grad_norm_(self._model.parameters(), self.cfg.max_grad_norm)
            self.scaler.step(self.optimizer)
            self.scaler.update()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach()

    def save(self, directory: Path, rank: int) -> None:
        if rank == 0:
            torch.save(
                {
                    "model": self._model.state_dict(),
                    "optimizer": self.optimizer.state_dict(),
                    "scaler": self.scaler.state_dict(),
                    "micro": self._micro,
                },
                directory / TORCH_STATE_FILE,
            )

    def load(self, directory: Path) -> None:
        state = torch.load(
            directory / TORCH_STATE_FILE, map_location=self.device, weights_only=True
        )
        self._model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self._micro = state["micro"]

    def generation_kwargs(self) -> dict[str, Any]:
        return {}


def deepspeed_config(cfg: TrainConfig, world_size: int) -> dict[str, Any]:
    """The DeepSpeed config for a trial, derived from its TrainConfig (one source of truth)."""
    zero: dict[str, Any] = {"stage": cfg.zero_stage}
    if cfg.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu"}
    if cfg.offload_params:
        zero["offload_param"] = {"device": "cpu"}
    return {
        "train_micro_batch_size_per_gpu": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum_steps,
        "train_batch_size": cfg.batch_size * cfg.grad_accum_steps * world_size,
        "gradient_clipping": cfg.max_grad_norm,
        "zero_optimization": zero,
        "fp16": {"enabled": cfg.precision == "fp16"},
        "bf16": {"enabled": cfg.precision == "bf16"},
        # Our own torch optimizer also under offload (DeepSpeedCPUAdam needs a compiled op).
        "zero_force_ds_cpu_optimizer": False,
        "steps_per_print": 10**9,
        "wall_clock_breakdown": False,
    }


class DeepSpeedEngine(Engine):
    """DeepSpeed ZeRO 1/2/3. Every rank saves its own shard (ZeRO-3 needs them all)."""

    def __init__(
        self, model: torch.nn.Module, cfg: TrainConfig, device: torch.device, world_size: int
    ):
        import deepspeed

        os.environ.setdefault("DEEPSPEED_LOG_LEVEL", "warning")
        self.cfg, self.device = cfg, device
        optimizer = make_optimizer([p for p in model.parameters() if p.requires_grad], cfg)
        self.model, self.optimizer, _, _ = deepspeed.initialize(
            model=model,
            optimizer=optimizer,
            config=deepspeed_config(cfg, world_size),
            dist_init_required=False,
        )

    @property
    def unwrapped(self) -> torch.nn.Module:
        return self.model.module

    def train_step(self, batch: dict[str, torch.Tensor]) -> float:
        self.model.train()
        loss = seq2seq_loss(self.model, batch, self.cfg.label_smoothing)
        self.model.backward(loss)
        self.model.step()  # steps the optimizer at accumulation boundaries
        return loss.detach()

    def save(self, directory: Path, rank: int) -> None:
        self.model.save_checkpoint(str(directory), tag=DEEPSPEED_TAG)

    def load(self, directory: Path) -> None:
        self.model.load_checkpoint(str(directory), tag=DEEPSPEED_TAG)

    def generation_kwargs(self) -> dict[str, Any]:
        # ZeRO-3 gathers parameters collectively: every rank must run the same forward passes.
        return {"synced_gpus": True} if self.cfg.zero_stage == 3 else {}


def load_model_weights(model: torch.nn.Module, directory: Path) -> None:
    """Load only the model's weights from a training checkpoint of either engine, in one process
    (a ZeRO checkpoint's shards, of any stage and world size, are consolidated on the CPU)."""
    torch_state = directory / TORCH_STATE_FILE
    if torch_state.exists():
        state = torch.load(torch_state, map_location="cpu", weights_only=True)["model"]
    elif (directory / DEEPSPEED_TAG).is_dir():
        from deepspeed.utils.zero_to_fp32 import get_fp32_state_dict_from_zero_checkpoint

        state = get_fp32_state_dict_from_zero_checkpoint(str(directory), tag=DEEPSPEED_TAG)
    else:
        raise FileNotFoundError(
            f"{directory}: neither {TORCH_STATE_FILE} nor a DeepSpeed "
            f"'{DEEPSPEED_TAG}' folder; not a greentune training checkpoint"
        )
    model.load_state_dict(state)


def make_engine(
    model: torch.nn.Module, cfg: TrainConfig, device: torch.device, world_size: int
) -> Engine:
    cls = DeepSpeedEngine if cfg.zero_stage else TorchEngine
    return cls(model, cfg, device, world_size)
