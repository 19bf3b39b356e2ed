"""Compare studies in one report: `python -m analysis.report STUDY_DIR [STUDY_DIR ...] --out DIR`.

Writes `report.html` (self-contained: plots embedded as base64 PNG), `report.md`,
`summary.parquet` and `summary.csv` (one row per strategy, see `analysis.summary.strategy_summary`)
into `--out`, and prints their paths. Bad input exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import base64
import html
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from analysis import plots
from analysis.load import Study, StudyLoadError, load_studies, mismatches
from analysis.summary import (
    BEST_CONFIG,
    BEST_SEED,
    BUDGET_AMOUNT,
    BUDGET_OVERSHOOT,
    BUDGET_SPENT,
    BUDGET_UNIT,
    CLUSTER_CO2,
    CLUSTER_CO2_TO_TARGET_KG,
    CLUSTER_COMPONENTS,
    CLUSTER_COST,
    CLUSTER_COST_TO_TARGET_USD,
    CLUSTER_ENERGY_BASIS,
    CLUSTER_ENERGY_CPU_KWH,
    CLUSTER_ENERGY_GPU_KWH,
    CLUSTER_ENERGY_HIGH_KWH,
    CLUSTER_ENERGY_KWH,
    CLUSTER_ENERGY_LOW_KWH,
    CLUSTER_ENERGY_RAM_KWH,
    CLUSTER_ENERGY_TO_TARGET_KWH,
    CLUSTER_FIGURES,
    CLUSTER_METERED_SEEDS,
    CO2_LB,
    COST_TO_TARGET_USD,
    CPU_BASIS,
    DEVICE_H,
    EMBODIED_KG,
    ENERGY_COMPONENTS,
    ENERGY_CPU_KWH,
    ENERGY_ESTIMATED_KWH,
    ENERGY_GPU_KWH,
    ENERGY_HIGH_KWH,
    ENERGY_KWH,
    ENERGY_LOW_KWH,
    ENERGY_MEASURED_KWH,
    ENERGY_MEASURED_SHARE,
    ENERGY_RAM_KWH,
    ENERGY_TO_TARGET_KWH,
    MARKET_CO2_KG,
    MODEL,
    N_RUNNING,
    N_SEEDS,
    NOT_MEASURED,
    OVERHEAD_ENERGY_KWH,
    OVERHEAD_SHARE,
    SCI_KG,
    SCI_PER_1000_SUMMARIES_KG,
    STARTUP_S,
    TARGET_REACHED_SEEDS,
    TEST_ROUGE,
    TEST_ROUGEL,
    TEST_ROUGEL_HIGH,
    TEST_ROUGEL_LOW,
    TIME_TO_TARGET_S,
    TRIALS_ERRORED,
    TRIALS_FINISHED,
    TRIALS_STARTED,
    TRIALS_STOPPED_BUDGET,
    TRIALS_STOPPED_EARLY,
    VS_GRID_SUFFIX,
    WALL_S,
    X_CLUSTER_ENERGY_KWH,
    X_COST_USD,
    X_ENERGY_KWH,
    X_WALL_S,
    cluster_energy_figures,
    common_baseline,
    default_target,
    default_target_rule,
    per_study_summary,
    strategy_summary,
    study_baseline,
    what_if_region,
)
from analysis.verdict import verdicts
from core.measurement import ENERGY_PARTS
from core.schema import (
    BEST_PREFIX,
    CO2_KG,
    COST_USD,
    ROUGE1,
    ROUGE2,
    ROUGEL,
    ROUGELSUM,
    STRATEGY,
    TRIAL_EPOCHS,
)

OUTPUTS = ("report.html", "report.md", "summary.parquet", "summary.csv")
VERDICT_NOTE = (
    "Winner per objective and its margin over the runner-up: the mean paired difference over the "
    "seeds both strategies ran (compare gives every strategy the same seeds), with a 95 % "
    "bootstrap interval; where it holds zero the strategies do not differ at 95 %. The target is "
    "a validation ROUGE-L; test ROUGE-L is the selected model (best validation report) scored once "
    "on the held-out split."
)
STATISTICS_NOTE = (
    "Mean over seeds with its 95 % percentile-bootstrap interval (4000 resamples) and the "
    "interquartile mean (the mean of the middle half of the seeds), as HPO benchmarks report them; "
    "to-target figures over the seeds that reached the target."
)
BENCHMARK_NOTE = (
    "Performance: test ROUGE-L of the selected model, mean over seeds [95 % interval: over seeds, "
    "or over the test examples with one seed]. Resource usage, carbon and cost: the whole cluster "
    "from study start to end (the cluster meter: idle, start-up, drivers and the final test "
    "evaluation included), then the trials' own meters; 'estimated' marks parts from a stated "
    "model rather than a counter; (x grid) is the ratio of means to grid's."
)
NOT_APPLICABLE = "not applicable"
ENERGY_PLOT = "Energy breakdown"
ENERGY_HEAD = "Energy: whole cluster vs the trials' own meters"
TEST_PREFIX_R1, TEST_PREFIX_R2, _, TEST_PREFIX_RLSUM = TEST_ROUGE


# --------------------------------------------------------------------------------------------
# Formatting


def _num(v: float, digits: int = 3) -> str:
    """Fixed decimals (ROUGE, counts)."""
    if v is None or not math.isfinite(float(v)):
        return "–"
    return f"{float(v):,.{digits}f}"


def _sig(v: float, n: int = 3) -> str:
    """n significant digits, no exponent: 0.000972, 0.321, 12.3, 1,234 (physical quantities whose
    scale runs from a CPU smoke run to a GPU cluster)."""
    if v is None or not math.isfinite(float(v)):
        return "–"
    v = float(v)
    if v == 0:
        return "0"
    decimals = max(0, n - 1 - math.floor(math.log10(abs(v))))
    return f"{v:,.{decimals}f}"


def _usd(v: float) -> str:
    if v is None or not math.isfinite(float(v)):
        return NOT_APPLICABLE
    return f"${v:,.2f}" if abs(v) >= 0.01 or v == 0 else f"${_sig(v, 2)}"


def _hours(s: float) -> str:
    return "–" if not math.isfinite(s) else f"{_sig(s / 3600)} h"


def _pct(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v:.0%}"


def _count(v: float) -> str:
    return _num(v, 0) if math.isfinite(v) and float(v).is_integer() else _num(v, 1)


def _sig4(v: float) -> str:
    return _sig(v, 4)


def _rouge(v: float) -> str:
    return _num(v, 4)


def _to_hours(v: float) -> str:
    return _sig(v / 3600, 3)


# figure -> (label with unit, formatter of one value)
_FIGURES: dict[str, tuple[str, Callable[[float], str]]] = {
    TRIALS_STARTED: ("trials started", _count),
    TRIALS_STOPPED_EARLY: ("trials stopped early (scheduler / early stopping)", _count),
    TRIALS_FINISHED: ("trials finished (full budget)", _count),
    TRIALS_ERRORED: ("trials errored", _count),
    TRIALS_STOPPED_BUDGET: ("trials stopped by the study budget", _count),
    TRIAL_EPOCHS: ("trial-epochs trained", _sig4),
    DEVICE_H: ("device time (device-hours)", _sig4),
    ENERGY_KWH: ("energy, total (kWh)", _sig4),
    ENERGY_GPU_KWH: ("energy, GPU (kWh)", _sig4),
    ENERGY_CPU_KWH: ("energy, CPU (kWh)", _sig4),
    ENERGY_RAM_KWH: ("energy, RAM (kWh)", _sig4),
    ENERGY_MEASURED_KWH: ("energy measured: counter / power integral (kWh)", _sig4),
    ENERGY_ESTIMATED_KWH: ("energy estimated (kWh)", _sig4),
    ENERGY_MEASURED_SHARE: ("measured share of energy", _pct),
    ENERGY_LOW_KWH: ("trials' energy, estimated parts at -50 % (kWh)", _sig4),
    ENERGY_HIGH_KWH: ("trials' energy, estimated parts at +50 % (kWh)", _sig4),
    CLUSTER_ENERGY_KWH: ("whole-cluster energy, study start to end (kWh)", _sig4),
    CLUSTER_ENERGY_LOW_KWH: ("whole-cluster energy, estimated parts at -50 % (kWh)", _sig4),
    CLUSTER_ENERGY_HIGH_KWH: ("whole-cluster energy, estimated parts at +50 % (kWh)", _sig4),
    CLUSTER_ENERGY_GPU_KWH: ("whole-cluster energy, GPU (kWh)", _sig4),
    CLUSTER_ENERGY_CPU_KWH: ("whole-cluster energy, CPU (kWh)", _sig4),
    CLUSTER_ENERGY_RAM_KWH: ("whole-cluster energy, RAM (kWh)", _sig4),
    OVERHEAD_ENERGY_KWH: ("overhead: whole cluster − trials (kWh)", _sig4),
    OVERHEAD_SHARE: ("overhead share of the whole-cluster energy", _pct),
    CO2_KG: ("CO2e (kg)", _sig4),
    CO2_LB: ("CO2e (lb)", _sig4),
    COST_USD: ("cost attributed to the trials (USD)", _usd),
    CLUSTER_CO2: ("whole-cluster CO2e (kg)", _sig4),
    CLUSTER_COST: ("whole-cluster cost, billed (USD)", _usd),
    MARKET_CO2_KG: ("CO2e, market-based (kg; energy.market_intensity_g_per_kwh)", _sig4),
    EMBODIED_KG: ("embodied CO2e of the VMs held (kg; Scope 3, not in the CO2e above)", _sig4),
    SCI_KG: ("SCI per tuned model: whole-cluster CO2e + embodied (kg)", _sig4),
    SCI_PER_1000_SUMMARIES_KG: ("SCI per 1,000 test summaries, operational (kg)", _sig4),
    TEST_PREFIX_R1: ("test ROUGE-1 (selected model, held-out split)", _rouge),
    TEST_PREFIX_R2: ("test ROUGE-2 (selected model, held-out split)", _rouge),
    TEST_ROUGEL: ("test ROUGE-L (selected model, held-out split)", _rouge),
    TEST_PREFIX_RLSUM: ("test ROUGE-Lsum (selected model, held-out split)", _rouge),
    BEST_PREFIX + ROUGE1: ("best validation ROUGE-1 (selection-biased)", _rouge),
    BEST_PREFIX + ROUGE2: ("best validation ROUGE-2 (selection-biased)", _rouge),
    BEST_PREFIX + ROUGEL: ("best validation ROUGE-L (selection-biased)", _rouge),
    BEST_PREFIX + ROUGELSUM: ("best validation ROUGE-Lsum (selection-biased)", _rouge),
    BUDGET_AMOUNT: ("budget (in its unit)", _sig4),
    BUDGET_SPENT: ("budget spent (in its unit)", _sig4),
    BUDGET_OVERSHOOT: ("budget overshoot (spent - budget)", _sig4),
    WALL_S: ("wall time (h)", _to_hours),
    STARTUP_S: ("trial start-up: segment launch + setup (h)", _to_hours),
    TIME_TO_TARGET_S: ("time to target (h)", _to_hours),
    ENERGY_TO_TARGET_KWH: ("energy to target (kWh)", _sig4),
    COST_TO_TARGET_USD: ("cost to target, attributed to the trials (USD)", _usd),
    CLUSTER_ENERGY_TO_TARGET_KWH: ("whole-cluster energy to target (kWh)", _sig4),
    CLUSTER_CO2_TO_TARGET_KG: ("whole-cluster CO2e to target (kg)", _sig4),
    CLUSTER_COST_TO_TARGET_USD: ("whole-cluster cost to target, billed (USD)", _usd),
}


_TO_TARGET = (
    TIME_TO_TARGET_S,
    ENERGY_TO_TARGET_KWH,
    COST_TO_TARGET_USD,
    CLUSTER_ENERGY_TO_TARGET_KWH,
    CLUSTER_CO2_TO_TARGET_KG,
    CLUSTER_COST_TO_TARGET_USD,
)
_CLUSTER_PARTS = {kwh: comp for comp, (_, _, _, kwh) in CLUSTER_COMPONENTS.items()}


def _cell(row: pd.Series, fig: str) -> str:
    """mean ± std [min – max] (n seeds), as text; whole-cluster figures say `estimated` where
    they are, and `not measured` where no seed has them."""
    fmt = _FIGURES[fig][1]
    mean, sd = row[f"{fig}_mean"], row[f"{fig}_std"]
    lo, hi = row[f"{fig}_min"], row[f"{fig}_max"]
    if not math.isfinite(mean):
        if fig in _TO_TARGET and row[TARGET_REACHED_SEEDS] == 0:
            return "not reached"
        if fig in CLUSTER_FIGURES:
            return NOT_MEASURED
        if fig == STARTUP_S:
            return "not recorded"
        return fmt(mean)
    text = fmt(mean)
    if math.isfinite(sd):
        text += f" ± {_like(sd, text, fmt)}"
    if fig in CLUSTER_FIGURES:
        text += _cluster_label(row, fig)
    if row[N_SEEDS] > 1 and lo != hi:
        text += f"\n[{fmt(lo)} – {fmt(hi)}]"  # a line break in HTML, a space in Markdown
    return text


def _cluster_label(row: pd.Series, fig: str) -> str:
    """` (estimated)` on an estimated part or an all-estimated total, ` (CPU, RAM estimated)` on a
    total with some parts estimated; ` (1/2 seeds)` where only some seeds were metered."""
    label = ""
    if fig in _CLUSTER_PARTS:
        source = str(row.get(f"cluster_energy_{_CLUSTER_PARTS[fig]}_source", ""))
        if "estimated" in source:
            label = " (estimated)"
    else:
        basis = str(row.get(CLUSTER_ENERGY_BASIS, ""))
        if basis == "estimated":
            label = " (estimated)"
        elif basis.startswith("estimated: "):
            label = f" ({basis.removeprefix('estimated: ')} estimated)"
    metered, n = int(row.get(CLUSTER_METERED_SEEDS, 0)), int(row[N_SEEDS])
    if 0 < metered < n:
        label += f" ({metered}/{n} seeds)"
    return label


def _like(sd: float, mean_text: str, fmt: Callable[[float], str]) -> str:
    """The spread with as many decimals as its mean shows (0.8032 ± 0.0015, not ± 0.001456)."""
    if fmt in (_pct, _usd, _count):
        return fmt(sd).lstrip("$")
    digits = mean_text.replace(",", "").partition(".")[2]
    return f"{sd / 3600 if fmt is _to_hours else sd:,.{len(digits)}f}"


def _ratio(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v:.2f}×"


def _vs_grid(r: pd.Series, fig: str, has_grid: bool) -> str:
    if not has_grid or r[STRATEGY] == "grid":
        return ""
    ratio = r[fig + VS_GRID_SUFFIX]
    return f" ({_ratio(ratio)} grid)" if math.isfinite(ratio) else ""


def _interval(lo: float, hi: float, fmt: Callable[[float], str]) -> str:
    return f" [{fmt(lo)} – {fmt(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else ""


def _range(r: pd.Series, low_fig: str, high_fig: str) -> str:
    """` (range a – b)` where estimated parts widen a figure (their stated band), else ''."""
    low, high = r[f"{low_fig}_mean"], r[f"{high_fig}_mean"]
    if not (math.isfinite(low) and math.isfinite(high)) or math.isclose(low, high):
        return ""
    return f" (range {_sig(low)} – {_sig(high)})"


def benchmark_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The headline table: Model | Performance | Speed | Resource Usage | Carbon Emission | Cost ($),
    one row per strategy, every cell a mean over seeds. Performance is the selected model's test
    ROUGE-L with its 95 % interval; energy, CO2 and dollars are the whole cluster's (what was
    spent, overhead included), the trials' own meters beside them; every ratio to grid on both."""
    has_grid = (summary[STRATEGY] == "grid").any()
    rows = []
    for _, r in summary.iterrows():

        def vs(fig: str, r: pd.Series = r) -> str:
            return _vs_grid(r, fig, has_grid)

        n = int(r[N_SEEDS])
        seeds = f"{n} seed{'s' if n != 1 else ''}"
        seeds += f", {r[N_RUNNING]} running" if r[N_RUNNING] else ""
        mean = {fig: r[f"{fig}_mean"] for fig in _FIGURES}
        test = mean[TEST_ROUGEL]
        if math.isfinite(test):
            perf = (
                f"test ROUGE-L {_rouge(test)}{_interval(r[TEST_ROUGEL_LOW], r[TEST_ROUGEL_HIGH], _rouge)}"
                f"{vs(TEST_ROUGEL)} (R-1 {_rouge(mean[TEST_PREFIX_R1])}, R-2 {_rouge(mean[TEST_PREFIX_R2])}, "
                f"R-Lsum {_rouge(mean[TEST_PREFIX_RLSUM])}); validation best "
                f"{_rouge(mean[BEST_PREFIX + ROUGEL])}"
            )
        else:
            perf = f"not scored on test; validation best ROUGE-L {_rouge(mean[BEST_PREFIX + ROUGEL])} (selection-biased)"
        reached = int(r[TARGET_REACHED_SEEDS])
        to_target = "target not reached"
        if reached:
            to_target = (
                f"target in {_hours(mean[TIME_TO_TARGET_S])} ({reached}/{n} seeds)"
                f"{vs(TIME_TO_TARGET_S)}"
            )
        speed = f"wall {_hours(mean[WALL_S])}; {to_target}"
        cluster = mean[CLUSTER_ENERGY_KWH]
        label = _cluster_label(r, CLUSTER_ENERGY_KWH)
        whole = (
            f"whole cluster {_sig(cluster)} kWh{label}{_range(r, CLUSTER_ENERGY_LOW_KWH, CLUSTER_ENERGY_HIGH_KWH)}"
            f"{vs(CLUSTER_ENERGY_KWH)}"
            if math.isfinite(cluster)
            else "whole cluster not measured"
        )
        budget = ""
        if math.isfinite(mean[BUDGET_SPENT]):
            budget = (
                f"; budget spent {_sig(mean[BUDGET_SPENT])} of {_sig(mean[BUDGET_AMOUNT])} "
                f"{r[BUDGET_UNIT]}"
            )
        resources = (
            f"{whole}; trials' own {_sig(mean[ENERGY_KWH])} kWh{_range(r, ENERGY_LOW_KWH, ENERGY_HIGH_KWH)}{vs(ENERGY_KWH)} "
            f"({_pct(mean[ENERGY_MEASURED_SHARE])} measured); {_sig(mean[DEVICE_H])} device-h; "
            f"{_sig(mean[TRIAL_EPOCHS])} trial-epochs{budget}"
        )
        cluster_co2 = mean[CLUSTER_CO2]
        carbon = (
            f"whole cluster {_sig(cluster_co2)} kg CO2e ({_sig(cluster_co2 * 2.20462)} lb)"
            f"{vs(CLUSTER_CO2)}; "
            if math.isfinite(cluster_co2)
            else "whole cluster not measured; "
        )
        carbon += f"trials' own {_sig(mean[CO2_KG])} kg{vs(CO2_KG)}"
        billed, cost = mean[CLUSTER_COST], mean[COST_USD]
        cost_text = f"billed {_usd(billed)}{vs(CLUSTER_COST)}; " if math.isfinite(billed) else ""
        cost_text += (
            f"trials' share {_usd(cost)}{vs(COST_USD)}" if math.isfinite(cost) else NOT_APPLICABLE
        )
        rows.append(
            {
                "Model": f"{r[MODEL]} · {r[STRATEGY]} ({seeds})",
                "Performance": perf,
                "Speed": speed,
                "Resource Usage": resources,
                "Carbon Emission": carbon,
                "Cost ($)": cost_text,
            }
        )
    return pd.DataFrame(rows)


def figures_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Rows: figures (with units); columns: strategies; cells: mean ± std [min – max]."""
    data = {"figure": [label for label, _ in _FIGURES.values()]}
    for _, r in summary.iterrows():
        data[r[STRATEGY]] = [_cell(r, fig) for fig in _FIGURES]
    return pd.DataFrame(data)


def ratios_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Every figure's mean as a ratio to grid's mean (× grid)."""
    data = {"figure": [label for label, _ in _FIGURES.values()]}
    for _, r in summary.iterrows():
        data[r[STRATEGY]] = [_ratio(r[fig + VS_GRID_SUFFIX]) for fig in _FIGURES]
    return pd.DataFrame(data)


ENERGY_TABLE_COLUMNS = {  # column -> figure
    "trials' own meters (kWh)": ENERGY_KWH,
    "whole cluster (kWh)": CLUSTER_ENERGY_KWH,
    "cluster GPU (kWh)": CLUSTER_ENERGY_GPU_KWH,
    "cluster CPU (kWh)": CLUSTER_ENERGY_CPU_KWH,
    "cluster RAM (kWh)": CLUSTER_ENERGY_RAM_KWH,
    "overhead: cluster − trials (kWh)": OVERHEAD_ENERGY_KWH,
    "overhead share of cluster": OVERHEAD_SHARE,
}


def energy_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: the trials' own meters beside the whole cluster's energy (study start to end,
    GPU / CPU / RAM) and the overhead between them, in kWh and as a share of the cluster; each cell
    mean ± std [min – max] over the seeds that have it; `not measured` where none has it."""
    rows = []
    for _, r in summary.iterrows():
        row = {
            "strategy": r[STRATEGY],
            "seeds metered": f"{int(r[CLUSTER_METERED_SEEDS])}/{int(r[N_SEEDS])}",
        }
        row.update({col: _cell(r, fig) for col, fig in ENERGY_TABLE_COLUMNS.items()})
        basis = str(r[CLUSTER_ENERGY_BASIS])
        if basis != NOT_MEASURED:
            basis += (
                " ("
                + ", ".join(
                    f"{comp.upper()}: {r[f'cluster_energy_{comp}_source']}"
                    for comp in CLUSTER_COMPONENTS
                )
                + ")"
            )
        row["basis"] = basis
        rows.append(row)
    return pd.DataFrame(rows)


def baseline_line(studies: Sequence[Study], summary: pd.DataFrame) -> str | None:
    """One line: the lead-k baseline (the floor a model must beat) and each strategy's best ROUGE-L
    above it; None where no study holds a baseline."""
    floor = common_baseline(studies, ROUGEL)
    if floor is None:
        return None
    found = [b for s in studies if (b := study_baseline(s.metadata)) is not None]
    scores = {
        r: sum(b[r] for b in found) / len(found)
        if all(math.isfinite(b[r]) for b in found)
        else math.nan
        for r in (ROUGE1, ROUGE2, ROUGELSUM)
    }
    text = (
        f"Floor: the {floor['label']} (extractive, on the validation set) scores ROUGE-L "
        f"{_rouge(floor['value'])} (R-1 {_rouge(scores[ROUGE1])}, R-2 {_rouge(scores[ROUGE2])}, "
        f"R-Lsum {_rouge(scores[ROUGELSUM])})"
    )
    spread = []
    if floor["n"] < len(studies):
        spread.append(f"mean of the {floor['n']} of {len(studies)} studies that hold one")
    if floor["low"] != floor["high"]:
        spread.append(f"{_rouge(floor['low'])} – {_rouge(floor['high'])} over studies")
    if spread:
        text += " (" + "; ".join(spread) + ")"
    margins = []
    for _, r in summary.iterrows():
        best = r[BEST_PREFIX + ROUGEL + "_mean"]
        if math.isfinite(best):
            gap = best - floor["value"]
            margins.append(f"{r[STRATEGY]} {gap:+.4f}" + (" (below the floor)" if gap < 0 else ""))
    if margins:
        text += ". Best ROUGE-L minus the baseline: " + ", ".join(margins)
    return text + "."


def _cluster_cell(s: Study) -> str:
    fig = cluster_energy_figures(s.metadata)
    if not math.isfinite(fig[CLUSTER_ENERGY_KWH]):
        return NOT_MEASURED
    nodes = fig["cluster_nodes"]
    return (
        f"{_sig4(fig[CLUSTER_ENERGY_KWH])} kWh on {nodes} node{'s' if nodes != 1 else ''}, "
        f"{_pct(fig[OVERHEAD_SHARE])} overhead ({fig[CLUSTER_ENERGY_BASIS]})"
    )


def studies_table(studies: Sequence[Study]) -> pd.DataFrame:
    rows = []
    for s in studies:
        fp = s.footprint
        slots, ray_init = s.metadata.concurrent_trials, s.metadata.ray_init_s
        rows.append(
            {
                "study": s.name,
                "strategy": s.strategy,
                "seed": s.seed,
                "state": "RUNNING (partial)" if s.running else "finished",
                "trials": len(s.trials),
                "reports": len(s.reports),
                "slots": slots if slots is not None else "–",
                "wall": _hours(s.wall_s),
                "Ray start-up": f"{_sig(ray_init)} s" if ray_init is not None else "–",
                "whole-cluster energy": _cluster_cell(s),
                "budget: spent / amount": _budget_cell(s),
                "test ROUGE-L [95 % CI over examples]": _test_cell(s),
                "grid intensity": _intensity_cell(fp),
            }
        )
    return pd.DataFrame(rows)


def _budget_cell(s: Study) -> str:
    b = s.metadata.section("budget")
    if b.get("spent") is None:
        return "not recorded"
    over = b.get("overshoot")
    return (
        f"{_sig4(b['spent'])} / {_sig4(b['amount'])} {b['unit']}"
        + (f" ({over:+.3g})" if isinstance(over, (int, float)) else "")
        + (" - stopped on it" if b.get("stopped") else "")
    )


def _test_cell(s: Study) -> str:
    t = s.metadata.section("test")
    if not t.get("evaluated"):
        return "not scored" + (f" ({t['why']})" if t.get("why") else "")
    low, high = t.get("rougeL_ci95") or (math.nan, math.nan)
    return f"{_rouge(t['rougeL'])} [{_rouge(low)} – {_rouge(high)}], n={t['n']}"


def carbon_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: CO2 by scope and method, the SCI per functional unit, how the CPU was
    estimated; `not available` where a figure has no source (a local machine, a size without a
    dated embodied row, no market factor given)."""
    rows = []
    for _, r in summary.iterrows():

        def cell(fig: str, r: pd.Series = r) -> str:
            v = r[f"{fig}_mean"]
            return _sig4(v) if math.isfinite(v) else "not available"

        rows.append(
            {
                "strategy": r[STRATEGY],
                "CO2e, location-based, whole cluster (kg)": cell(CLUSTER_CO2),
                "CO2e, market-based (kg)": cell(MARKET_CO2_KG),
                "embodied CO2e, Scope 3 (kg)": cell(EMBODIED_KG),
                "SCI per tuned model (kg)": cell(SCI_KG),
                "SCI per 1,000 summaries (kg)": cell(SCI_PER_1000_SUMMARIES_KG),
                "CPU estimate basis": r[CPU_BASIS] or "not recorded",
            }
        )
    return pd.DataFrame(rows)


CARBON_NOTE = (
    "Operational CO2e is location-based (the grid's average intensity, GHG Protocol Scope 2); a "
    "market-based figure appears where energy.market_intensity_g_per_kwh was given. Embodied "
    "emissions (the VMs' manufacturing share for the time held, Cloud Carbon Footprint's method) "
    "are Scope 3 and shown beside, never added to the CO2e columns. SCI = (E x I + M) / R "
    "(ISO/IEC 21031:2024), R one tuned model (the whole search) or 1,000 summaries of the held-out "
    "split; without M it is operational only, a lower bound. Estimated energy parts carry +-50 %, "
    "the order of the errors wall-meter comparisons report (Jay et al., CCGrid 2023)."
)


# The figures a reader of an HPO benchmark looks for, with their statistics over seeds
STATISTICS_FIGURES = (
    TEST_ROUGEL,
    CLUSTER_ENERGY_TO_TARGET_KWH,
    CLUSTER_CO2_TO_TARGET_KG,
    CLUSTER_COST_TO_TARGET_USD,
    BUDGET_SPENT,
)


def statistics_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per strategy and figure: mean with its 95 % bootstrap interval over seeds, the interquartile
    mean, and the number of seeds with the figure (Syne Tune's benchmarking statistics)."""
    rows = []
    for _, r in summary.iterrows():
        for fig in STATISTICS_FIGURES:
            label, fmt = _FIGURES[fig]
            mean = r[f"{fig}_mean"]
            if not math.isfinite(mean):
                continue
            lo, hi = r[f"{fig}_ci_low"], r[f"{fig}_ci_high"]
            rows.append(
                {
                    "strategy": r[STRATEGY],
                    "figure": label,
                    "mean": fmt(mean),
                    "95 % CI over seeds": f"{fmt(lo)} – {fmt(hi)}"
                    if math.isfinite(lo)
                    else "one seed: –",
                    "IQM": fmt(r[f"{fig}_iqm"]),
                    "seeds": int(r[N_SEEDS]),
                }
            )
    return pd.DataFrame(
        rows, columns=["strategy", "figure", "mean", "95 % CI over seeds", "IQM", "seeds"]
    )


def _intensity_cell(fp: dict) -> str:
    hourly = fp.get("hourly_intensity")
    if hourly:
        return f"hourly, {hourly['source']} ({hourly['zone']}, {hourly['basis']}), PUE {fp.get('pue', '?')}"
    if fp.get("intensity_g_per_kwh") is not None:
        return f"{fp['intensity_g_per_kwh']} gCO2e/kWh ({fp.get('region', '?')}), PUE {fp.get('pue', '?')}"
    return "not recorded"


# --------------------------------------------------------------------------------------------
# Rendering


def _md_table(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for _, row in df.iterrows():
        cells = (str(v).replace("|", "\\|").replace("\n", " ") for v in row)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _html_table(df: pd.DataFrame, cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{html.escape(str(v)).replace(chr(10), '<br>')}</td>" for v in row)
        + "</tr>"
        for _, row in df.iterrows()
    )
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


_CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0 auto;
       max-width: 1240px; padding: 16px 20px 40px; color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 20px; margin-top: 34px;
     border-bottom: 1px solid #ddd; padding-bottom: 4px; }
table { border-collapse: collapse; margin: 10px 0; font-size: 14px; width: 100%; }
th, td { border: 1px solid #d4d4d4; padding: 5px 8px; text-align: left; vertical-align: top; }
th { background: #f2f4f7; } tr:nth-child(even) td { background: #fafafa; }
table.figures td:first-child, table.ratios td:first-child { width: 24%; }
.warn { background: #fff4ce; border: 1px solid #e0c060; padding: 8px 12px; border-radius: 4px; }
.note { color: #555; font-size: 14px; } .plot { margin: 14px 0 22px; }
.plot img { width: 100%; max-width: 1200px; height: auto; border: 1px solid #eee; }
code { background: #f2f2f2; padding: 1px 4px; border-radius: 3px; }
.floor { background: #f2f4f7; border-left: 4px solid #6b6b6b; padding: 6px 12px; }
h3 { font-size: 17px; margin-top: 18px; }
"""


def _plots(
    studies: Sequence[Study], summary: pd.DataFrame, target: float
) -> list[tuple[str, str, bytes | None]]:
    """(title, caption or note, png or None) in report order."""
    out: list[tuple[str, str, bytes | None]] = []

    def add(title: str, caption: str, make: Callable[[], object]) -> None:
        out.append((title, caption, plots.figure_png(make())))

    floor = common_baseline(studies, ROUGEL)
    floor_text = f" Gray dashed: the {floor['label']}, the floor." if floor else ""
    band = "ci95" if min(summary[N_SEEDS]) >= 3 else "minmax"
    band_text = (
        "95 % bootstrap interval of the mean over seeds" if band == "ci95" else "min–max over seeds"
    )
    add(
        "Best validation ROUGE-L so far vs whole-cluster energy",
        f"Line: mean over seeds; band: {band_text}; black dashed: target. The x axis is the whole "
        "cluster's energy when each report arrived (the cluster meter, interpolated between its "
        "polls)." + floor_text,
        lambda: plots.plot_best_so_far(studies, x=X_CLUSTER_ENERGY_KWH, target=target, band=band),
    )
    add(
        "Best validation ROUGE-L so far vs the trials' own energy",
        f"Line: mean over seeds; band: {band_text}; black dashed: target." + floor_text,
        lambda: plots.plot_best_so_far(studies, x=X_ENERGY_KWH, target=target, band=band),
    )
    has_cost = any(s.reports.get(COST_USD, pd.Series(dtype=float)).notna().any() for s in studies)
    if has_cost:
        add(
            "Best ROUGE-L so far vs dollars",
            "Attributed cost: device-hours × per-device share of the VM price." + floor_text,
            lambda: plots.plot_best_so_far(studies, x=X_COST_USD, target=target),
        )
    else:
        out.append(
            (
                "Best ROUGE-L so far vs dollars",
                "Skipped: cost is not applicable (no study recorded a VM price, e.g. a local machine).",
                None,
            )
        )
    add(
        "Best ROUGE-L so far vs wall time",
        "Study elapsed time since the study started." + floor_text,
        lambda: plots.plot_best_so_far(studies, x=X_WALL_S, target=target),
    )
    add(
        "Trials: ROUGE-L vs energy",
        "Each point is a trial (its best ROUGE-L, the energy it used); "
        "the black steps join the trials no other trial beats on both.",
        lambda: plots.plot_trials_pareto(studies),
    )
    first_seed = {}
    for s in sorted(studies, key=lambda s: s.seed):
        first_seed.setdefault(s.strategy, s)
    timeline = [first_seed[k] for k in summary[STRATEGY] if k in first_seed]
    add(
        "Trial timeline",
        "The lowest seed of each strategy. Dark bars: a trial's first to last report; light: its "
        "train + eval time before the first report (where recorded). Trials are packed into slots "
        "(lanes running at once).",
        lambda: plots.plot_trial_timeline(timeline),
    )
    add(
        ENERGY_PLOT,
        "Bars: the trials' own meters; hatched: estimated, not measured; error bar: min–max of "
        "the trials' total over seeds. Dashed outline: the whole cluster from study start to end "
        "(idle and start-up included), where recorded; above it the overhead's share of it.",
        lambda: plots.plot_energy_breakdown(summary),
    )
    return out


def _notes(
    studies: Sequence[Study], summary: pd.DataFrame, target: float, target_given: bool
) -> list[str]:
    notes = []
    how = "given with --target-rougeL" if target_given else default_target_rule(studies)
    notes.append(
        f"Target ROUGE-L = {target:.4f} ({how}). Time, energy and dollars to target are means over the seeds that reached it."
    )
    notes.append(
        "ROUGE scores are F-measures in [0, 1]; best = the report with the best search metric, and its config."
    )
    sources = []
    for _, r in summary.iterrows():
        parts = [f"{c.upper()}: {r[f'energy_{c}_source']}" for c in ENERGY_COMPONENTS]
        sources.append(f"{r[STRATEGY]} ({', '.join(parts)})")
    notes.append(
        "Energy sources — counter / power_integral are measured, estimated is a stated model: "
        + "; ".join(sources)
        + "."
    )
    notes.append(_cluster_note(studies, summary))
    coverage = _coverage_note(studies)
    if coverage:
        notes.append(coverage)
    if not summary[COST_USD + "_mean"].notna().any():
        notes.append("Cost: not applicable (no VM price recorded).")
    if not (summary[STRATEGY] == "grid").any():
        notes.append("No grid study given: ratios to grid are not available.")
    std_one = summary[summary[N_SEEDS] < 2][STRATEGY].tolist()
    if std_one:
        notes.append("One seed only (no spread): " + ", ".join(std_one) + ".")
    return notes


def _coverage_note(studies: Sequence[Study]) -> str | None:
    """Where some device reads failed: how much of each part was measured (a lower bound)."""
    gaps = []
    for s in studies:
        for part in ENERGY_PARTS:
            col = f"energy_{part}_coverage"
            if col in s.reports.columns:
                last = s.reports.groupby("trial_id")[col].last().astype(float).dropna()
                if len(last) and last.min() < 1:
                    gaps.append(f"{s.name} {part.upper()} {last.min():.0%}")
    if not gaps:
        return None
    return (
        "Partly measured (some device reads failed; the figure is a lower bound, source "
        "'partial'), lowest trial coverage: " + ", ".join(gaps) + "."
    )


def _cluster_note(studies: Sequence[Study], summary: pd.DataFrame) -> str:
    metered = int(summary[CLUSTER_METERED_SEEDS].sum())
    if not metered:
        return (
            "Whole-cluster energy: not measured (no study's metadata.json holds cluster_energy); "
            "the energy figures are the trials' own meters only."
        )
    extra = {
        str(s.metadata.section("cluster_energy").get("note"))
        for s in studies
        if s.metadata.section("cluster_energy").get("note")
    }
    text = (
        f"Whole-cluster energy ({metered} of {len(studies)} studies): every node's GPUs by NVML "
        "counter (each GPU once, by UUID), CPU estimated (watts per busy thread: the node's VM "
        "share of its host package, or CodeCarbon's 4 W per thread, x the machine's busy "
        "CPU-seconds; one count per host), RAM estimated (3 W per 8 GiB in use), from study start "
        "to end, idle time, start-up, checkpoints and "
        "the Tune driver included; overhead = whole cluster − the sum of the trials' own meters, "
        "its share = overhead / whole cluster"
    )
    if extra:
        text += " (" + "; ".join(sorted(extra)) + ")"
    return text + "."


def render(
    studies: Sequence[Study],
    summary: pd.DataFrame,
    target: float,
    target_given: bool,
    what_if: pd.DataFrame | None,
    allowed_mismatch: bool = False,
) -> tuple[str, str]:
    """The report as (html, markdown)."""
    running = [s for s in studies if s.running]
    verdict_lines = [
        v.sentence for v in verdicts(studies, per_study_summary(studies, target), target)
    ]
    differing = mismatches(list(studies))
    mismatch = (
        "MISMATCHED COMPARISON (--allow-mismatch): these studies differ in "
        + "; ".join(m.describe() for m in differing)
        + ". Their figures are not comparable as a fair benchmark."
        if differing
        else ""
    )
    bench = benchmark_table(summary)
    figs = figures_table(summary)
    stats = statistics_table(summary)
    carbon = carbon_table(summary)
    has_grid = (summary[STRATEGY] == "grid").any()
    ratios = ratios_table(summary) if has_grid else None
    winners = pd.DataFrame(
        {
            "strategy": summary[STRATEGY],
            "best ROUGE-L": [_num(v, 4) for v in summary[BEST_PREFIX + ROUGEL + "_max"]],
            "seed": summary[BEST_SEED],
            "config": summary[BEST_CONFIG],
        }
    )
    notes = _notes(studies, summary, target, target_given)
    energy = energy_table(summary)
    energy_note = (
        "Mean ± std [min – max] over the seeds that have each figure; 'estimated' marks a part "
        "computed from a stated model rather than a counter; 'not measured' where no seed "
        "recorded it."
    )
    floor = baseline_line(studies, summary)
    dataset = studies[0].dataset
    title = f"greentune: {len(summary)} strategies on {dataset} ({studies[0].metric}, {len(studies)} studies)"
    partial = (
        "PARTIAL: still running, figures so far: " + ", ".join(s.name for s in running)
        if running
        else ""
    )
    wi = None
    if what_if is not None:
        wi = pd.DataFrame(
            {
                "strategy": what_if[STRATEGY],
                "energy (kWh)": [_sig4(v) for v in what_if["energy_kwh_mean"]],
                "actual CO2e (kg)": [_sig4(v) for v in what_if["actual_co2_kg_mean"]],
                "COUNTERFACTUAL CO2e (kg)": [_sig4(v) for v in what_if["what_if_co2_kg_mean"]],
                "COUNTERFACTUAL CO2e (lb)": [_sig4(v) for v in what_if["what_if_co2_lb_mean"]],
                "PUE": what_if["pue"],
            }
        )
        wi_head = f"Counterfactual CO2: the same energy on {what_if['what_if_label'].iloc[0]} ({what_if['what_if_intensity_g_per_kwh'].iloc[0]:g} gCO2e/kWh)"
        wi_note = (
            "Not measured: the studies' energy × PUE × the given grid intensity"
            + ("" if what_if["pue_recorded"].all() else " (PUE 1.0 where a study recorded none)")
            + "."
        )

    # Markdown
    md = [f"# {title}", ""]
    if mismatch:
        md += [f"> **{mismatch}**", ""]
    if partial:
        md += [f"> **{partial}**", ""]
    md += ["## Verdict", "", VERDICT_NOTE, ""] + [f"- {line}" for line in verdict_lines] + [""]
    md += [
        "## Benchmark",
        "",
        BENCHMARK_NOTE,
        "",
        _md_table(bench),
        "",
    ]
    if floor:
        md += [floor, ""]
    md += [
        f"## {ENERGY_HEAD}",
        "",
        energy_note,
        "",
        _md_table(energy),
        "",
        "## Carbon accounting",
        "",
        CARBON_NOTE,
        "",
        _md_table(carbon),
        "",
        "## Statistics over seeds",
        "",
        STATISTICS_NOTE,
        "",
        _md_table(stats),
        "",
        "## Figures per strategy (mean ± std [min – max] over seeds)",
        "",
        _md_table(figs),
        "",
    ]
    if ratios is not None:
        md += ["## Ratio to grid (mean / grid mean)", "", _md_table(ratios), ""]
    md += ["## Best configuration per strategy", "", _md_table(winners), ""]
    if wi is not None:
        md += [f"## {wi_head}", "", wi_note, "", _md_table(wi), ""]
    md += (
        ["## Studies", "", _md_table(studies_table(studies)), "", "## Notes", ""]
        + [f"- {n}" for n in notes]
        + [""]
    )
    md += ["Plots are in report.html.", ""]

    # HTML
    h = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if mismatch:
        h.append(f"<p class='warn'><b>{html.escape(mismatch)}</b></p>")
    if partial:
        h.append(f"<p class='warn'><b>{html.escape(partial)}</b></p>")
    h += [
        "<h2>Verdict</h2>",
        f"<p class='note'>{html.escape(VERDICT_NOTE)}</p><ul class='verdict'>",
    ]
    h += [f"<li>{html.escape(line)}</li>" for line in verdict_lines] + ["</ul>"]
    h += [
        "<h2>Benchmark</h2>",
        f"<p class='note'>{html.escape(BENCHMARK_NOTE)}</p>",
        _html_table(bench, "bench"),
    ]
    if floor:
        h.append(f"<p class='floor'>{html.escape(floor)}</p>")
    for plot_title, caption, png in _plots(studies, summary, target):
        h.append(f"<h2>{html.escape(plot_title)}</h2><div class='plot'>")
        if png is not None:
            data = base64.b64encode(png).decode("ascii")
            h.append(f"<img alt='{html.escape(plot_title)}' src='data:image/png;base64,{data}'>")
        h.append(f"<p class='note'>{html.escape(caption)}</p></div>")
        if plot_title == ENERGY_PLOT:
            h += [
                f"<h3>{html.escape(ENERGY_HEAD)}</h3>",
                f"<p class='note'>{html.escape(energy_note)}</p>",
                _html_table(energy, "energy"),
            ]
    h += [
        f"<h2>Carbon accounting</h2><p class='note'>{html.escape(CARBON_NOTE)}</p>",
        _html_table(carbon, "carbon"),
        f"<h2>Statistics over seeds</h2><p class='note'>{html.escape(STATISTICS_NOTE)}</p>",
        _html_table(stats, "stats"),
        "<h2>Figures per strategy</h2><p class='note'>mean ± std [min – max] over seeds</p>",
        _html_table(figs, "figures"),
    ]
    if ratios is not None:
        h += [
            "<h2>Ratio to grid</h2><p class='note'>each figure's mean divided by grid's mean</p>",
            _html_table(ratios, "ratios"),
        ]
    h += ["<h2>Best configuration per strategy</h2>", _html_table(winners)]
    if wi is not None:
        h += [
            f"<h2>{html.escape(wi_head)}</h2><p class='warn'>{html.escape(wi_note)}</p>",
            _html_table(wi),
        ]
    h += ["<h2>Studies</h2>", _html_table(studies_table(studies)), "<h2>Notes</h2><ul>"]
    h += [f"<li>{html.escape(n)}</li>" for n in notes] + ["</ul></body></html>"]
    return "\n".join(h), "\n".join(md)


# --------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Compare greentune studies (strategies x seeds): best-so-far curves, energy, CO2, "
        "cost, time to a ROUGE-L target. Writes report.html (self-contained), report.md, "
        "summary.parquet and summary.csv.",
        epilog="example: python -m analysis.report greentune_results/*-seed* --out report "
        "--what-if-intensity 278.6 --what-if-label northeurope",
    )
    p.add_argument(
        "studies", nargs="+", metavar="STUDY_DIR", help="study folders (each holds metadata.json)"
    )
    p.add_argument(
        "--out",
        default="greentune_report",
        help="output folder, created if needed (default: %(default)s)",
    )
    p.add_argument(
        "--target-rougeL",
        type=float,
        default=None,
        metavar="X",
        help="ROUGE-L (F-measure in [0, 1]) to reach; default: 0.01 below the best any study reached",
    )
    p.add_argument(
        "--allow-mismatch",
        action="store_true",
        help="compare studies that differ in model, dataset, data sizes, epochs, search space, "
        "budget or metric (refused otherwise); the report then states what differs at the top",
    )
    p.add_argument(
        "--what-if-intensity",
        type=float,
        default=None,
        metavar="G_PER_KWH",
        help="also show a counterfactual CO2 on a grid of this intensity (gCO2e/kWh)",
    )
    p.add_argument(
        "--what-if-label",
        default=None,
        metavar="NAME",
        help="name of that grid, e.g. northeurope (default: the intensity)",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.target_rougeL is not None and not 0 <= args.target_rougeL <= 1:
            raise ValueError(
                f"--target-rougeL {args.target_rougeL}: ROUGE-L is an F-measure, give a value in [0, 1]"
            )
        if args.what_if_intensity is not None and not (
            math.isfinite(args.what_if_intensity) and args.what_if_intensity >= 0
        ):
            raise ValueError(f"--what-if-intensity {args.what_if_intensity}: give gCO2e/kWh >= 0")
        if args.what_if_label and args.what_if_intensity is None:
            raise ValueError("--what-if-label needs --what-if-intensity G_PER_KWH")
        studies = load_studies(args.studies, allow_mismatch=args.allow_mismatch)
        if not any(len(s.reports) for s in studies):
            raise ValueError("no study has any report yet; nothing to compare")
    except (StudyLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    target_given = args.target_rougeL is not None
    target = args.target_rougeL if target_given else default_target(studies)
    summary = strategy_summary(studies, target)
    what_if = (
        what_if_region(studies, args.what_if_intensity, args.what_if_label)
        if args.what_if_intensity is not None
        else None
    )
    html_text, md_text = render(
        studies, summary, target, target_given, what_if, args.allow_mismatch
    )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in OUTPUTS]
    paths[0].write_text(html_text, encoding="utf-8")
    paths[1].write_text(md_text, encoding="utf-8")
    summary.to_parquet(paths[2], index=False)
    summary.to_csv(paths[3], index=False)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
