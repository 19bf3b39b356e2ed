"""Per-strategy figures from study tables: pure functions over DataFrames (no I/O, no Ray).

Energy, device time, CO2 and cost columns in `reports.parquet` are cumulative per trial, so a
study's total is the sum over trials of each trial's last value, and a study's running total is
built by sorting its reports by `study_elapsed_s` and summing each trial's increments
(`study_cumulative`).

    >>> curve = best_so_far(study.reports, "rougeL", "max", x=X_ENERGY_KWH)
    >>> table = strategy_summary(studies)            # one row per strategy, spread over seeds
    >>> table.loc[table["strategy"] == "asha", "energy_kwh_vs_grid"]

Measured and estimated energy stay in separate columns (`energy_measured_kwh`,
`energy_estimated_kwh`); a counterfactual CO2 (`what_if_region`) is labelled as such.

Beside the trials' own meters, a study's `metadata.json` may hold the whole-cluster reading
(`cluster_energy`: every node from study start to end, idle and start-up included) and the lead-k
extractive baseline on its validation set (`baseline`). `cluster_energy_figures` turns the first
into `cluster_energy_*_kwh`, `overhead_energy_kwh` (cluster - trials) and `overhead_share`, NaN
where the study has none ("not measured", never zero); `study_baseline` / `common_baseline`
read the second.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from analysis.load import CLUSTER_BILLED_USD, CLUSTER_CO2_KG, CLUSTER_ENERGY_J
from core.footprint import ESTIMATE_BAND, J_PER_KWH, energy_band_j
from core.footprint import LBS_PER_KG as LB_PER_KG
from core.metadata import StudyMetadata
from core.schema import (
    BASELINE_LEAD_K,
    BASELINE_PREFIX,
    BASELINE_SEEDS,
    BEST_CONFIG,
    BEST_PREFIX,
    BEST_SEED,
    BEST_TRIAL_ID,
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
    CLUSTER_METERED,
    CLUSTER_METERED_SEEDS,
    CLUSTER_NODES,
    CO2_KG,
    CO2_LB,
    CONFIG_PREFIX,
    COST_TO_TARGET_USD,
    COST_USD,
    CPU_BASIS,
    DEVICE_H,
    DEVICE_S,
    EARLY_STOP_REASONS,
    EMBODIED_KG,
    ENERGY_CPU_J,
    ENERGY_CPU_KWH,
    ENERGY_CPU_SOURCE,
    ENERGY_ESTIMATED_KWH,
    ENERGY_GPU_J,
    ENERGY_GPU_KWH,
    ENERGY_GPU_SOURCE,
    ENERGY_HIGH_KWH,
    ENERGY_KWH,
    ENERGY_LOW_KWH,
    ENERGY_MEASURED_KWH,
    ENERGY_MEASURED_SHARE,
    ENERGY_RAM_J,
    ENERGY_RAM_KWH,
    ENERGY_RAM_SOURCE,
    ENERGY_TO_TARGET_KWH,
    ENERGY_TOTAL_J,
    ESTIMATED_SOURCES,
    MARKET_CO2_KG,
    MEASURED_SOURCES,
    MODEL,
    N_RUNNING,
    N_SEEDS,
    NOT_MEASURED,
    OVERHEAD_ENERGY_KWH,
    OVERHEAD_SHARE,
    REACHED_TARGET,
    ROUGE_COLUMNS,
    ROUGEL,
    RUNNING,
    SCI_KG,
    SCI_PER_1000_SUMMARIES_KG,
    SEED,
    SEGMENT_LAUNCH_S,
    SEGMENT_SETUP_S,
    SELECTED_VALIDATION,
    STARTUP_S,
    STATUS,
    STOP_BUDGET,
    STOP_COMPLETED,
    STOP_ERROR,
    STOP_REASON,
    STRATEGY,
    STUDY,
    STUDY_ELAPSED_S,
    TARGET_REACHED_SEEDS,
    TARGET_ROUGEL,
    TEST_N,
    TEST_PREFIX,
    TEST_ROUGE,
    TEST_ROUGEL,
    TEST_ROUGEL_HIGH,
    TEST_ROUGEL_LOW,
    TIME_TO_TARGET_S,
    TRIAL_EPOCHS,
    TRIAL_ID,
    TRIALS_ERRORED,
    TRIALS_FINISHED,
    TRIALS_STARTED,
    TRIALS_STOPPED_BUDGET,
    TRIALS_STOPPED_EARLY,
    VS_GRID_SUFFIX,
    WALL_S,
    X_CLUSTER_CO2_KG,
    X_CLUSTER_COST_USD,
    X_CLUSTER_ENERGY_KWH,
    X_CO2_KG,
    X_COST_USD,
    X_DEVICE_H,
    X_ENERGY_KWH,
    X_WALL_S,
)
from core.stats import bootstrap_ci, iqm
from core.strategies import CATALOGUE

if TYPE_CHECKING:
    from analysis.load import Study

DEFAULT_TARGET_MARGIN = 0.01  # ROUGE-L (F-measure in [0, 1]): 0.01 = one ROUGE point
STRATEGY_ORDER = tuple(CATALOGUE)  # the catalogue's order; names it does not know follow, A-Z

_X_AXES = {  # name -> (per-trial cumulative report column, or None for elapsed time; divisor)
    X_WALL_S: (None, 1.0),
    X_ENERGY_KWH: (ENERGY_TOTAL_J, J_PER_KWH),
    X_COST_USD: (COST_USD, 1.0),
    X_CO2_KG: (CO2_KG, 1.0),
    X_DEVICE_H: (DEVICE_S, 3600.0),
}
# Whole-cluster axes: study-level running totals at each report (analysis.load adds them from
# the cluster meter's series), not per-trial ones.
_CLUSTER_X_AXES = {
    X_CLUSTER_ENERGY_KWH: (CLUSTER_ENERGY_J, J_PER_KWH),
    X_CLUSTER_CO2_KG: (CLUSTER_CO2_KG, 1.0),
    X_CLUSTER_COST_USD: (CLUSTER_BILLED_USD, 1.0),
}


# component -> (report column, its source column, output kWh column)
ENERGY_COMPONENTS = {
    "gpu": (ENERGY_GPU_J, ENERGY_GPU_SOURCE, ENERGY_GPU_KWH),
    "cpu": (ENERGY_CPU_J, ENERGY_CPU_SOURCE, ENERGY_CPU_KWH),
    "ram": (ENERGY_RAM_J, ENERGY_RAM_SOURCE, ENERGY_RAM_KWH),
}
# component -> (metadata key of the part, node reading key, its source key, output kWh column)
CLUSTER_COMPONENTS = {
    "gpu": ("energy_gpu_j", "gpu_j", "gpu_source", CLUSTER_ENERGY_GPU_KWH),
    "cpu": ("energy_cpu_j", "cpu_j", "cpu_source", CLUSTER_ENERGY_CPU_KWH),
    "ram": ("energy_ram_j", "ram_j", "ram_source", CLUSTER_ENERGY_RAM_KWH),
}
# Every whole-cluster figure: NaN together where a study holds no cluster reading
CLUSTER_FIGURES = (
    CLUSTER_ENERGY_KWH,
    CLUSTER_ENERGY_LOW_KWH,
    CLUSTER_ENERGY_HIGH_KWH,
    *(kwh for _, _, _, kwh in CLUSTER_COMPONENTS.values()),
    OVERHEAD_ENERGY_KWH,
    OVERHEAD_SHARE,
)
BEST_ROUGE = tuple(BEST_PREFIX + r for r in ROUGE_COLUMNS)
BASELINE_ROUGE = tuple(BASELINE_PREFIX + r for r in ROUGE_COLUMNS)

# The numeric figures summarised over seeds, in display order.
NUMERIC_FIGURES = (
    TRIALS_STARTED,
    TRIALS_STOPPED_EARLY,
    TRIALS_FINISHED,
    TRIALS_ERRORED,
    TRIALS_STOPPED_BUDGET,
    TRIAL_EPOCHS,
    DEVICE_H,
    ENERGY_KWH,
    ENERGY_GPU_KWH,
    ENERGY_CPU_KWH,
    ENERGY_RAM_KWH,
    ENERGY_MEASURED_KWH,
    ENERGY_ESTIMATED_KWH,
    ENERGY_MEASURED_SHARE,
    ENERGY_LOW_KWH,
    ENERGY_HIGH_KWH,
    CLUSTER_ENERGY_KWH,
    CLUSTER_ENERGY_LOW_KWH,
    CLUSTER_ENERGY_HIGH_KWH,
    CLUSTER_ENERGY_GPU_KWH,
    CLUSTER_ENERGY_CPU_KWH,
    CLUSTER_ENERGY_RAM_KWH,
    OVERHEAD_ENERGY_KWH,
    OVERHEAD_SHARE,
    CO2_KG,
    CO2_LB,
    COST_USD,
    CLUSTER_CO2,
    MARKET_CO2_KG,
    EMBODIED_KG,
    SCI_KG,
    SCI_PER_1000_SUMMARIES_KG,
    CLUSTER_COST,
    *TEST_ROUGE,
    *BEST_ROUGE,
    BUDGET_AMOUNT,
    BUDGET_SPENT,
    BUDGET_OVERSHOOT,
    WALL_S,
    STARTUP_S,
    TIME_TO_TARGET_S,
    ENERGY_TO_TARGET_KWH,
    COST_TO_TARGET_USD,
    CLUSTER_ENERGY_TO_TARGET_KWH,
    CLUSTER_CO2_TO_TARGET_KG,
    CLUSTER_COST_TO_TARGET_USD,
)


# --------------------------------------------------------------------------------------------
# Running totals and curves


def _trial_keys(reports: pd.DataFrame) -> list[str]:
    return [STUDY, TRIAL_ID] if STUDY in reports.columns else [TRIAL_ID]


def _sorted(reports: pd.DataFrame) -> pd.DataFrame:
    return reports.sort_values(STUDY_ELAPSED_S, kind="stable")


def study_cumulative(reports: pd.DataFrame, column: str) -> pd.Series:
    """The study's running total of a per-trial cumulative column, in report time order.

    Reports are sorted by `study_elapsed_s`; each report adds its trial's increment since that
    trial's previous report. NaN values carry the trial's last known total. All-NaN (or absent)
    gives an all-NaN series: "not measured" is never turned into zero.

    >>> study_cumulative(reports, "energy_total_j") / 3.6e6   # kWh spent by the study so far
    """
    r = _sorted(reports)
    if column not in r.columns or r[column].isna().all():
        return pd.Series(np.nan, index=r.index, name=column, dtype=float)
    keys = [r[k] for k in _trial_keys(r)]
    filled = r[column].astype(float).groupby(keys).ffill().fillna(0.0)
    increments = filled.groupby(keys).diff().fillna(filled)
    return increments.cumsum().rename(column)


def best_so_far(
    reports: pd.DataFrame, metric: str = ROUGEL, mode: str = "max", x: str = X_WALL_S
) -> pd.DataFrame:
    """Best `metric` found so far against a cumulative x, one row per report in time order.

    x: `wall_s` (study elapsed seconds), `energy_kwh` (the trials' cumulative energy, J -> kWh),
    `cost_usd` (cumulative attributed dollars), `co2_kg`, `device_h`, or the whole cluster's
    `cluster_energy_kwh`, `cluster_co2_kg`, `cluster_cost_usd` (billed). Columns: x and
    `best_<metric>`; x is all-NaN when the study has no such figure (e.g. cost on a local machine).
    """
    if x not in _X_AXES and x not in _CLUSTER_X_AXES:
        raise ValueError(f"x={x!r}: use one of {', '.join([*_X_AXES, *_CLUSTER_X_AXES])}")
    if mode not in ("max", "min"):
        raise ValueError(f"mode={mode!r}: use max or min")
    r = _sorted(reports)
    if x in _CLUSTER_X_AXES:
        column, divisor = _CLUSTER_X_AXES[x]
        xs = (
            r[column].astype(float) / divisor
            if column in r.columns
            else pd.Series(np.nan, index=r.index)
        )
    else:
        column, divisor = _X_AXES[x]
        xs = (
            r[STUDY_ELAPSED_S].astype(float)
            if column is None
            else study_cumulative(r, column) / divisor
        )
    values = r[metric].astype(float)
    best = values.cummax() if mode == "max" else values.cummin()
    return pd.DataFrame({x: xs.to_numpy(), BEST_PREFIX + metric: best.to_numpy()})


def trial_totals(reports: pd.DataFrame, metric: str = ROUGEL, mode: str = "max") -> pd.DataFrame:
    """One row per trial: identity, best `metric`, its report's ROUGE scores and config, and the
    trial's totals (`energy_kwh`, components, `device_h`, `co2_kg`, `cost_usd`, `trial_epochs`),
    first and last report time (`first_s`, `last_s`)."""
    r = _sorted(reports)
    keys = _trial_keys(r)
    groups = r.groupby(keys, sort=False)
    out = groups[[c for c in (STRATEGY, SEED) if c in r.columns]].first()
    last = groups.last()  # each column's last non-NaN value: the trial's total so far
    for col, divisor, name in (
        (ENERGY_TOTAL_J, J_PER_KWH, ENERGY_KWH),
        *((c[0], J_PER_KWH, c[2]) for c in ENERGY_COMPONENTS.values()),
        (DEVICE_S, 3600.0, DEVICE_H),
        (CO2_KG, 1.0, CO2_KG),
        (COST_USD, 1.0, COST_USD),
        (TRIAL_EPOCHS, 1.0, TRIAL_EPOCHS),
    ):
        out[name] = last[col].astype(float) / divisor if col in last.columns else np.nan
    out["first_s"] = groups[STUDY_ELAPSED_S].min()
    out["last_s"] = groups[STUDY_ELAPSED_S].max()
    # The report with the trial's best metric (earliest on ties); trials without one keep NaN.
    scored = r.dropna(subset=[metric])
    best = scored.groupby(keys, sort=False)[metric]
    best_idx = best.idxmax() if mode == "max" else best.idxmin()
    cols = [c for c in ROUGE_COLUMNS if c in r.columns and c != metric] + [metric]
    cols += [c for c in r.columns if c.startswith(CONFIG_PREFIX)]
    best_rows = r.loc[best_idx.to_numpy(), keys + list(dict.fromkeys(cols))].set_index(keys)
    best_rows = best_rows.rename(columns={c: BEST_PREFIX + c for c in (*ROUGE_COLUMNS, metric)})
    return out.join(best_rows).reset_index()


def pareto_front(
    trials: pd.DataFrame, x: str, y: str, x_mode: str = "min", y_mode: str = "max"
) -> pd.DataFrame:
    """The rows no other row beats on both `x` and `y` (by default: least x, most y), best x first.

    Rows with NaN in x or y are ignored; of exact duplicates the first is kept.

    >>> pareto_front(trial_totals(reports), "energy_kwh", "best_rougeL")
    """
    for mode, name in ((x_mode, "x_mode"), (y_mode, "y_mode")):
        if mode not in ("min", "max"):
            raise ValueError(f"{name}={mode!r}: use min or max")
    data = trials.dropna(subset=[x, y])
    xs = data[x].to_numpy(float) * (1 if x_mode == "min" else -1)
    ys = data[y].to_numpy(float) * (1 if y_mode == "max" else -1)
    order = np.lexsort((-ys, xs))  # by x ascending, then y descending
    keep, best_y = [], -math.inf
    for i in order:
        if ys[i] > best_y:
            keep.append(i)
            best_y = ys[i]
    return data.iloc[keep]


# --------------------------------------------------------------------------------------------
# Whole-cluster energy and the lead-k baseline (from metadata.json)


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def cluster_energy_figures(metadata: StudyMetadata) -> dict[str, Any]:
    """The study's whole-cluster energy (kWh, per component), the overhead (cluster - the trials'
    own meters) in kWh and as a share of the cluster total, and where each part came from.

    Every figure is NaN where the study holds no `cluster_energy` (an older or still running
    study) or no node measured that part. Readings of earlier runs of a resumed study
    (`previous_runs`) are added to the total. `cluster_energy_<part>_source` joins the nodes'
    sources (`counter`, `estimated`; `none` where no node measured the part).
    """
    ce = metadata.section("cluster_energy")
    runs = [ce, *(ce.get("previous_runs") or [])] if ce else []
    out: dict[str, Any] = {}
    for comp, (part_key, node_key, source_key, kwh_col) in CLUSTER_COMPONENTS.items():
        values = [r[part_key] for r in runs if _finite(r.get(part_key))]
        out[kwh_col] = sum(values) / J_PER_KWH if values else math.nan
        sources = {
            str(n.get(source_key))
            for r in runs
            for n in r.get("nodes") or []
            if _finite(n.get(node_key)) and n.get(source_key)
        }
        out[f"cluster_energy_{comp}_source"] = "+".join(sorted(sources)) or "none"
    totals = [r["energy_j"] for r in runs if _finite(r.get("energy_j"))]
    total_j = sum(totals) if totals else None
    trials_j = ce.get("trials_energy_j") if runs else None
    if total_j is not None and _finite(trials_j):
        overhead_j = total_j - trials_j
    elif runs and _finite(ce.get("overhead_energy_j")):
        overhead_j = ce["overhead_energy_j"]
    else:
        overhead_j = None
    out[CLUSTER_ENERGY_KWH] = total_j / J_PER_KWH if total_j is not None else math.nan
    # the range estimated parts span (ESTIMATE_BAND each way); measured parts as they are
    low, high = energy_band_j(
        {
            comp: (
                out[kwh] * J_PER_KWH if math.isfinite(out[kwh]) else None,
                "estimated" if "estimated" in out[f"cluster_energy_{comp}_source"] else "measured",
            )
            for comp, (_, _, _, kwh) in CLUSTER_COMPONENTS.items()
        }
    )
    out[CLUSTER_ENERGY_LOW_KWH] = low / J_PER_KWH if low is not None else math.nan
    out[CLUSTER_ENERGY_HIGH_KWH] = high / J_PER_KWH if high is not None else math.nan
    out[OVERHEAD_ENERGY_KWH] = overhead_j / J_PER_KWH if overhead_j is not None else math.nan
    out[OVERHEAD_SHARE] = (
        overhead_j / total_j
        if overhead_j is not None and total_j is not None and total_j > 0
        else math.nan
    )
    out[CLUSTER_METERED] = total_j is not None
    out[CLUSTER_NODES] = len(ce.get("nodes") or []) if runs else 0
    out[CLUSTER_ENERGY_BASIS] = cluster_energy_basis(out)
    return out


def cluster_energy_basis(figures: dict[str, Any] | pd.Series) -> str:
    """`measured` (every part from counters), `estimated` (every part a stated model, e.g. a
    CPU-only machine), `estimated: CPU, RAM` (those parts estimated, the rest measured), or
    `not measured`."""
    estimated, measured = [], []
    for comp in CLUSTER_COMPONENTS:
        sources = str(figures.get(f"cluster_energy_{comp}_source", "none")).split("+")
        if any(src in ESTIMATED_SOURCES for src in sources):
            estimated.append(comp.upper())
        elif any(src in MEASURED_SOURCES for src in sources):
            measured.append(comp.upper())
    if not estimated and not measured:
        return NOT_MEASURED
    if not estimated:
        return "measured"
    return "estimated" if not measured else "estimated: " + ", ".join(estimated)


def study_baseline(metadata: StudyMetadata) -> dict[str, Any] | None:
    """The study's lead-k baseline as {lead_k, rouge1, rouge2, rougeL, rougeLsum}, or None."""
    b = metadata.baseline
    if not isinstance(b, dict) or not _finite(b.get("lead_k")):
        return None
    scores = {r: float(b[r]) if _finite(b.get(r)) else math.nan for r in ROUGE_COLUMNS}
    if all(math.isnan(v) for v in scores.values()):
        return None
    return {"lead_k": int(b["lead_k"]), **scores}


def common_baseline(studies: Sequence[Study], metric: str = ROUGEL) -> dict[str, Any] | None:
    """The baseline's `metric` over the studies that hold one: {label, lead_k, value (mean),
    low, high, n}; None when no study holds one (or none scored `metric`)."""
    found = [b for s in studies if (b := study_baseline(s.metadata)) is not None]
    values = [b[metric] for b in found if math.isfinite(b.get(metric, math.nan))]
    if not values:
        return None
    ks = sorted({b["lead_k"] for b in found if math.isfinite(b.get(metric, math.nan))})
    return {
        "label": f"lead-{'/'.join(str(k) for k in ks)} baseline",
        "lead_k": ks[0] if len(ks) == 1 else None,
        "value": float(values[0] if min(values) == max(values) else np.mean(values)),
        "low": float(min(values)),
        "high": float(max(values)),
        "n": len(values),
    }


# --------------------------------------------------------------------------------------------
# One study's figures


def default_target(studies: Sequence[Study], margin: float = DEFAULT_TARGET_MARGIN) -> float:
    """The validation ROUGE-L to reach: `margin` below grid's best (the mean over grid's seeds)
    when a grid study is given, the baseline strategy every other is measured against; else
    `margin` below the best any study reached."""

    def best(s: Study) -> float:
        return float(s.reports[ROUGEL].max()) if ROUGEL in s.reports else math.nan

    grid = [b for s in studies if s.strategy == "grid" and math.isfinite(b := best(s))]
    if grid:
        return float(np.mean(grid)) - margin
    return max((b for s in studies if math.isfinite(b := best(s))), default=math.nan) - margin


def default_target_rule(studies: Sequence[Study], margin: float = DEFAULT_TARGET_MARGIN) -> str:
    """`default_target`'s rule in words, for the report."""
    below = f"{margin:g} ({margin * 100:g} ROUGE point{'s' if margin != 0.01 else ''}) below"
    if any(s.strategy == "grid" for s in studies):
        return f"{below} grid's best validation ROUGE-L (mean over its seeds)"
    return f"{below} the best validation ROUGE-L any study reached"


def _config_text(row: pd.Series) -> str:
    parts = []
    for col, value in row.items():
        if not str(col).startswith(CONFIG_PREFIX) or value is None:
            continue
        if isinstance(value, float):
            if math.isnan(value):
                continue
            value = f"{value:.4g}"
        parts.append(f"{str(col)[len(CONFIG_PREFIX) :]}={value}")
    return ", ".join(parts)


def _sum_or_nan(values: pd.Series) -> float:
    return float(values.sum(min_count=1))


def _trial_sources(reports: pd.DataFrame, source_col: str) -> pd.Series:
    if source_col not in reports.columns:
        return pd.Series(dtype=object)
    return reports.groupby(_trial_keys(reports), sort=False)[source_col].last()


def study_summary(study: Study, target_rougeL: float | None = None) -> dict[str, Any]:
    """The figures of one study (one strategy, one seed): a flat dict of named values with units."""
    r = _sorted(study.reports)
    t = study.trials
    status = t[STATUS] if STATUS in t.columns else pd.Series("TERMINATED", index=t.index)
    reason = t[STOP_REASON] if STOP_REASON in t.columns else pd.Series(None, index=t.index)
    totals = trial_totals(r, study.metric, study.mode)
    keys = _trial_keys(r)
    out: dict[str, Any] = {
        STUDY: study.name,
        STRATEGY: study.strategy,
        SEED: study.seed,
        MODEL: study.model,
        RUNNING: study.running,
        TRIALS_STARTED: int((status != "PENDING").sum()),
        TRIALS_STOPPED_EARLY: int(reason.isin(EARLY_STOP_REASONS).sum()),
        TRIALS_FINISHED: int((reason == STOP_COMPLETED).sum()),
        TRIALS_ERRORED: int((reason == STOP_ERROR).sum()),
        TRIALS_STOPPED_BUDGET: int((reason == STOP_BUDGET).sum()),
        TRIAL_EPOCHS: _sum_or_nan(totals[TRIAL_EPOCHS]),
        DEVICE_H: _sum_or_nan(totals[DEVICE_H]),
        ENERGY_KWH: _sum_or_nan(totals[ENERGY_KWH]),
        CO2_KG: _sum_or_nan(totals[CO2_KG]),
        COST_USD: _sum_or_nan(totals[COST_USD]),
        WALL_S: study.wall_s,
    }
    out[CO2_LB] = out[CO2_KG] * LB_PER_KG
    startup = [c for c in (SEGMENT_LAUNCH_S, SEGMENT_SETUP_S) if c in r.columns]
    out[STARTUP_S] = (
        _sum_or_nan(r[startup].astype(float).sum(axis=1, min_count=1)) if startup else math.nan
    )
    out.update(cluster_energy_figures(study.metadata))
    out.update(held_out_figures(study.metadata))
    out.update(budget_figures(study.metadata))
    out.update(carbon_figures(study.metadata))
    baseline = study_baseline(study.metadata) or {}
    out[BASELINE_LEAD_K] = baseline.get("lead_k", math.nan)
    for col in ROUGE_COLUMNS:
        out[BASELINE_PREFIX + col] = baseline.get(col, math.nan)

    # Energy components, each with the sources behind it; measured and estimated kept apart.
    measured = estimated = labelled_total = 0.0
    any_energy = False
    totals_by_trial = totals.set_index(keys)
    for comp, (_, source_col, kwh_col) in ENERGY_COMPONENTS.items():
        out[kwh_col] = _sum_or_nan(totals[kwh_col])
        sources = _trial_sources(r, source_col).reindex(totals_by_trial.index)
        kwh = totals_by_trial[kwh_col]
        has = kwh.notna()
        any_energy |= bool(has.any())
        measured += float(kwh[has & sources.isin(MEASURED_SOURCES)].sum())
        estimated += float(kwh[has & sources.isin(ESTIMATED_SOURCES)].sum())
        labelled_total += float(kwh[has].sum())
        out[f"energy_{comp}_source"] = (
            "+".join(sorted(set(sources[has].dropna().astype(str)))) or "none"
        )
    out[ENERGY_MEASURED_KWH] = measured if any_energy else math.nan
    out[ENERGY_LOW_KWH] = measured + estimated * (1 - ESTIMATE_BAND) if any_energy else math.nan
    out[ENERGY_HIGH_KWH] = measured + estimated * (1 + ESTIMATE_BAND) if any_energy else math.nan
    out[ENERGY_ESTIMATED_KWH] = estimated if any_energy else math.nan
    out[ENERGY_MEASURED_SHARE] = measured / labelled_total if labelled_total > 0 else math.nan

    # Best report by the study's search metric; its four ROUGE scores and its config.
    metric_vals = r[study.metric].astype(float)
    if metric_vals.notna().any():
        best_i = metric_vals.idxmax() if study.mode == "max" else metric_vals.idxmin()
        best_row = r.loc[best_i]
        for col in ROUGE_COLUMNS:
            out[BEST_PREFIX + col] = float(best_row[col]) if col in r.columns else math.nan
        out[BEST_CONFIG] = _config_text(best_row)
        out[BEST_TRIAL_ID] = str(best_row[TRIAL_ID])
    else:
        out.update({c: math.nan for c in BEST_ROUGE})
        out[BEST_CONFIG], out[BEST_TRIAL_ID] = "", ""

    # Time, energy and dollars until the first report at or above the ROUGE-L target.
    out[TARGET_ROUGEL] = math.nan if target_rougeL is None else float(target_rougeL)
    out[REACHED_TARGET] = False
    out[TIME_TO_TARGET_S] = out[ENERGY_TO_TARGET_KWH] = out[COST_TO_TARGET_USD] = math.nan
    for col in (CLUSTER_ENERGY_TO_TARGET_KWH, CLUSTER_CO2_TO_TARGET_KG, CLUSTER_COST_TO_TARGET_USD):
        out[col] = math.nan
    if target_rougeL is not None and ROUGEL in r.columns:
        hit = (r[ROUGEL] >= target_rougeL - 1e-12).to_numpy()
        if hit.any():
            i = int(np.argmax(hit))
            out[REACHED_TARGET] = True
            out[TIME_TO_TARGET_S] = float(r[STUDY_ELAPSED_S].iloc[i])
            out[ENERGY_TO_TARGET_KWH] = (
                float(study_cumulative(r, ENERGY_TOTAL_J).iloc[i]) / J_PER_KWH
            )
            out[COST_TO_TARGET_USD] = float(study_cumulative(r, COST_USD).iloc[i])
            for col, (source, divisor) in (
                (CLUSTER_ENERGY_TO_TARGET_KWH, _CLUSTER_X_AXES[X_CLUSTER_ENERGY_KWH]),
                (CLUSTER_CO2_TO_TARGET_KG, _CLUSTER_X_AXES[X_CLUSTER_CO2_KG]),
                (CLUSTER_COST_TO_TARGET_USD, _CLUSTER_X_AXES[X_CLUSTER_COST_USD]),
            ):
                if source in r.columns:
                    out[col] = float(r[source].iloc[i]) / divisor
    return out


def held_out_figures(metadata: StudyMetadata) -> dict[str, Any]:
    """The selected model's test ROUGE (mean over the test examples, with this study's 95 %
    bootstrap interval over them) and its validation score; NaN where the study was not
    evaluated on test (an older study, `data.n_test=0`, or still running)."""
    test = metadata.section("test")
    evaluated = bool(test.get("evaluated"))
    out: dict[str, Any] = {}
    for col in ROUGE_COLUMNS:
        out[TEST_PREFIX + col] = (
            float(test[col]) if evaluated and _finite(test.get(col)) else math.nan
        )
    low, high = (
        (test.get("rougeL_ci95") or [math.nan, math.nan]) if evaluated else (math.nan, math.nan)
    )
    out[TEST_ROUGEL_LOW], out[TEST_ROUGEL_HIGH] = float(low), float(high)
    out[TEST_N] = int(test["n"]) if evaluated else 0
    selection = metadata.section("selection")
    out[SELECTED_VALIDATION] = (
        float(selection.get("validation_score", math.nan)) if selection else math.nan
    )
    return out


def carbon_figures(metadata: StudyMetadata) -> dict[str, Any]:
    """Market-based CO2 (where the study had a factor), embodied emissions (where every node's
    size has a dated row), the SCI per tuned model and per 1,000 summaries, and each node's CPU
    estimate basis; NaN where not available."""
    c = metadata.section("carbon")
    sci = c.get("sci") or {}
    per_1000 = sci.get("per_1000_summaries") or {}

    def number(v: Any) -> float:
        return float(v) if _finite(v) else math.nan

    ce = metadata.section("cluster_energy")
    bases = sorted(
        {
            (n.get("cpu_model") or {}).get("description", "")
            if isinstance(n.get("cpu_model"), dict)
            else str(n.get("cpu_model", ""))
            for n in ce.get("nodes") or []
        }
        - {""}
    )
    return {
        MARKET_CO2_KG: number(c.get("market_based_kg")),
        EMBODIED_KG: number(c.get("embodied_kg")),
        SCI_KG: number(sci.get("kg")),
        SCI_PER_1000_SUMMARIES_KG: number(per_1000.get("operational_kg")),
        CPU_BASIS: "; ".join(bases),
    }


def budget_figures(metadata: StudyMetadata) -> dict[str, Any]:
    """The study budget's unit and amount, what was spent in that unit and the overshoot."""
    budget = metadata.section("budget")

    def number(key: str) -> float:
        return float(budget[key]) if _finite(budget.get(key)) else math.nan

    ce = metadata.section("cluster_energy")
    runs = [ce, *(ce.get("previous_runs") or [])] if ce else []
    co2 = [r["co2_kg"] for r in runs if _finite(r.get("co2_kg"))]
    cost = metadata.section("cost").get("billed_usd")
    return {
        BUDGET_UNIT: str(budget.get("unit", "")),
        BUDGET_AMOUNT: number("amount"),
        BUDGET_SPENT: number("spent"),
        BUDGET_OVERSHOOT: number("overshoot"),
        CLUSTER_CO2: float(sum(co2)) if co2 else math.nan,
        CLUSTER_COST: float(cost) if _finite(cost) else math.nan,
    }


def per_study_summary(studies: Sequence[Study], target_rougeL: float | None = None) -> pd.DataFrame:
    """One row per study (the raw material of `strategy_summary`); target defaults as there."""
    if target_rougeL is None:
        target_rougeL = default_target(studies)
    return pd.DataFrame([study_summary(s, target_rougeL) for s in studies])


# --------------------------------------------------------------------------------------------
# Over seeds, per strategy


def order_strategies(names: Sequence[str]) -> list[str]:
    known = [s for s in STRATEGY_ORDER if s in names]
    return known + sorted(set(names) - set(known))


def strategy_summary(studies: Sequence[Study], target: float | None = None) -> pd.DataFrame:
    """One row per strategy: every figure's mean, std (sample, over seeds), min and max as
    `<figure>_mean` etc., `n_seeds`, and `<figure>_vs_grid` = mean / grid's mean (NaN when no
    grid study is present or grid's mean is 0).

    target: the ROUGE-L to reach; default: 0.01 (one point) below the best ROUGE-L of any study.
    Time/energy/dollars to target are averaged over the seeds that reached it
    (`target_reached_seeds` says how many). Likewise the whole-cluster figures are over the seeds
    whose metadata holds them (`cluster_metered_seeds`; `cluster_energy_basis` says which parts are
    estimated), and `baseline_<rouge>` is the mean lead-k baseline of the seeds that hold one
    (`baseline_seeds`, `baseline_lead_k`).
    """
    if not studies:
        raise ValueError("strategy_summary needs at least one study")
    per_study = per_study_summary(studies, target)
    rows = []
    for strategy in order_strategies(list(per_study[STRATEGY].unique())):
        group = per_study[per_study[STRATEGY] == strategy].sort_values(SEED)
        row: dict[str, Any] = {
            STRATEGY: strategy,
            MODEL: ", ".join(sorted({str(m) for m in group[MODEL]})),
            N_SEEDS: len(group),
            "seeds": ",".join(str(s) for s in group[SEED]),
            N_RUNNING: int(group[RUNNING].sum()),
            TARGET_ROUGEL: float(group[TARGET_ROUGEL].iloc[0]),
            TARGET_REACHED_SEEDS: int(group[REACHED_TARGET].sum()),
        }
        for fig in NUMERIC_FIGURES:
            values = group[fig].astype(float)
            row[f"{fig}_mean"] = values.mean()
            row[f"{fig}_std"] = values.std(ddof=1)  # NaN with one seed: no spread to speak of
            row[f"{fig}_min"] = values.min()
            row[f"{fig}_max"] = values.max()
            row[f"{fig}_iqm"] = iqm(values)
            row[f"{fig}_n"] = int(values.notna().sum())
            # 95 % bootstrap interval of the mean over seeds (NaN below two seeds)
            row[f"{fig}_ci_low"], row[f"{fig}_ci_high"] = bootstrap_ci(values)
        if len(group) == 1:  # one seed: the test interval is over the test examples only
            row[TEST_ROUGEL_LOW] = float(group[TEST_ROUGEL_LOW].iloc[0])
            row[TEST_ROUGEL_HIGH] = float(group[TEST_ROUGEL_HIGH].iloc[0])
        else:
            row[TEST_ROUGEL_LOW], row[TEST_ROUGEL_HIGH] = (
                row[f"{TEST_ROUGEL}_ci_low"],
                row[f"{TEST_ROUGEL}_ci_high"],
            )
        row[BUDGET_UNIT] = ",".join(sorted({str(u) for u in group[BUDGET_UNIT] if u})) or ""
        row[CPU_BASIS] = "; ".join(
            sorted({b for v in group[CPU_BASIS] for b in str(v).split("; ") if b})
        )
        for col in (
            *(f"energy_{comp}_source" for comp in ENERGY_COMPONENTS),
            *(f"cluster_energy_{comp}_source" for comp in CLUSTER_COMPONENTS),
        ):
            labels = {p for v in group[col] for p in str(v).split("+") if p != "none"}
            row[col] = "+".join(sorted(labels)) or "none"
        row[CLUSTER_METERED_SEEDS] = int(group[CLUSTER_METERED].sum())
        row[CLUSTER_ENERGY_BASIS] = cluster_energy_basis(row)
        has_baseline = group[BASELINE_LEAD_K].notna()
        row[BASELINE_SEEDS] = int(has_baseline.sum())
        ks = set(group.loc[has_baseline, BASELINE_LEAD_K].astype(int))
        row[BASELINE_LEAD_K] = float(ks.pop()) if len(ks) == 1 else math.nan
        for col in BASELINE_ROUGE:
            row[col] = group[col].astype(float).mean()  # over the seeds that hold one
        winner = (
            group.loc[group[BEST_PREFIX + ROUGEL].astype(float).idxmax()]
            if group[BEST_PREFIX + ROUGEL].notna().any()
            else group.iloc[0]
        )
        row[BEST_CONFIG] = winner[BEST_CONFIG]
        row[BEST_TRIAL_ID] = winner[BEST_TRIAL_ID]
        row[BEST_SEED] = int(winner[SEED])
        rows.append(row)
    table = pd.DataFrame(rows)
    grid = table[table[STRATEGY] == "grid"]
    for fig in NUMERIC_FIGURES:
        mean = table[f"{fig}_mean"].astype(float)
        base = float(grid[f"{fig}_mean"].iloc[0]) if len(grid) else math.nan
        ok = math.isfinite(base) and base != 0
        table[fig + VS_GRID_SUFFIX] = mean / base if ok else math.nan
    return table


# --------------------------------------------------------------------------------------------
# Counterfactual CO2


def what_if_region(
    studies: Sequence[Study], region_g_per_kwh: float, label: str | None = None
) -> pd.DataFrame:
    """COUNTERFACTUAL CO2: the same energy (and the study's recorded PUE, 1.0 where none was
    recorded) on a grid of `region_g_per_kwh` gCO2e/kWh. One row per strategy (mean and spread
    over seeds) beside the actual CO2; every column that is not actual says `what_if`.

    >>> what_if_region(studies, 278.6, "northeurope")
    """
    if not (isinstance(region_g_per_kwh, (int, float)) and region_g_per_kwh >= 0):
        raise ValueError(
            f"region_g_per_kwh={region_g_per_kwh!r}: give an intensity in gCO2e/kWh, >= 0"
        )
    label = label or f"{region_g_per_kwh:g} gCO2e/kWh"
    rows = []
    for s in studies:
        fig = study_summary(s)
        pue = s.footprint.get("pue")
        rows.append(
            {
                STRATEGY: s.strategy,
                SEED: s.seed,
                ENERGY_KWH: fig[ENERGY_KWH],
                "pue": float(pue) if pue else 1.0,
                "pue_recorded": bool(pue),
                "actual_intensity_g_per_kwh": s.footprint.get("intensity_g_per_kwh", math.nan),
                CO2_KG: fig[CO2_KG],
            }
        )
    per_study = pd.DataFrame(rows)
    per_study["what_if_co2_kg"] = (
        per_study[ENERGY_KWH] * per_study["pue"] * region_g_per_kwh / 1000.0
    )
    out = []
    for strategy in order_strategies(list(per_study[STRATEGY].unique())):
        g = per_study[per_study[STRATEGY] == strategy]
        w = g["what_if_co2_kg"]
        out.append(
            {
                STRATEGY: strategy,
                N_SEEDS: len(g),
                "energy_kwh_mean": g[ENERGY_KWH].mean(),
                "pue": ",".join(f"{p:g}" for p in sorted(set(g["pue"]))),
                "pue_recorded": bool(g["pue_recorded"].all()),
                "actual_co2_kg_mean": g[CO2_KG].mean(),
                "what_if_label": label,
                "what_if_intensity_g_per_kwh": float(region_g_per_kwh),
                "what_if_co2_kg_mean": w.mean(),
                "what_if_co2_kg_std": w.std(ddof=1),
                "what_if_co2_kg_min": w.min(),
                "what_if_co2_kg_max": w.max(),
                "what_if_co2_lb_mean": w.mean() * LB_PER_KG,
                "basis": f"counterfactual: same energy x PUE, grid at {region_g_per_kwh:g} "
                f"gCO2e/kWh ({label})",
            }
        )
    return pd.DataFrame(out)
