"""What the tuned summarizer costs to run: the study's `best_model/` on each runtime, metered.

`run_inference(study_dir, settings)` loads the selected model and its tokenizer from
`best_model/`, encodes the study's held-out test split as the study did (its prefix and
lengths), and summarizes it in requests of `batch_size` on each runtime:

- `pytorch`: transformers' greedy `generate()` (KV cache on), on CUDA where there is one;
- `onnxruntime`: the exported encoder once and the decoder step once per token
  (`serving.onnx_export`, no KV cache), greedy (`serving.decoding`), on ONNX Runtime's CUDA
  provider where installed (onnxruntime-gpu) and a GPU is present, else its CPU provider;
- `onnxruntime-int8`: the same graphs after dynamic int8 quantization.

Every runtime decodes greedily with the study's `eval.max_new_tokens` and `eval.min_new_tokens`
(beam search is PyTorch's only, so the comparison holds decoding fixed; the study's own test
ROUGE used `eval.num_beams`). One warm-up request runs first and is not counted. Each request is
one window of the trials' `EnergyMeter` (`serving.request_log`); a runtime's energy is the sum
of its requests, converted to CO2 at the study's intensity x PUE and to dollars at the VM's
price per GPU (none on a local machine). Export and quantization are metered once, as the
runtime's set-up, which `analysis.inference` weighs against the saving per summary (break-even).
"""

from __future__ import annotations

import datetime
import gc
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core import schema
from core.config import StudyConfig, from_dict
from core.footprint import carbon_intensity, price_per_worker_hour
from core.measurement import Measurement, sum_measurements, weakest_source
from core.metadata import read_metadata
from core.stats import t_interval
from meter.energy import EnergyMeter
from serving.decoding import GreedySettings, greedy_summarize, pytorch_summarize
from serving.onnx_export import OnnxSeq2Seq, OrtSeq2Seq, export_onnx, quantize_int8
from serving.request_log import MeteredSummarizer, RequestLog, append_parquet, write_requests

MB = 1024 * 1024


class InferError(ValueError):
    """A study folder `infer` cannot serve: the message names the folder and the fix."""


class ExportFailed(RuntimeError):
    """The ONNX export failed: every ONNX runtime of the run fails with the same reason."""


@dataclass(frozen=True)
class InferSettings:
    n: int = 200  # test examples (the first n of the study's test split, in its order)
    batch_size: int = 16  # summaries per request
    runtimes: tuple[str, ...] = schema.RUNTIMES
    threads: int = 1  # intra-op threads, the same for every runtime

    def validate(self) -> None:
        for name, value in (("--n", self.n), ("--batch-size", self.batch_size)):
            if value < 1:
                raise InferError(f"{name} {value}: give a whole number >= 1")
        if self.threads < 1:
            raise InferError(f"--threads {self.threads}: give a whole number >= 1")
        unknown = [r for r in self.runtimes if r not in schema.RUNTIMES]
        if unknown or not self.runtimes:
            raise InferError(
                f"--runtimes {','.join(self.runtimes)!r}: use some of {','.join(schema.RUNTIMES)}"
            )


@dataclass(frozen=True)
class RuntimeResult:
    """One runtime's row of `inference.parquet`: `core.schema.INFERENCE_COLUMNS`, in order."""

    runtime: str
    status: str
    provider: str | None = None
    decoder_cache: bool | None = None
    n_summaries: int = 0
    batch_size: int = 0
    threads: int = 0
    model_bytes: int | None = None
    setup_s: float | None = None
    setup_energy_j: float | None = None
    seconds: float | None = None
    summaries_per_s: float | None = None
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    peak_rss_mb: float | None = None
    peak_vram_mb: float | None = None
    energy_j: float | None = None
    energy_source: str | None = None
    energy_per_1k_j: float | None = None
    energy_per_1k_low_j: float | None = None
    energy_per_1k_high_j: float | None = None
    co2_per_1k_g: float | None = None
    usd_per_1k: float | None = None
    rougeL: float | None = None
    rougeL_vs_pytorch: float | None = None
    exact_vs_pytorch: float | None = None


@dataclass(frozen=True)
class Batch:
    """One request: padded token ids, their mask and the reference summaries."""

    input_ids: np.ndarray
    attention_mask: np.ndarray
    references: list[str]

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


@dataclass
class InferenceRun:
    run_id: str
    study_dir: Path
    results: list[RuntimeResult] = field(default_factory=list)
    logs: list[RequestLog] = field(default_factory=list)
    onnx: OnnxSeq2Seq | None = None  # the fp32 export, where it succeeded
    export_setup: Measurement | None = None  # what the export took, metered
    export_error: str | None = None  # why it failed, for every ONNX runtime of the run


def study_config(study_dir: Path) -> StudyConfig:
    """The study's resolved config, from its metadata.json."""
    try:
        metadata = read_metadata(study_dir)
    except FileNotFoundError as e:
        raise InferError(
            f"{study_dir}: not a study folder (no {schema.METADATA_FILE}); pass the folder "
            "a study wrote"
        ) from e
    return from_dict(StudyConfig, metadata.config)


def best_model_dir(study_dir: Path) -> Path:
    """The study's `best_model/`; InferError where the study saved none."""
    folder = study_dir / schema.BEST_MODEL_DIR
    if not (folder / "config.json").is_file():
        raise InferError(
            f"{folder}: no saved model; the study selects and saves one when it finishes "
            "(run it to the end, or --resume it)"
        )
    return folder


def load_best_model(study_dir: Path) -> tuple[Any, Any]:
    """(model, tokenizer) from the study's `best_model/`."""
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from trainables.session import quiet_worker_logs

    quiet_worker_logs()
    hf_logging.disable_progress_bar()  # "Loading weights" at every load
    folder = best_model_dir(study_dir)
    return AutoModelForSeq2SeqLM.from_pretrained(folder).eval(), AutoTokenizer.from_pretrained(
        folder
    )


def encoded_requests(cfg: StudyConfig, tokenizer: Any, n: int, batch_size: int) -> list[Batch]:
    """The first `n` test examples, encoded as the study encoded them, in requests."""
    from trainables.batching import collate
    from trainables.datasets import load_split
    from trainables.train_loop import encode_split

    pairs = load_split(cfg.data, cfg.data.test_split, n, cfg.data.seed)
    encoded = encode_split(cfg.model, cfg.data, tokenizer, pairs)
    out = []
    for start in range(0, len(encoded), batch_size):
        rows = list(range(start, min(start + batch_size, len(encoded))))
        tensors = collate(encoded, rows, tokenizer.pad_token_id)
        out.append(
            Batch(
                tensors["input_ids"].numpy(),
                tensors["attention_mask"].numpy(),
                [encoded.target_texts[i] for i in rows],
            )
        )
    return out


def run_inference(
    study_dir: Path, settings: InferSettings, say: Callable[[str], None] = print
) -> InferenceRun:
    """Serve the study's test split on each runtime of `settings`; nothing is written here
    (`write_inference` does)."""
    import torch

    from trainables.evaluation import rouge_per_example
    from trainables.train_loop import peak_rss_bytes, reset_memory_peaks

    settings.validate()
    cfg = study_config(study_dir)
    model, tokenizer = load_best_model(study_dir)
    torch.set_num_threads(settings.threads)
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    meter = _meter(cfg, device)
    intensity = carbon_intensity(cfg.energy, time.time())
    price = price_per_worker_hour(
        cfg.energy.vm_size,
        1 if device.type == "cuda" else 0,
        cfg.energy.spot,
        cfg.energy.region,
        cfg.energy.price_usd_per_hour,
    )
    batches = encoded_requests(cfg, tokenizer, settings.n, settings.batch_size)
    greedy = GreedySettings.of(model, cfg.eval.max_new_tokens, cfg.eval.min_new_tokens)
    run = InferenceRun(datetime.datetime.now(datetime.timezone.utc).isoformat(), study_dir)
    onnx_dir = study_dir / schema.ONNX_DIR
    references = [r for b in batches for r in b.references]
    baseline: tuple[list[list[int]], list[str]] | None = None  # PyTorch's ids and texts
    for runtime in sorted(settings.runtimes, key=schema.RUNTIMES.index):  # PyTorch first
        say(f"  {runtime}: setting up")
        log = RequestLog(runtime, intensity)
        try:
            served = _set_up(runtime, model, device, onnx_dir, run, meter, settings.threads)
            served.summarize(batches[0], greedy)  # warm-up: allocations, lazy initialisation
            reset_memory_peaks(device)
            say(f"  {runtime}: {sum(map(len, batches))} summaries in {len(batches)} requests")
            metered = MeteredSummarizer(lambda b, s=served: s.summarize(b, greedy), meter, log)
            ids = [row for batch in batches for row in metered(batch)]
        except Exception as e:  # an exporter or runtime fault: recorded, the others still run
            why = str(e) if isinstance(e, ExportFailed) else _one_line(e)
            run.results.append(RuntimeResult(runtime, f"failed: {why}"))
            continue
        run.logs.append(log)
        texts = [t.strip() for t in tokenizer.batch_decode(ids, skip_special_tokens=True)]
        if runtime == "pytorch":
            baseline = (ids, texts)
        memory = _Memory(
            peak_rss_bytes() / MB,
            torch.cuda.max_memory_allocated(device) / MB
            if device.type == "cuda" and runtime == "pytorch"
            else None,
        )
        quality = _Quality(
            rougeL=_mean_rougeL(rouge_per_example(texts, references)),
            vs_pytorch=(_mean_rougeL(rouge_per_example(texts, baseline[1])) if baseline else None),
            exact=(
                float(np.mean([_same(a, b, greedy.pad_token_id) for a, b in zip(ids, baseline[0])]))
                if baseline
                else None
            ),
        )
        run.results.append(_row(runtime, served, log, settings, memory, quality, price))
        del served
        gc.collect()
    meter.close()
    return run


@dataclass(frozen=True)
class _Memory:
    peak_rss_mb: float
    peak_vram_mb: float | None


@dataclass(frozen=True)
class _Quality:
    rougeL: float
    vs_pytorch: float | None
    exact: float | None


def _row(
    runtime: str,
    served: _Served,
    log: RequestLog,
    settings: InferSettings,
    memory: _Memory,
    quality: _Quality,
    price_usd_per_hour: float | None,
) -> RuntimeResult:
    """A runtime's figures from its request log: sums, percentiles, per-1,000 rates."""
    rows = log.rows
    n = sum(r.summaries for r in rows)
    seconds = sum(r.latency_s for r in rows)
    energy_j = _complete_sum([r.energy_j for r in rows])
    co2_g = _complete_sum([r.co2_g for r in rows])
    latencies_ms = np.array([r.latency_s for r in rows]) * 1000.0
    per_1k = 1000.0 / n
    _, low, high, _ = t_interval([1000.0 * r.energy_j / r.summaries for r in rows if r.energy_j])
    return RuntimeResult(
        runtime=runtime,
        status="ok",
        provider=served.provider,
        decoder_cache=served.decoder_cache,
        n_summaries=n,
        batch_size=settings.batch_size,
        threads=settings.threads,
        model_bytes=served.model_bytes,
        setup_s=served.setup.duration_s,
        setup_energy_j=served.setup.total_j,
        seconds=seconds,
        summaries_per_s=n / seconds if seconds > 0 else None,
        latency_p50_ms=float(np.percentile(latencies_ms, 50)),
        latency_p95_ms=float(np.percentile(latencies_ms, 95)),
        peak_rss_mb=memory.peak_rss_mb,
        peak_vram_mb=memory.peak_vram_mb,
        energy_j=energy_j,
        energy_source=weakest_source(r.energy_source for r in rows),
        energy_per_1k_j=None if energy_j is None else energy_j * per_1k,
        energy_per_1k_low_j=low,
        energy_per_1k_high_j=high,
        co2_per_1k_g=None if co2_g is None else co2_g * per_1k,
        usd_per_1k=(
            None if price_usd_per_hour is None else price_usd_per_hour * seconds / 3600 * per_1k
        ),
        rougeL=quality.rougeL,
        rougeL_vs_pytorch=quality.vs_pytorch,
        exact_vs_pytorch=quality.exact,
    )


def _complete_sum(values: list[float | None]) -> float | None:
    """The sum where every request was measured; None where any was not (a partial sum would
    read as the whole run's)."""
    known = [v for v in values if v is not None]
    return sum(known) if values and len(known) == len(values) else None


def write_inference(run: InferenceRun) -> tuple[Path, Path]:
    """Append the run's rows to the study folder's inference.parquet and its requests to
    inference_requests.parquet (earlier runs' rows are kept, each tagged with its run)."""
    import pandas as pd

    rows = [{schema.INFER_RUN: run.run_id, **asdict(r)} for r in run.results]
    frame = pd.DataFrame(rows, columns=[schema.INFER_RUN, *schema.INFERENCE_COLUMNS])
    results = run.study_dir / schema.INFERENCE_FILE
    append_parquet(frame, results)
    requests = run.study_dir / schema.INFERENCE_REQUESTS_FILE
    write_requests(run.logs, requests, run.run_id)
    return results, requests


@dataclass
class _Served:
    """A runtime ready to summarize a Batch into token-id rows."""

    provider: str
    decoder_cache: bool
    model_bytes: int | None
    setup: Measurement
    summarize_ids: Callable[[Batch, GreedySettings], np.ndarray]

    def summarize(self, batch: Batch, greedy: GreedySettings) -> list[list[int]]:
        return [list(map(int, row)) for row in self.summarize_ids(batch, greedy)]


def _set_up(
    runtime: str,
    model: Any,
    device: Any,
    onnx_dir: Path,
    run: InferenceRun,
    meter: EnergyMeter,
    threads: int,
) -> _Served:
    import torch

    if runtime == "pytorch":
        model.to(device)

        def by_torch(batch: Batch, greedy: GreedySettings) -> np.ndarray:
            out = pytorch_summarize(
                model,
                torch.from_numpy(batch.input_ids).to(device),
                torch.from_numpy(batch.attention_mask).to(device),
                greedy,
            )
            return out.cpu().numpy()

        weights = run.study_dir / schema.BEST_MODEL_DIR / "model.safetensors"
        return _Served(
            str(device),
            True,
            weights.stat().st_size if weights.exists() else None,
            Measurement(0.0),
            by_torch,
        )
    if run.export_error:  # the export failed for an earlier runtime: it would fail again
        raise ExportFailed(run.export_error)
    if run.onnx is None:  # the export, once per run: every ONNX runtime's set-up includes it
        meter.begin_window("export")
        try:
            model.to("cpu")
            run.onnx = export_onnx(model, onnx_dir / "fp32")
        except Exception as e:
            run.export_error = f"export: {_one_line(e)}"
            raise ExportFailed(run.export_error) from e
        finally:
            model.to(device)
            run.export_setup = meter.end_window("export")
    meter.begin_window(f"setup-{runtime}")
    try:
        graphs = (
            run.onnx if runtime == "onnxruntime" else quantize_int8(run.onnx, onnx_dir / "int8")
        )
        session = OrtSeq2Seq(graphs, _providers(device), threads)
    finally:
        own = meter.end_window(f"setup-{runtime}")
    setup = sum_measurements([run.export_setup, own]) if run.export_setup else own

    def by_ort(batch: Batch, greedy: GreedySettings) -> np.ndarray:
        return greedy_summarize(
            session.encode, session.decode, batch.input_ids, batch.attention_mask, greedy
        )

    return _Served(session.encoder.get_providers()[0], False, graphs.bytes, setup, by_ort)


def _providers(device: Any) -> list[str]:
    from serving.onnx_export import available_providers

    if device.type == "cuda" and "CUDAExecutionProvider" in available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _meter(cfg: StudyConfig, device: Any) -> EnergyMeter:
    import torch

    from meter.gpu import cuda_device_uuid

    return EnergyMeter(
        gpu_uuids=[cuda_device_uuid(0)] if device.type == "cuda" else (),
        cpu_tdp_w=cfg.energy.cpu_tdp_w,
        vm_size=cfg.energy.vm_size,
        sync=torch.cuda.synchronize if device.type == "cuda" else None,
    )


def _mean_rougeL(scores: dict[str, list[float]]) -> float:
    values = scores[schema.ROUGEL]
    return float(np.mean(values)) if values else float("nan")


def _same(a: list[int], b: list[int], pad: int) -> bool:
    """Two rows equal token for token, the padding after them aside (a batch pads its rows to
    its longest)."""

    def trim(ids: list[int]) -> list[int]:
        end = len(ids)
        while end > 1 and ids[end - 1] == pad:
            end -= 1
        return ids[:end]

    return trim(a) == trim(b)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text[:240]}"
