"""The report's tables, each a DataFrame of text cells built from the per-strategy summary (or
the studies themselves); rendering them as Markdown or HTML is `analysis.report`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import pandas as pd

from analysis.formatting import (
    NOT_APPLICABLE,
    count,
    hours,
    interval,
    pct,
    ratio,
    rouge,
    sig,
    sig4,
    spread_like,
    to_hours,
    usd,
)
from analysis.load import Study
from analysis.summary import (
    CLUSTER_COMPONENTS,
    CLUSTER_FIGURES,
    cluster_energy_figures,
    common_baseline,
    study_baseline,
)
from core.schema import (
    BEST_PREFIX,
    BUDGET_AMOUNT,
    BUDGET_OVERSHOOT,
    BUDGET_SPENT,
    BUDGET_UNIT,
    CLUSTER_CO2,
    CLUSTER_CO2_TO_TARGET_KG,
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
    CLUSTER_METERED_SEEDS,
    CO2_KG,
    CO2_LB,
    COST_TO_TARGET_USD,
    COST_USD,
    CPU_BASIS,
    DEVICE_H,
    EMBODIED_KG,
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
    ROUGE1,
    ROUGE2,
    ROUGEL,
    ROUGELSUM,
    SCI_KG,
    SCI_PER_1000_SUMMARIES_KG,
    STARTUP_S,
    STRATEGY,
    TARGET_REACHED_SEEDS,
    TEST_ROUGE,
    TEST_ROUGEL,
    TEST_ROUGEL_HIGH,
    TEST_ROUGEL_LOW,
    TIME_TO_TARGET_S,
    TRIAL_EPOCHS,
    TRIALS_ERRORED,
    TRIALS_FINISHED,
    TRIALS_STARTED,
    TRIALS_STOPPED_BUDGET,
    TRIALS_STOPPED_EARLY,
    VS_GRID_SUFFIX,
    WALL_S,
)

TEST_PREFIX_R1, TEST_PREFIX_R2, _, TEST_PREFIX_RLSUM = TEST_ROUGE


# figure -> (label with unit, formatter of one value)
FIGURES: dict[str, tuple[str, Callable[[float], str]]] = {
    TRIALS_STARTED: ("trials started", count),
    TRIALS_STOPPED_EARLY: ("trials stopped early (scheduler / early stopping)", count),
    TRIALS_FINISHED: ("trials finished (full budget)", count),
    TRIALS_ERRORED: ("trials errored", count),
    TRIALS_STOPPED_BUDGET: ("trials stopped by the study budget", count),
    TRIAL_EPOCHS: ("trial-epochs trained", sig4),
    DEVICE_H: ("device time (device-hours)", sig4),
    ENERGY_KWH: ("energy, total (kWh)", sig4),
    ENERGY_GPU_KWH: ("energy, GPU (kWh)", sig4),
    ENERGY_CPU_KWH: ("energy, CPU (kWh)", sig4),
    ENERGY_RAM_KWH: ("energy, RAM (kWh)", sig4),
    ENERGY_MEASURED_KWH: ("energy measured: counter / power integral (kWh)", sig4),
    ENERGY_ESTIMATED_KWH: ("energy estimated (kWh)", sig4),
    ENERGY_MEASURED_SHARE: ("measured share of energy", pct),
    ENERGY_LOW_KWH: ("trials' energy, estimated parts at -50 % (kWh)", sig4),
    ENERGY_HIGH_KWH: ("trials' energy, estimated parts at +50 % (kWh)", sig4),
    CLUSTER_ENERGY_KWH: ("whole-cluster energy, study start to end (kWh)", sig4),
    CLUSTER_ENERGY_LOW_KWH: ("whole-cluster energy, estimated parts at -50 % (kWh)", sig4),
    CLUSTER_ENERGY_HIGH_KWH: ("whole-cluster energy, estimated parts at +50 % (kWh)", sig4),
    CLUSTER_ENERGY_GPU_KWH: ("whole-cluster energy, GPU (kWh)", sig4),
    CLUSTER_ENERGY_CPU_KWH: ("whole-cluster energy, CPU (kWh)", sig4),
    CLUSTER_ENERGY_RAM_KWH: ("whole-cluster energy, RAM (kWh)", sig4),
    OVERHEAD_ENERGY_KWH: ("overhead: whole cluster − trials (kWh)", sig4),
    OVERHEAD_SHARE: ("overhead share of the whole-cluster energy", pct),
    CO2_KG: ("CO2e (kg)", sig4),
    CO2_LB: ("CO2e (lb)", sig4),
    COST_USD: ("cost attributed to the trials (USD)", usd),
    CLUSTER_CO2: ("whole-cluster CO2e (kg)", sig4),
    CLUSTER_COST: ("whole-cluster cost, billed (USD)", usd),
    MARKET_CO2_KG: ("CO2e, market-based (kg; energy.market_intensity_g_per_kwh)", sig4),
    EMBODIED_KG: ("embodied CO2e of the VMs held (kg; Scope 3, not in the CO2e above)", sig4),
    SCI_KG: ("SCI per tuned model: whole-cluster CO2e + embodied (kg)", sig4),
    SCI_PER_1000_SUMMARIES_KG: ("SCI per 1,000 test summaries, operational (kg)", sig4),
    TEST_PREFIX_R1: ("test ROUGE-1 (selected model, held-out split)", rouge),
    TEST_PREFIX_R2: ("test ROUGE-2 (selected model, held-out split)", rouge),
    TEST_ROUGEL: ("test ROUGE-L (selected model, held-out split)", rouge),
    TEST_PREFIX_RLSUM: ("test ROUGE-Lsum (selected model, held-out split)", rouge),
    BEST_PREFIX + ROUGE1: ("best validation ROUGE-1 (selection-biased)", rouge),
    BEST_PREFIX + ROUGE2: ("best validation ROUGE-2 (selection-biased)", rouge),
    BEST_PREFIX + ROUGEL: ("best validation ROUGE-L (selection-biased)", rouge),
    BEST_PREFIX + ROUGELSUM: ("best validation ROUGE-Lsum (selection-biased)", rouge),
    BUDGET_AMOUNT: ("budget (in its unit)", sig4),
    BUDGET_SPENT: ("budget spent (in its unit)", sig4),
    BUDGET_OVERSHOOT: ("budget overshoot (spent - budget)", sig4),
    WALL_S: ("wall time (h)", to_hours),
    STARTUP_S: ("trial start-up: segment launch + setup (h)", to_hours),
    TIME_TO_TARGET_S: ("time to target (h)", to_hours),
    ENERGY_TO_TARGET_KWH: ("energy to target (kWh)", sig4),
    COST_TO_TARGET_USD: ("cost to target, attributed to the trials (USD)", usd),
    CLUSTER_ENERGY_TO_TARGET_KWH: ("whole-cluster energy to target (kWh)", sig4),
    CLUSTER_CO2_TO_TARGET_KG: ("whole-cluster CO2e to target (kg)", sig4),
    CLUSTER_COST_TO_TARGET_USD: ("whole-cluster cost to target, billed (USD)", usd),
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


def figure_cell(row: pd.Series, fig: str) -> str:
    """mean ± std [min – max] (n seeds), as text; whole-cluster figures say `estimated` where
    they are, and `not measured` where no seed has them."""
    fmt = FIGURES[fig][1]
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
        text += f" ± {spread_like(sd, text, fmt)}"
    if fig in CLUSTER_FIGURES:
        text += cluster_label(row, fig)
    if row[N_SEEDS] > 1 and lo != hi:
        text += f"\n[{fmt(lo)} – {fmt(hi)}]"  # a line break in HTML, a space in Markdown
    return text


def cluster_label(row: pd.Series, fig: str) -> str:
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


def vs_grid(r: pd.Series, fig: str, has_grid: bool) -> str:
    if not has_grid or r[STRATEGY] == "grid":
        return ""
    to_grid = r[fig + VS_GRID_SUFFIX]
    return f" ({ratio(to_grid)} grid)" if math.isfinite(to_grid) else ""


def estimate_range(r: pd.Series, low_fig: str, high_fig: str) -> str:
    """` (range a – b)` where estimated parts widen a figure (their stated band), else ''."""
    low, high = r[f"{low_fig}_mean"], r[f"{high_fig}_mean"]
    if not (math.isfinite(low) and math.isfinite(high)) or math.isclose(low, high):
        return ""
    return f" (range {sig(low)} – {sig(high)})"


def benchmark_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The headline table (Model | Performance | Speed | Resource Usage | Carbon Emission | Cost),
    one row per strategy, every cell a mean over seeds. Performance is the selected model's test
    ROUGE-L with its 95 % interval; energy, CO2 and dollars are the whole cluster's (what was
    spent, overhead included), the trials' own meters beside them; every ratio to grid on both."""
    has_grid = (summary[STRATEGY] == "grid").any()
    rows = []
    for _, r in summary.iterrows():

        def vs(fig: str, r: pd.Series = r) -> str:
            return vs_grid(r, fig, has_grid)

        n = int(r[N_SEEDS])
        seeds = f"{n} seed{'s' if n != 1 else ''}"
        seeds += f", {r[N_RUNNING]} running" if r[N_RUNNING] else ""
        mean = {fig: r[f"{fig}_mean"] for fig in FIGURES}
        test = mean[TEST_ROUGEL]
        if math.isfinite(test):
            perf = (
                "test ROUGE-L "
                f"{rouge(test)}{interval(r[TEST_ROUGEL_LOW], r[TEST_ROUGEL_HIGH], rouge)}"
                f"{vs(TEST_ROUGEL)} (R-1 {rouge(mean[TEST_PREFIX_R1])}, R-2 "
                f"{rouge(mean[TEST_PREFIX_R2])}, "
                f"R-Lsum {rouge(mean[TEST_PREFIX_RLSUM])}); validation best "
                f"{rouge(mean[BEST_PREFIX + ROUGEL])}"
            )
        else:
            perf = (
                "not scored on test; validation best ROUGE-L "
                f"{rouge(mean[BEST_PREFIX + ROUGEL])} (selection-biased)"
            )
        reached = int(r[TARGET_REACHED_SEEDS])
        to_target = "target not reached"
        if reached:
            to_target = (
                f"target in {hours(mean[TIME_TO_TARGET_S])} ({reached}/{n} seeds)"
                f"{vs(TIME_TO_TARGET_S)}"
            )
        speed = f"wall {hours(mean[WALL_S])}; {to_target}"
        cluster = mean[CLUSTER_ENERGY_KWH]
        label = cluster_label(r, CLUSTER_ENERGY_KWH)
        whole = (
            f"whole cluster {sig(cluster)} "
            f"kWh{label}{estimate_range(r, CLUSTER_ENERGY_LOW_KWH, CLUSTER_ENERGY_HIGH_KWH)}"
            f"{vs(CLUSTER_ENERGY_KWH)}"
            if math.isfinite(cluster)
            else "whole cluster not measured"
        )
        budget = ""
        if math.isfinite(mean[BUDGET_SPENT]):
            budget = (
                f"; budget spent {sig(mean[BUDGET_SPENT])} of {sig(mean[BUDGET_AMOUNT])} "
                f"{r[BUDGET_UNIT]}"
            )
        resources = (
            f"{whole}; trials' own {sig(mean[ENERGY_KWH])} "
            f"kWh{estimate_range(r, ENERGY_LOW_KWH, ENERGY_HIGH_KWH)}{vs(ENERGY_KWH)} "
            f"({pct(mean[ENERGY_MEASURED_SHARE])} measured); {sig(mean[DEVICE_H])} device-h; "
            f"{sig(mean[TRIAL_EPOCHS])} trial-epochs{budget}"
        )
        cluster_co2 = mean[CLUSTER_CO2]
        carbon = (
            f"whole cluster {sig(cluster_co2)} kg CO2e ({sig(cluster_co2 * 2.20462)} lb)"
            f"{vs(CLUSTER_CO2)}; "
            if math.isfinite(cluster_co2)
            else "whole cluster not measured; "
        )
        carbon += f"trials' own {sig(mean[CO2_KG])} kg{vs(CO2_KG)}"
        billed, cost = mean[CLUSTER_COST], mean[COST_USD]
        cost_text = f"billed {usd(billed)}{vs(CLUSTER_COST)}; " if math.isfinite(billed) else ""
        cost_text += (
            f"trials' share {usd(cost)}{vs(COST_USD)}" if math.isfinite(cost) else NOT_APPLICABLE
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
    data = {"figure": [label for label, _ in FIGURES.values()]}
    for _, r in summary.iterrows():
        data[r[STRATEGY]] = [figure_cell(r, fig) for fig in FIGURES]
    return pd.DataFrame(data)


def ratios_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Every figure's mean as a ratio to grid's mean (× grid)."""
    data = {"figure": [label for label, _ in FIGURES.values()]}
    for _, r in summary.iterrows():
        data[r[STRATEGY]] = [ratio(r[fig + VS_GRID_SUFFIX]) for fig in FIGURES]
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
        row.update({col: figure_cell(r, fig) for col, fig in ENERGY_TABLE_COLUMNS.items()})
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
        f"{rouge(floor['value'])} (R-1 {rouge(scores[ROUGE1])}, R-2 {rouge(scores[ROUGE2])}, "
        f"R-Lsum {rouge(scores[ROUGELSUM])})"
    )
    spread = []
    if floor["n"] < len(studies):
        spread.append(f"mean of the {floor['n']} of {len(studies)} studies that hold one")
    if floor["low"] != floor["high"]:
        spread.append(f"{rouge(floor['low'])} – {rouge(floor['high'])} over studies")
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
        f"{sig4(fig[CLUSTER_ENERGY_KWH])} kWh on {nodes} node{'s' if nodes != 1 else ''}, "
        f"{pct(fig[OVERHEAD_SHARE])} overhead ({fig[CLUSTER_ENERGY_BASIS]})"
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
                "wall": hours(s.wall_s),
                "Ray start-up": f"{sig(ray_init)} s" if ray_init is not None else "–",
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
        f"{sig4(b['spent'])} / {sig4(b['amount'])} {b['unit']}"
        + (f" ({over:+.3g})" if isinstance(over, (int, float)) else "")
        + (" - stopped on it" if b.get("stopped") else "")
    )


def _test_cell(s: Study) -> str:
    t = s.metadata.section("test")
    if not t.get("evaluated"):
        return "not scored" + (f" ({t['why']})" if t.get("why") else "")
    low, high = t.get("rougeL_ci95") or (math.nan, math.nan)
    return f"{rouge(t['rougeL'])} [{rouge(low)} – {rouge(high)}], n={t['n']}"


def carbon_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: CO2 by scope and method, the SCI per functional unit, how the CPU was
    estimated; `not available` where a figure has no source (a local machine, a size without a
    dated embodied row, no market factor given)."""
    rows = []
    for _, r in summary.iterrows():

        def cell(fig: str, r: pd.Series = r) -> str:
            v = r[f"{fig}_mean"]
            return sig4(v) if math.isfinite(v) else "not available"

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
            label, fmt = FIGURES[fig]
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
        return (
            f"hourly, {hourly['source']} ({hourly['zone']}, {hourly['basis']}), PUE "
            f"{fp.get('pue', '?')}"
        )
    if fp.get("intensity_g_per_kwh") is not None:
        return (
            f"{fp['intensity_g_per_kwh']} gCO2e/kWh ({fp.get('region', '?')}), PUE "
            f"{fp.get('pue', '?')}"
        )
    return "not recorded"
