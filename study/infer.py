"""`python -m study.run infer <study folder>`: what the tuned summarizer costs to serve.

Summarizes the study's test split with its `best_model/` on PyTorch, ONNX Runtime and ONNX
Runtime int8 (`serving.infer`), appends one row per runtime to `inference.parquet` and every
request to `inference_requests.parquet` in the study folder, writes the exported graphs to
`onnx/` and a Triton model repository to `triton_repository/` (checked against the graphs), and
prints the table. `python -m analysis.report <study folder> --out <dir>` then adds an Inference
section with the break-even point. Bad input: one line naming it, exit status 2, nothing written.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

from core import schema

PACKAGES = ("onnxruntime", "onnx", "onnxscript")  # what the ONNX runtimes import
INSTALL = "pip install -e '.[inference]'"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m study.run infer", description=__doc__)
    p.add_argument("study", type=Path, help="a study folder (one with best_model/)")
    p.add_argument("--n", type=int, default=200, help="test examples to summarize (default 200)")
    p.add_argument("--batch-size", type=int, default=16, help="summaries per request (default 16)")
    p.add_argument(
        "--runtimes",
        default=",".join(schema.RUNTIMES),
        help=f"comma-separated, some of {','.join(schema.RUNTIMES)} (default: all)",
    )
    p.add_argument(
        "--threads", type=int, default=1, help="intra-op threads for every runtime (default 1)"
    )
    p.add_argument(
        "--mlflow",
        metavar="TRACKING_URI",
        help="also log every request to the study's MLflow run (the one --mlflow made)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from serving.infer import InferError, InferSettings, best_model_dir, study_config

    settings = InferSettings(
        n=args.n,
        batch_size=args.batch_size,
        runtimes=tuple(r.strip() for r in args.runtimes.split(",") if r.strip()),
        threads=args.threads,
    )
    try:
        settings.validate()
        study_dir = args.study.resolve()
        cfg = study_config(study_dir)
        missing = [p for p in PACKAGES if importlib.util.find_spec(p) is None]
        if missing and any(r != "pytorch" for r in settings.runtimes):
            raise InferError(
                f"--runtimes {args.runtimes}: {', '.join(missing)} not installed; {INSTALL} "
                "(or --runtimes pytorch)"
            )
        run_id = _mlflow_run(study_dir, args.mlflow) if args.mlflow else None
        best_model_dir(study_dir)  # refuses a study without a saved model, before any work
    except InferError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from serving.infer import run_inference, write_inference

    print(
        f"infer {study_dir.name}: {cfg.model.name} on {cfg.data.dataset} test, "
        f"{settings.n} summaries in requests of {settings.batch_size}"
    )
    run = run_inference(study_dir, settings)
    results, requests = write_inference(run)
    lines = [f"  results: {results}", f"  requests: {requests}"]
    if run.onnx is not None:
        from serving.triton import check_model_repository, write_model_repository

        repository = study_dir / schema.TRITON_DIR
        write_model_repository(run.onnx, repository)
        problems = check_model_repository(repository)
        lines.append(
            f"  triton: {repository}"
            + (" (checked against the graphs)" if not problems else f" PROBLEMS: {problems}")
        )
    if run_id is not None:
        for log in run.logs:
            log.to_mlflow(args.mlflow, run_id)
        lines.append(f"  mlflow: requests logged to run {run_id}")
    print(_table(run.results))
    print("\n".join(lines))
    print(f"next: python -m analysis.report {study_dir} --out {study_dir}/report")
    return 1 if any(r.status.startswith("failed") for r in run.results) else 0


def _mlflow_run(study_dir: Path, uri: str) -> str:
    from core.metadata import read_metadata
    from serving.infer import InferError

    run_id = read_metadata(study_dir).mlflow_run_id
    if not run_id:
        raise InferError(
            f"--mlflow {uri}: {study_dir.name} was not logged to MLflow (no mlflow_run_id in "
            f"{schema.METADATA_FILE}); drop --mlflow"
        )
    if importlib.util.find_spec("mlflow") is None:
        raise InferError(f"--mlflow {uri}: mlflow is not installed; pip install mlflow")
    return run_id


def _table(results: Sequence[object]) -> str:
    from serving.infer import RuntimeResult

    def fmt(value: float | None, pattern: str) -> str:
        return "-" if value is None else format(value, pattern)

    head = (
        f"  {'runtime':<18}{'summ/s':>8}{'p50 ms':>9}{'p95 ms':>9}{'J/1k':>10}{'gCO2/1k':>9}"
        f"{'ROUGE-L':>9}{'vs PT':>7}  status"
    )
    rows = [head]
    for r in results:
        assert isinstance(r, RuntimeResult)
        rows.append(
            f"  {r.runtime:<18}{fmt(r.summaries_per_s, '.1f'):>8}{fmt(r.latency_p50_ms, '.0f'):>9}"
            f"{fmt(r.latency_p95_ms, '.0f'):>9}{fmt(r.energy_per_1k_j, '.0f'):>10}"
            f"{fmt(r.co2_per_1k_g, '.3f'):>9}{fmt(r.rougeL, '.3f'):>9}"
            f"{fmt(r.rougeL_vs_pytorch, '.3f'):>7}  {r.status}"
        )
    return "\n".join(rows)
