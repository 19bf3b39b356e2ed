"""What the tuned summarizer costs to serve: PyTorch, ONNX Runtime and ONNX Runtime int8.

    python -m study.run pbt                                   # any finished study (best_model/)
    python benchmarks/inference.py greentune_results/pbt-tiny-bart-builtin-seed0 \\
        [--n 200] [--batch-sizes 1,16] [--threads 1]

Runs `python -m study.run infer` once per batch size (batch 1: each request is one summary, so
its latency is the per-summary latency; 16: throughput) and prints the rows of these runs from
the study's inference.parquet as one Markdown table, plus the export and quantization set-up.
Energy is the trials' meter (on a machine without RAPL the CPU part is the stated estimate);
ROUGE-L vs PyTorch is the parity check. On a lent GPU the same command runs PyTorch on CUDA and
ONNX Runtime on its CUDA provider where onnxruntime-gpu is installed (benchmarks/gpu_check.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from core import schema
from study.infer import main as infer_main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("study", type=Path)
    p.add_argument("--n", type=int, default=200)
    p.add_argument("--batch-sizes", default="1,16")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args(argv)
    runs_before = _runs(args.study)
    for batch in (int(b) for b in args.batch_sizes.split(",")):
        code = infer_main(
            [
                str(args.study),
                "--n",
                str(args.n),
                "--batch-size",
                str(batch),
                "--threads",
                str(args.threads),
            ]
        )
        if code:
            return code
    frame = pd.read_parquet(args.study / schema.INFERENCE_FILE)
    frame = frame[~frame[schema.INFER_RUN].isin(runs_before)]
    print(
        "\n| runtime | batch | summaries/s | latency p50 / p95 (ms) | peak RSS (MB) | model (MB) "
        "| J / 1k summaries [95 %] | gCO2e / 1k | ROUGE-L | vs PyTorch (ROUGE-L, exact) "
        "| set-up (s, J) |"
    )
    print("|---|---:|---:|---|---:|---:|---|---:|---:|---|---|")
    for r in frame.itertuples(index=False):
        if r.status != "ok":
            print(f"| {r.runtime} | {r.batch_size} | {r.status} |")
            continue
        setup_j = 0.0 if pd.isna(r.setup_energy_j) else r.setup_energy_j
        print(
            f"| {r.runtime} | {r.batch_size} | {r.summaries_per_s:.1f} | "
            f"{r.latency_p50_ms:.0f} / {r.latency_p95_ms:.0f} | {r.peak_rss_mb:.0f} | "
            f"{r.model_bytes / 1e6:.1f} | {r.energy_per_1k_j:.0f} "
            f"[{r.energy_per_1k_low_j:.0f}, {r.energy_per_1k_high_j:.0f}] ({r.energy_source}) | "
            f"{r.co2_per_1k_g:.4f} | {r.rougeL:.4f} | {r.rougeL_vs_pytorch:.4f}, "
            f"{100 * r.exact_vs_pytorch:.0f} % | {r.setup_s:.1f}, {setup_j:.0f} |"
        )
    return 0


def _runs(study: Path) -> set[str]:
    path = study / schema.INFERENCE_FILE
    return set(pd.read_parquet(path)[schema.INFER_RUN]) if path.exists() else set()


if __name__ == "__main__":
    sys.exit(main())
