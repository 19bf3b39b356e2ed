"""GPU checks for one lent H100/H200 (or any CUDA GPU), one prepared script (about 10 minutes,
estimated: it has not run on a lent GPU yet).

    python benchmarks/gpu_check.py [--steps 30] [--out gpu_check.json]

1. Meter: a fixed bf16 matmul workload metered by NVML's energy counter, compared with the
   integral of power sampled every 10 ms (they must agree within 2 %); idle and busy power; the
   meter's own overhead (step time with a window per step vs none).
2. Training, the GPU rows of the experiments' effects table (search_spaces/experiments.yaml): a
   random-init model the size of facebook/bart-base (built from its config, no download) trains
   for `--steps` steps per setting: fp32, fp16, bf16; bf16 with DeepSpeed ZeRO 1/2/3, ZeRO-2
   with optimizer offload, ZeRO-3 with optimizer and parameter offload (one rank); bf16 with the
   embeddings or the encoder frozen, and with gradient checkpointing. Tokens/s, peak CUDA memory
   (allocated, reserved), model-FLOPs utilisation (per-stream FLOPs, trainables/flops.py, / time
   / peak bf16 FLOP/s), and each row's change in memory and speed against its comparison (fp32
   for fp16 and bf16, bf16 for the rest): the plan's "reduces GPU memory" and "increases speed"
   measured where they apply.

Prints a table and writes JSON; copy the figures into benchmarks/README.md with the device named.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PEAK_BF16_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}  # dense, SXM datasheets


def meter_check(torch, pynvml) -> dict:
    from meter.energy import EnergyMeter
    from meter.gpu import cuda_device_uuid

    handle = pynvml.nvmlDeviceGetHandleByIndex(0)
    samples, stop = [], threading.Event()

    def sample():
        while not stop.is_set():
            samples.append((time.monotonic(), pynvml.nvmlDeviceGetPowerUsage(handle) / 1000))
            time.sleep(0.01)

    time.sleep(2)
    idle_w = pynvml.nvmlDeviceGetPowerUsage(handle) / 1000
    a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
    meter = EnergyMeter(gpu_uuid=cuda_device_uuid(0), sync=torch.cuda.synchronize)
    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    meter.begin_window("matmul")
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        for _ in range(20):
            a @ a
        torch.cuda.synchronize()
    measured = meter.end_window("matmul")
    stop.set()
    thread.join()
    window = [(t, w) for t, w in samples if t0 <= t]
    integral = sum((t2 - t1) * (w1 + w2) / 2 for (t1, w1), (t2, w2) in zip(window, window[1:]))
    return {
        "idle_power_w": idle_w,
        "busy_power_w": measured.gpu_j / measured.duration_s,
        "counter_j": measured.gpu_j,
        "power_integral_10ms_j": integral,
        "counter_vs_integral": measured.gpu_j / integral,
        "source": measured.gpu_source,
    }


def train_check(torch, name: str, settings: dict, steps: int) -> dict:
    from transformers import BartConfig, BartForConditionalGeneration

    from core.config import TrainConfig
    from trainables.engine import make_engine
    from trainables.flops import stream_flops
    from trainables.models import enable_gradient_checkpointing
    from trainables.train_loop import apply_freeze

    config = BartConfig(
        vocab_size=50265,
        d_model=768,
        encoder_layers=6,
        decoder_layers=6,
        encoder_attention_heads=12,
        decoder_attention_heads=12,
        encoder_ffn_dim=3072,
        decoder_ffn_dim=3072,
        max_position_embeddings=1024,
    )
    model = BartForConditionalGeneration(config)
    params = sum(p.numel() for p in model.parameters())
    cfg = TrainConfig(batch_size=16, lr=1e-4, **settings)
    apply_freeze(model, cfg.freeze)
    if cfg.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    flops_per_token = stream_flops(model)
    torch.cuda.reset_peak_memory_stats()
    engine = make_engine(model, cfg, torch.device("cuda", 0), 1)
    src, tgt = 512, 128
    batch = {
        "input_ids": torch.randint(5, 50000, (16, src), device="cuda"),
        "attention_mask": torch.ones(16, src, dtype=torch.long, device="cuda"),
        "labels": torch.randint(5, 50000, (16, tgt), device="cuda"),
    }
    for _ in range(3):  # warm-up
        engine.set_lr(0.5)
        engine.train_step(batch)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        engine.set_lr(0.5)
        engine.train_step(batch)
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    tokens = steps * 16 * (src + tgt)
    device = torch.cuda.get_device_name(0)
    peak = next((v for k, v in PEAK_BF16_FLOPS.items() if k in device), None)
    flops = flops_per_token.training_flops(steps * 16 * src, steps * 16 * tgt)
    result = {
        "setting": name,
        **settings,
        "params": params,
        "tokens_per_s": tokens / elapsed,
        "step_s": elapsed / steps,
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / 2**30,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / 2**30,
        "mfu": flops / elapsed / peak if peak else None,
    }
    del engine, model
    torch.cuda.empty_cache()
    return result


# (row, TrainConfig settings, the row it is compared with): the effects table's GPU rows
SETTINGS = (
    ("fp32", {"precision": "fp32"}, None),
    ("fp16", {"precision": "fp16"}, "fp32"),
    ("bf16", {"precision": "bf16"}, "fp32"),
    ("zero1", {"precision": "bf16", "zero_stage": 1}, "bf16"),
    ("zero2", {"precision": "bf16", "zero_stage": 2}, "bf16"),
    ("zero3", {"precision": "bf16", "zero_stage": 3}, "bf16"),
    ("zero2-offload", {"precision": "bf16", "zero_stage": 2, "offload_optimizer": True}, "bf16"),
    (
        "zero3-offload",
        {"precision": "bf16", "zero_stage": 3, "offload_optimizer": True, "offload_params": True},
        "bf16",
    ),
    ("freeze-embeddings", {"precision": "bf16", "freeze": "embeddings"}, "bf16"),
    ("freeze-encoder", {"precision": "bf16", "freeze": "encoder"}, "bf16"),
    ("gradient-checkpointing", {"precision": "bf16", "gradient_checkpointing": True}, "bf16"),
)


def main() -> None:
    import pynvml
    import torch
    import torch.distributed as dist

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", default=os.path.join(os.environ.get("OUT", "."), "gpu_check.json"))
    args = parser.parse_args()
    pynvml.nvmlInit()
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT="29533", LOCAL_RANK="0", RANK="0", WORLD_SIZE="1"
    )
    dist.init_process_group("nccl", rank=0, world_size=1)
    report = {
        "device": torch.cuda.get_device_name(0),
        "meter": meter_check(torch, pynvml),
        "training": [],
    }
    print(json.dumps(report["meter"], indent=1), flush=True)
    rows = {}
    for name, settings, against in SETTINGS:
        # offload steps run the optimizer on the CPU: fewer of them
        steps = max(3, args.steps // 3) if "offload" in name else args.steps
        row = train_check(torch, name, settings, steps)
        if against in rows:
            base = rows[against]
            row["against"] = against
            row["memory_change_pct"] = 100 * (
                row["peak_allocated_gib"] / base["peak_allocated_gib"] - 1
            )
            row["speed_change_pct"] = 100 * (row["tokens_per_s"] / base["tokens_per_s"] - 1)
        rows[name] = row
        report["training"].append(row)
        print(json.dumps(row), flush=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
