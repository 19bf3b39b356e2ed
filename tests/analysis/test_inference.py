"""The report's Inference section from inference.parquet rows with known numbers (no Ray, no
serving: the rows are what `study.run infer` writes, checked by tests/serving)."""

from __future__ import annotations

import pandas as pd
import pytest

from analysis.inference import break_even_summaries
from analysis.report import main as report_main
from core import schema
from tests.analysis.analysis_fixtures import cluster_energy, grid_rows, write_study


def test_break_even_arithmetic():
    # a: 1,000 J more up front, 2 J less per summary: even after 500 summaries
    assert break_even_summaries(1500.0, 1.0, 500.0, 3.0) == pytest.approx(500.0)
    assert break_even_summaries(100.0, 1.0, 500.0, 3.0) == 0.0  # cheaper both ways
    assert break_even_summaries(1500.0, 3.0, 500.0, 3.0) is None  # never catches up
    assert break_even_summaries(float("nan"), 1.0, 0.0, 2.0) is None


def _runtime(runtime: str, energy_per_1k: float, setup_j: float, run: str) -> dict:
    row = dict.fromkeys(schema.INFERENCE_COLUMNS)
    row.update(
        runtime=runtime,
        status="ok",
        provider="cpu" if runtime == "pytorch" else "CPUExecutionProvider",
        decoder_cache=runtime == "pytorch",
        n_summaries=200,
        batch_size=16,
        threads=1,
        model_bytes=5_000_000,
        setup_s=1.0,
        setup_energy_j=setup_j,
        seconds=10.0,
        summaries_per_s=20.0,
        latency_p50_ms=700.0,
        latency_p95_ms=900.0,
        peak_rss_mb=900.0,
        energy_j=energy_per_1k / 5,
        energy_source="estimated",
        energy_per_1k_j=energy_per_1k,
        energy_per_1k_low_j=energy_per_1k * 0.9,
        energy_per_1k_high_j=energy_per_1k * 1.1,
        co2_per_1k_g=energy_per_1k / 3.6e6 * 400,
        rougeL=0.2,
        rougeL_vs_pytorch=1.0,
        exact_vs_pytorch=1.0,
    )
    return {schema.INFER_RUN: run, **row}


def test_report_gives_inference_and_break_even(tmp_path):
    meta = [
        {"cluster_energy": cluster_energy([{"gpu_j": None, "cpu_j": c, "ram_j": 0.0}], c / 2)}
        for c in (36_000.0, 72_000.0)  # search energy: 0.01 and 0.02 kWh
    ]
    cheap = write_study(tmp_path, "grid", 0, grid_rows(1.0), wall_s=400, metadata=meta[0])
    costly = write_study(tmp_path, "grid", 1, grid_rows(1.0), wall_s=400, metadata=meta[1])
    old = _runtime("pytorch", 9999.0, 0.0, "2026-12-01T00:00:00+00:00")  # an earlier run: ignored
    rows = {
        cheap: [_runtime("pytorch", 3000.0, 0.0, "2026-12-03T00:00:00+00:00")],
        costly: [
            old,
            _runtime("pytorch", 2000.0, 0.0, "2026-12-03T00:00:00+00:00"),
            _runtime("onnxruntime-int8", 1000.0, 50.0, "2026-12-03T00:00:00+00:00"),
        ],
    }
    for folder, frame in rows.items():
        pd.DataFrame(frame).to_parquet(folder / schema.INFERENCE_FILE)
    out = tmp_path / "report"
    assert report_main([str(cheap), str(costly), "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    section = text[text.index("## Inference") :]
    assert "9,999" not in section and "9999" not in section  # only the latest run
    assert "onnxruntime-int8 (CPUExecutionProvider)" in section
    # within a study: 50 J of quantization / (2 - 1) J saved per summary = 50 summaries
    assert "repays its export/quantization (50.0 J) after 50 summaries" in section
    # across studies: 36,000 + 50 J more up front / (3 - 1) J less per summary = 18,025
    assert "the costlier search repays itself after 18,025 summaries" in section
    assert "1,000 [900 – 1,100] (estimated)" in section  # the interval and the source
    assert "Inference: serving the tuned model" in (out / "report.html").read_text()
