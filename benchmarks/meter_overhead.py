"""Meter overhead: training step time with the energy meter on vs off, over the same steps.

    python benchmarks/meter_overhead.py [--steps 60] [--rounds 5]

Runs tiny-bart training steps on the built-in data in this process (no Ray), alternating rounds
with and without a meter window, and prints the ratio of mean step times (target <= 1.005).
Two placements are timed: one window per report interval (what the worker loop does: one
begin/end per `--steps` steps) and the worst case, one window around every single step.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch

    from core.config import DataConfig, ModelConfig, TrainConfig
    from meter.energy import EnergyMeter
    from trainables import batching
    from trainables.datasets import load_split
    from trainables.engine import make_engine
    from trainables.models import build_model, train_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--steps", type=int, default=60, help="steps per round (one report interval)"
    )
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each placement")
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = load_split(DataConfig(), "train", 16 * args.steps, seed=0)
    tok = train_tokenizer([t for p in pairs for t in p], 1024)
    data = batching.encode_pairs(pairs, tok, 160, 48)
    batches = [
        batching.collate(data, list(range(i, i + 16)), 0) for i in range(0, 16 * args.steps, 16)
    ]
    engine = make_engine(build_model(ModelConfig(), tok), TrainConfig(), torch.device("cpu"), 1)
    meter = EnergyMeter()

    def run(placement: str) -> float:
        start = time.perf_counter()
        if placement == "per_report":
            meter.begin_window("report")
        for batch in batches:
            if placement == "per_step":
                meter.begin_window("step")
            engine.set_lr(0.5)
            engine.train_step(batch)
            if placement == "per_step":
                meter.end_window("step")
        if placement == "per_report":
            meter.end_window("report")
        return (time.perf_counter() - start) / len(batches)

    run("off")  # warm-up
    times: dict[str, list[float]] = {"off": [], "per_report": [], "per_step": []}
    for _ in range(args.rounds):
        for placement in times:  # interleaved, so drift hits every placement alike
            times[placement].append(run(placement))
    off = statistics.median(times["off"])
    print(
        f"command: python benchmarks/meter_overhead.py --steps {args.steps} --rounds {args.rounds}"
    )
    print(f"meter: {meter.describe()}")
    for placement in ("per_report", "per_step"):
        on = statistics.median(times[placement])
        print(
            f"{placement:>10}: step {on * 1e3:.2f} ms vs off {off * 1e3:.2f} ms -> ratio "
            f"{on / off:.4f}"
        )
    spread = (max(times["off"]) - min(times["off"])) / off
    print(f"run-to-run spread of the 'off' rounds: {spread:.2%} (a ratio inside it is noise)")

    # The meter's own cost, timed directly: a begin/end pair, many times (no training between).
    pairs = 2000
    start = time.perf_counter()
    for _ in range(pairs):
        meter.begin_window("probe")
        meter.end_window("probe")
    window_s = (time.perf_counter() - start) / pairs
    interval_s = args.steps * off
    print(
        f"one meter window (begin + end): {window_s * 1e6:.1f} us; over one report interval of "
        f"{args.steps} steps ({interval_s:.1f} s) -> ratio {1 + window_s / interval_s:.6f}; "
        f"around every step -> ratio {1 + window_s / off:.5f}"
    )


if __name__ == "__main__":
    main()
