"""The report's Inference section: what each study's tuned model costs to serve, per runtime,
and when a cheaper-to-serve choice repays what it cost up front.

Reads `inference.parquet` (`python -m study.run infer`), the latest run of each study. Break-even
is energy arithmetic: a choice that costs U_a up front and s_a per summary against one at U_b
and s_b (U_a > U_b, s_a < s_b) has cost less in total after (U_a - U_b) / (s_b - s_a) summaries.
Two cases are given: within a study, an ONNX runtime's export and quantization (its set-up)
against PyTorch; across studies, a study's whole-cluster search energy plus its cheapest
runtime's set-up, against another's. Energy per summary is the meter's (its source is in the
table: on a machine without RAPL the CPU part is an estimate), with a 95 % interval over requests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from analysis.document import Section
from analysis.formatting import count, interval, num, sig
from analysis.load import Study
from analysis.summary import cluster_energy_figures
from core.footprint import J_PER_KWH
from core.schema import CLUSTER_ENERGY_KWH, INFER_RUN

INFERENCE_HEAD = "Inference: serving the tuned model"
INFERENCE_NOTE = (
    "`python -m study.run infer <study>`: the selected model (best_model/) summarizes the test "
    "split in requests of the batch size on each runtime, greedy with the study's lengths (one "
    "untimed warm-up request first). Latency is per request; energy per 1,000 summaries is the "
    "sum of the metered requests with its 95 % interval over requests; CO2 at the study's region "
    "intensity x PUE; dollars at the VM's price per GPU (none on a local machine). Parity: "
    "ROUGE-L of each runtime's summaries against PyTorch's, and the share identical token for "
    "token. The ONNX decoder has no KV cache (it recomputes earlier positions at every token); "
    "PyTorch's generate() has one."
)


def latest_inference(study: Study) -> pd.DataFrame | None:
    """The rows of the study's latest `infer` run (None: never run)."""
    frame = study.inference
    if frame is None or frame.empty:
        return None
    return frame[frame[INFER_RUN] == frame[INFER_RUN].max()].reset_index(drop=True)


def break_even_summaries(
    upfront_a: float, per_summary_a: float, upfront_b: float, per_summary_b: float
) -> float | None:
    """Summaries after which choice a (costlier up front, cheaper per summary) has cost less in
    total than b; 0 when a is no costlier up front and cheaper per summary; None when a never
    catches up (it is no cheaper per summary)."""
    values = (upfront_a, per_summary_a, upfront_b, per_summary_b)
    if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
        return None
    saving = per_summary_b - per_summary_a
    if saving <= 0:
        return None
    return max(0.0, (upfront_a - upfront_b) / saving)


def inference_table(studies: Sequence[Study]) -> pd.DataFrame:
    rows = []
    for study in studies:
        frame = latest_inference(study)
        if frame is None:
            continue
        for r in frame.itertuples(index=False):
            ok = r.status == "ok"
            rows.append(
                {
                    "Study": study.name,
                    "Runtime": f"{r.runtime} ({r.provider})" if ok else r.runtime,
                    "Status": r.status,
                    "Summaries/s": num(r.summaries_per_s, 1) if ok else "–",
                    "Latency p50 / p95 (ms)": (
                        f"{num(r.latency_p50_ms, 0)} / {num(r.latency_p95_ms, 0)} "
                        f"(requests of {r.batch_size})"
                        if ok
                        else "–"
                    ),
                    "Peak RSS (MB)": num(r.peak_rss_mb, 0) if ok else "–",
                    "Model (MB)": num(r.model_bytes / 1e6, 1) if ok and r.model_bytes else "–",
                    "Energy / 1k summaries (J)": (
                        sig(r.energy_per_1k_j)
                        + interval(r.energy_per_1k_low_j, r.energy_per_1k_high_j, sig)
                        + f" ({r.energy_source})"
                        if ok and r.energy_per_1k_j is not None
                        else "–"
                    ),
                    "gCO2e / 1k": sig(r.co2_per_1k_g) if ok else "–",
                    "$ / 1k": sig(r.usd_per_1k) if ok and r.usd_per_1k is not None else "n/a",
                    "ROUGE-L": num(r.rougeL, 4) if ok else "–",
                    "Parity vs PyTorch (ROUGE-L, exact)": (
                        f"{num(r.rougeL_vs_pytorch, 4)}, {num(100 * r.exact_vs_pytorch, 0)} %"
                        if ok and r.rougeL_vs_pytorch is not None
                        else "–"
                    ),
                }
            )
    return pd.DataFrame(rows)


def break_even_lines(studies: Sequence[Study]) -> list[str]:
    lines = []
    cheapest: list[tuple[Study, pd.Series, float]] = []  # (study, its cheapest runtime, search J)
    for study in studies:
        frame = latest_inference(study)
        if frame is None:
            continue
        ok = frame[(frame["status"] == "ok") & frame["energy_per_1k_j"].notna()]
        by_runtime = {r["runtime"]: r for _, r in ok.iterrows()}
        base = by_runtime.get("pytorch")
        for name, r in by_runtime.items():
            if base is None or name == "pytorch":
                continue
            n = break_even_summaries(
                r["setup_energy_j"] or 0.0,
                r["energy_per_1k_j"] / 1000,
                0.0,
                base["energy_per_1k_j"] / 1000,
            )
            lines.append(
                f"{study.name}: {name} "
                + (
                    f"repays its export/quantization ({sig(r['setup_energy_j'])} J) after "
                    f"{count(n)} summaries ({sig(r['energy_per_1k_j'])} vs "
                    f"{sig(base['energy_per_1k_j'])} J per 1,000 on PyTorch)"
                    if n is not None
                    else f"never repays its export: it uses no less energy per summary "
                    f"({sig(r['energy_per_1k_j'])} vs {sig(base['energy_per_1k_j'])} J per 1,000)"
                )
            )
        if len(ok):
            best = ok.loc[ok["energy_per_1k_j"].idxmin()]
            search_kwh = cluster_energy_figures(study.metadata).get(CLUSTER_ENERGY_KWH, math.nan)
            cheapest.append((study, best, search_kwh * J_PER_KWH))
    for i, (a, ra, ua) in enumerate(cheapest):
        for b, rb, ub in cheapest[i + 1 :]:
            (x, rx, ux), (y, ry, uy) = (
                ((a, ra, ua), (b, rb, ub)) if ua >= ub else ((b, rb, ub), (a, ra, ua))
            )
            if not math.isfinite(ux) or not math.isfinite(uy):
                continue
            n = break_even_summaries(
                ux + (rx["setup_energy_j"] or 0.0),
                rx["energy_per_1k_j"] / 1000,
                uy + (ry["setup_energy_j"] or 0.0),
                ry["energy_per_1k_j"] / 1000,
            )
            lines.append(
                f"{x.name} (search {sig(ux / J_PER_KWH)} kWh, serving {sig(rx['energy_per_1k_j'])} "
                f"J/1k on {rx['runtime']}) against {y.name} ({sig(uy / J_PER_KWH)} kWh, "
                f"{sig(ry['energy_per_1k_j'])} J/1k on {ry['runtime']}): "
                + (
                    f"the costlier search repays itself after {count(n)} summaries"
                    if n is not None
                    else "the costlier search never repays itself in serving energy"
                )
            )
    return lines


def inference_sections(studies: Sequence[Study]) -> list[Section]:
    """The Inference section, where any study has been served (else nothing)."""
    table = inference_table(studies)
    if table.empty:
        return []
    return [
        Section(
            INFERENCE_HEAD,
            INFERENCE_NOTE,
            table,
            "inference",
            bullets=tuple(break_even_lines(studies)),
        )
    ]
