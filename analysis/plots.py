"""Figures comparing strategies; each returns a matplotlib `Figure` (Agg canvas, no pyplot).

Sized for a 1200 px wide page at `DPI` (12 in x 100 dpi), fonts at 12-14 pt.

    >>> fig = plot_best_so_far(studies, x=X_ENERGY_KWH)
    >>> png = figure_png(fig)                      # bytes, for embedding
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.fronts import ENERGY_BASIS, SHARE_KWH, trial_points
from analysis.summary import (
    ENERGY_COMPONENTS,
    best_so_far,
    common_baseline,
    order_strategies,
    pareto_front,
)
from core.schema import (
    BEST_PREFIX,
    CLUSTER_ENERGY_BASIS,
    CLUSTER_ENERGY_KWH,
    ENERGY_KWH,
    ENERGY_MEASURED_SHARE,
    OVERHEAD_SHARE,
    RESTORED_FROM,
    ROUGEL,
    SEGMENT,
    STOP_BUDGET,
    STOP_EARLY,
    STOP_ERROR,
    STOP_REASON,
    STOP_SCHEDULER,
    STRATEGY,
    STUDY_ELAPSED_S,
    TRIAL_EVAL_S,
    TRIAL_ID,
    TRIAL_TRAIN_S,
    X_CLUSTER_ENERGY_KWH,
    X_COST_USD,
    X_DEVICE_H,
    X_ENERGY_KWH,
    X_WALL_S,
)
from core.strategies import CATALOGUE

if TYPE_CHECKING:
    from analysis.load import Study

DPI = 100
WIDTH_IN = 12.0
_STYLE = {
    "font.size": 13,
    "axes.titlesize": 15,
    "axes.labelsize": 13,
    "legend.fontsize": 12,
    "xtick.labelsize": 12,
    "ytick.labelsize": 12,
    "axes.grid": True,
    "grid.alpha": 0.3,
}
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
_COMPONENT_COLORS = {"gpu": "#4c72b0", "cpu": "#dd8452", "ram": "#55a868"}
BASELINE_COLOR = "#6b6b6b"
CLUSTER_LABEL = "whole cluster, study start to end (mean over seeds)"


def strategy_colors(strategies: Sequence[str]) -> dict[str, str]:
    """Each strategy's own colour (core.strategies.CATALOGUE); a name it does not know (a study
    of an older greentune) takes the palette's colours in turn."""
    out, i = {}, 0
    for s in order_strategies(list(strategies)):
        if s in CATALOGUE:
            out[s] = CATALOGUE[s].color
        else:
            out[s] = _PALETTE[i % len(_PALETTE)]
            i += 1
    return out


def figure_png(fig: Figure, dpi: int = DPI) -> bytes:
    """The figure as PNG bytes."""
    buf = io.BytesIO()
    FigureCanvasAgg(fig)
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return buf.getvalue()


def _new_figure(height_in: float, nrows: int = 1) -> tuple[Figure, list]:
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(nrows, 1, squeeze=False)[:, 0]
    return fig, list(axes)


def _note_figure(title: str, note: str) -> Figure:
    with matplotlib.rc_context(_STYLE):
        fig, (ax,) = _new_figure(2.0)
        ax.axis("off")
        ax.set_title(title)
        ax.text(0.5, 0.45, note, ha="center", va="center", fontsize=14, wrap=True)
    return fig


def _time_scale(max_s: float) -> tuple[float, str]:
    if not math.isfinite(max_s) or max_s < 2 * 3600:
        return 60.0, "min"
    return 3600.0, "h"


def _energy_scale(max_kwh: float) -> tuple[float, str]:
    """Wh for small studies (a CPU smoke run spends milli-kWh), kWh otherwise."""
    if math.isfinite(max_kwh) and max_kwh < 1.0:
        return 1e-3, "Wh"
    return 1.0, "kWh"


# --------------------------------------------------------------------------------------------
# Best so far


_X_LABELS = {
    X_CLUSTER_ENERGY_KWH: "whole-cluster energy",
    X_ENERGY_KWH: "the trials' cumulative energy",
    X_COST_USD: "cumulative attributed cost of the study (USD)",
    X_WALL_S: "study wall time",
    X_DEVICE_H: "cumulative device time (device-hours)",
}


def _step_on_grid(xs: np.ndarray, ys: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Value of the right-continuous step function (xs, ys) at each grid point; NaN before xs[0]."""
    idx = np.searchsorted(xs, grid, side="right") - 1
    return np.where(idx >= 0, ys[np.clip(idx, 0, len(ys) - 1)], np.nan)


def plot_best_so_far(
    studies: Sequence[Study],
    x: str = X_ENERGY_KWH,
    metric: str = ROUGEL,
    mode: str = "max",
    band: str = "minmax",
    target: float | None = None,
    baseline: bool = True,
) -> Figure:
    """Best-so-far `metric` against cumulative energy, dollars, or wall time: one line per strategy
    (the mean over seeds) with a band over seeds (`minmax` or `std`). After a seed's study ends,
    its final best is carried to the right. Strategies without the x figure (no price) are left
    out with a note; if none has it the figure is only the note.

    With `baseline`, the lead-k extractive baseline of the studies' metadata (mean over the
    studies that hold one) is a gray dashed line labelled `lead-<k> baseline`: the floor a model
    must beat. Nothing is drawn where no study holds one."""
    if band not in ("minmax", "std", "ci95"):
        raise ValueError(f"band={band!r}: use minmax, std or ci95")
    curves: dict[str, list[tuple[np.ndarray, np.ndarray, bool]]] = {}
    skipped = []
    for s in studies:
        c = best_so_far(s.reports, metric, mode, x=x).dropna()
        if c.empty:
            skipped.append(s.name)
            continue
        xs = np.maximum.accumulate(c[x].to_numpy(float))
        curves.setdefault(s.strategy, []).append(
            (xs, c[BEST_PREFIX + metric].to_numpy(float), s.running)
        )
    title = f"Best {metric} so far vs {_X_LABELS.get(x, x)}"
    if not curves:
        what = "dollars" if x == X_COST_USD else x
        return _note_figure(
            title, f"Not applicable: no study recorded {what} (e.g. a local machine has no price)."
        )

    max_x = max(float(xs.max()) for runs in curves.values() for xs, _, _ in runs)
    if x == X_WALL_S:
        scale, unit = _time_scale(max_x)
        xlabel = f"study wall time ({unit})"
    elif x in (X_ENERGY_KWH, X_CLUSTER_ENERGY_KWH):
        scale, unit = _energy_scale(max_x)
        xlabel = f"{_X_LABELS[x]} ({unit})"
    else:
        scale, xlabel = 1.0, _X_LABELS.get(x, x)
    colors = strategy_colors(list(curves))
    with matplotlib.rc_context(_STYLE):
        fig, (ax,) = _new_figure(5.5)
        for strategy in order_strategies(list(curves)):
            runs = curves[strategy]
            grid = np.unique(np.concatenate([xs for xs, _, _ in runs] + [[max_x]]))
            values = np.vstack([_step_on_grid(xs, ys, grid) for xs, ys, _ in runs])
            all_started = ~np.isnan(values).any(axis=0)
            grid, values = grid[all_started], values[:, all_started]
            mean = values.mean(axis=0)
            if band == "minmax" or len(runs) < 2:
                lo, hi = values.min(axis=0), values.max(axis=0)
            elif band == "ci95":  # pointwise percentile bootstrap of the mean over seeds
                draws = np.random.default_rng(0).integers(0, len(runs), size=(2000, len(runs)))
                means = values[draws].mean(axis=1)
                lo, hi = np.quantile(means, 0.025, axis=0), np.quantile(means, 0.975, axis=0)
            else:
                sd = values.std(axis=0, ddof=1)
                lo, hi = mean - sd, mean + sd
            partial = any(r for _, _, r in runs)
            label = (
                f"{strategy} ({len(runs)} "
                f"seed{'s' if len(runs) != 1 else ''}{', partial' if partial else ''})"
            )
            color = colors[strategy]
            ax.step(grid / scale, mean, where="post", color=color, lw=2.2, label=label)
            if len(runs) > 1:
                ax.fill_between(grid / scale, lo, hi, step="post", color=color, alpha=0.18, lw=0)
        if target is not None and math.isfinite(target):
            ax.axhline(
                target, color="black", ls="--", lw=1.2, label=f"target {metric} = {target:.4f}"
            )
        floor = common_baseline(studies, metric) if baseline else None
        if floor is not None:
            ax.axhline(
                floor["value"],
                color=BASELINE_COLOR,
                ls="--",
                lw=1.6,
                label=f"{floor['label']} ({metric} = {floor['value']:.4f})",
            )
        ax.set_xlabel(xlabel)
        ax.set_ylabel(f"best {metric} so far (F-measure)")
        band_text = {
            "minmax": "min-max over seeds",
            "std": "mean ± 1 std over seeds",
            "ci95": "95 % bootstrap interval of the mean over seeds",
        }[band]
        ax.set_title(f"{title}\n(line: mean; band: {band_text})")
        ax.set_xlim(left=0)
        # outside the axes: diverged trials sit at the bottom right, where a legend would hide them
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        if skipped:
            ax.text(
                0.01,
                0.02,
                "no data for: " + ", ".join(skipped),
                transform=ax.transAxes,
                fontsize=10,
            )
    return fig


# --------------------------------------------------------------------------------------------
# Trials: quality vs energy, with the Pareto front


def plot_trials_pareto(studies: Sequence[Study], metric: str = ROUGEL, mode: str = "max") -> Figure:
    """Every trial's best `metric` against its share of the whole-cluster energy
    (`analysis.fronts`), colored by strategy; thin steps: each strategy's front (its seeds
    pooled); black: the front over all trials."""
    tables = [trial_points(s) for s in studies]
    trials = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    y = BEST_PREFIX + metric
    title = f"All trials: best {metric} vs energy, with the Pareto fronts"
    if trials.empty or trials[[SHARE_KWH, y]].dropna().empty:
        return _note_figure(title, "No trial has both an energy figure and a score.")
    data = trials.dropna(subset=[SHARE_KWH, y])
    scale, unit = _energy_scale(float(data[SHARE_KWH].max()))
    colors = strategy_colors(list(data[STRATEGY].unique()))
    front = pareto_front(data, SHARE_KWH, y, "min", mode)
    with matplotlib.rc_context(_STYLE):
        fig, (ax,) = _new_figure(5.5)
        for strategy in order_strategies(list(data[STRATEGY].unique())):
            d = data[data[STRATEGY] == strategy]
            ax.scatter(
                d[SHARE_KWH] / scale,
                d[y],
                s=42,
                alpha=0.75,
                color=colors[strategy],
                edgecolor="white",
                lw=0.6,
                label=f"{strategy} ({len(d)} trials)",
            )
            own = pareto_front(d, SHARE_KWH, y, "min", mode)
            ax.step(own[SHARE_KWH] / scale, own[y], where="post", color=colors[strategy], lw=1)
        ax.step(
            front[SHARE_KWH] / scale,
            front[y],
            where="post",
            color="black",
            lw=1.5,
            label=f"Pareto front ({len(front)} trials)",
        )
        ax.scatter(
            front[SHARE_KWH] / scale, front[y], s=110, facecolor="none", edgecolor="black", lw=1.5
        )
        basis = ", ".join(sorted(set(data[ENERGY_BASIS])))
        ax.set_xlabel(f"energy of the trial ({unit}; {basis})")
        ax.set_ylabel(f"best {metric} of the trial (F-measure)")
        ax.set_title(title)
        ax.set_xlim(left=0)
        # outside the axes: diverged trials sit at the bottom right, where a legend would hide them
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        dropped = sum(len(s.reports.groupby(TRIAL_ID)) for s in studies) - len(data)
        if dropped > 0:
            ax.text(
                0.01,
                0.02,
                f"{dropped} trial(s) without energy or score not shown",
                transform=ax.transAxes,
                fontsize=10,
            )
    return fig


# --------------------------------------------------------------------------------------------
# Timeline


def assign_slots(first_s: Sequence[float], last_s: Sequence[float]) -> list[int]:
    """Greedy lanes: each trial (in start order) takes the lowest slot free before it starts."""
    order = sorted(range(len(first_s)), key=lambda i: (first_s[i], last_s[i]))
    ends: list[float] = []
    slots = [0] * len(first_s)
    for i in order:
        for k, end in enumerate(ends):
            if end < first_s[i]:
                slots[i], ends[k] = k, last_s[i]
                break
        else:
            slots[i] = len(ends)
            ends.append(last_s[i])
    return slots


_STOP_MARKERS = {  # stop reason -> (marker, color, legend text)
    STOP_SCHEDULER: ("X", "black", "stopped by the scheduler (ASHA)"),
    STOP_EARLY: ("v", "#555555", "early stopping"),
    STOP_BUDGET: ("|", "#8c564b", "stopped by the study budget"),
    STOP_ERROR: ("X", "red", "error"),
}


def _restore_points(reports: pd.DataFrame) -> pd.DataFrame:
    """First report of each segment that started from another trial's checkpoint."""
    if RESTORED_FROM not in reports.columns:
        return reports.iloc[0:0]
    r = reports
    src = r[RESTORED_FROM].astype("string")
    from_other = src.notna() & (src != "") & (src != r[TRIAL_ID].astype("string"))
    if SEGMENT in r.columns:
        new_segment = r.groupby(TRIAL_ID, sort=False)[SEGMENT].diff().fillna(0) != 0
    else:
        new_segment = src.groupby(r[TRIAL_ID], sort=False).transform(lambda v: v != v.shift())
    return r[from_other & new_segment.astype(bool)]


def _trial_spans(reports: pd.DataFrame) -> pd.DataFrame:
    """Per trial: first and last report time, and an estimated start (the first report less the
    train + eval seconds behind it, where the reports carry them; else the first report)."""
    r = reports.sort_values(STUDY_ELAPSED_S, kind="stable")
    g = r.groupby(TRIAL_ID, sort=False)
    span = pd.DataFrame({"first_s": g[STUDY_ELAPSED_S].min(), "last_s": g[STUDY_ELAPSED_S].max()})
    lead = pd.Series(0.0, index=span.index)
    for col in (TRIAL_TRAIN_S, TRIAL_EVAL_S):
        if col in r.columns:
            lead = lead + g[col].first().astype(float).fillna(0.0)
    span["start_s"] = (span["first_s"] - lead.clip(lower=0)).clip(lower=0)
    return span.reset_index()


def plot_trial_timeline(studies: Sequence[Study]) -> Figure:
    """One panel per study: a bar per trial from its first to its last report, packed into slots
    (concurrent lanes); diamonds where a PBT segment restored from another trial, markers where
    a trial was stopped (ASHA's scheduler stop, early stopping, budget, error)."""
    studies = list(studies)
    if not studies:
        return _note_figure("Trial timeline", "No studies.")
    spans, max_s = [], 0.0
    for s in studies:
        span = _trial_spans(s.reports)
        span["slot"] = assign_slots(list(span["start_s"]), list(span["last_s"]))
        reasons = (
            s.trials.set_index(TRIAL_ID)[STOP_REASON]
            if STOP_REASON in s.trials
            else pd.Series(dtype=object)
        )
        span[STOP_REASON] = span[TRIAL_ID].map(reasons)
        spans.append(span)
        max_s = max(max_s, float(span["last_s"].max()) if len(span) else 0.0)
    scale, unit = _time_scale(max_s)
    heights = [
        max(1.6, 0.32 * (int(sp["slot"].max()) + 1) + 1.0) if len(sp) else 1.6 for sp in spans
    ]
    min_width = max_s / scale * 0.004
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH_IN, sum(heights) + 0.9), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(len(studies), 1, squeeze=False, sharex=True, height_ratios=heights)[
            :, 0
        ]
        colors = strategy_colors([s.strategy for s in studies])
        used = set()
        for ax, s, span in zip(axes, studies, spans, strict=True):
            color = colors[s.strategy]
            lead = (span["first_s"] - span["start_s"]) / scale
            if (lead > 0).any():
                ax.barh(
                    span["slot"],
                    lead,
                    left=span["start_s"] / scale,
                    height=0.7,
                    color=color,
                    alpha=0.35,
                    edgecolor="white",
                )
                used.add("lead")
            width = np.maximum((span["last_s"] - span["first_s"]) / scale, min_width)
            ax.barh(
                span["slot"],
                width,
                left=span["first_s"] / scale,
                height=0.7,
                color=color,
                alpha=0.85,
                edgecolor="white",
            )
            slot_of = dict(zip(span[TRIAL_ID], span["slot"], strict=True))
            rp = _restore_points(s.reports)
            if len(rp):
                ax.scatter(
                    rp[STUDY_ELAPSED_S] / scale,
                    rp[TRIAL_ID].map(slot_of),
                    marker="D",
                    s=38,
                    color="gold",
                    edgecolor="black",
                    lw=0.8,
                    zorder=3,
                )
                used.add("restore")
            for reason, (marker, mcolor, _) in _STOP_MARKERS.items():
                d = span[span[STOP_REASON] == reason]
                if len(d):
                    ax.scatter(
                        d["last_s"] / scale, d["slot"], marker=marker, s=70, color=mcolor, zorder=4
                    )
                    used.add(reason)
            n_slots = int(span["slot"].max()) + 1 if len(span) else 1
            ax.set_ylim(n_slots - 0.5, -0.5)
            ax.set_yticks(
                range(n_slots) if n_slots <= 12 else range(0, n_slots, max(1, n_slots // 8))
            )
            ax.set_ylabel("slot")
            state = " - RUNNING (partial)" if s.running else ""
            ax.set_title(
                f"{s.name}: {len(span)} trials in {n_slots} slots{state}", fontsize=13, loc="left"
            )
            ax.grid(axis="y", alpha=0)
        axes[-1].set_xlabel(f"study time ({unit})")
        handles = []
        if "lead" in used:
            handles.append(
                Patch(
                    facecolor="gray",
                    alpha=0.35,
                    label="before the first report (train + eval time)",
                )
            )
        handles.append(Patch(facecolor="gray", alpha=0.85, label="first to last report"))
        if "restore" in used:
            handles.append(
                Line2D(
                    [],
                    [],
                    marker="D",
                    ls="",
                    color="gold",
                    markeredgecolor="black",
                    label="PBT: restored from another trial",
                )
            )
        for reason, (marker, mcolor, text) in _STOP_MARKERS.items():
            if reason in used:
                handles.append(
                    Line2D([], [], marker=marker, ls="", color=mcolor, markersize=9, label=text)
                )
        if handles:
            fig.legend(
                handles=handles,
                loc="outside lower center",
                ncols=min(len(handles), 4),
                frameon=False,
            )
        axes[-1].set_xlim(left=0)
        fig.suptitle("Trial timeline per slot", fontsize=15, x=0.01, ha="left")
    return fig


# --------------------------------------------------------------------------------------------
# Energy breakdown


def plot_energy_breakdown(summary: pd.DataFrame) -> Figure:
    """Stacked GPU / CPU / RAM energy of the trials' own meters per strategy (mean over seeds) from
    `strategy_summary`, with the min-max of the total over seeds and the measured share written
    above each bar. Where the studies recorded the whole cluster's energy, a dashed outline shows
    the cluster total (mean over the seeds that have it) around the bar, and the text above it
    the overhead (cluster - trials) as a share of the cluster, `estimated` where any part is."""
    title = "Energy per strategy: the trials' own meters by component (mean over seeds)"
    cols = {comp: f"{kwh}_mean" for comp, (_, _, kwh) in ENERGY_COMPONENTS.items()}
    cluster_col = f"{CLUSTER_ENERGY_KWH}_mean"
    cluster = (
        summary[cluster_col].to_numpy(float)
        if cluster_col in summary
        else np.full(len(summary), np.nan)
    )
    trials_missing = summary.empty or summary[list(cols.values())].isna().all().all()
    if trials_missing and not np.isfinite(cluster).any():
        return _note_figure(title, "No energy figures were recorded.")
    biggest = np.nanmax(np.r_[summary[f"{ENERGY_KWH}_max"].to_numpy(float), cluster, 0.0])
    scale, unit = _energy_scale(float(biggest))
    strategies = list(summary[STRATEGY])
    xs = np.arange(len(strategies))
    cluster = cluster / scale
    has_cluster = np.isfinite(cluster)
    with matplotlib.rc_context(_STYLE):
        fig, (ax,) = _new_figure(6.0)
        bottom = np.zeros(len(strategies))
        for comp, col in cols.items():
            values = summary[col].fillna(0).to_numpy(float) / scale
            sources = summary.get(f"energy_{comp}_source", pd.Series([""] * len(strategies)))
            estimated = sources.astype(str).str.contains("estimated").to_numpy()
            ax.bar(
                xs,
                values,
                bottom=bottom,
                width=0.55,
                color=_COMPONENT_COLORS[comp],
                hatch=["//" if e else "" for e in estimated],
                edgecolor="white",
                label=comp.upper(),
            )
            bottom += values
        if has_cluster.any():
            ax.bar(
                xs[has_cluster],
                cluster[has_cluster],
                width=0.75,
                fill=False,
                edgecolor="black",
                ls="--",
                lw=1.6,
                zorder=3,
                label=CLUSTER_LABEL,
            )
        total = summary[f"{ENERGY_KWH}_mean"].to_numpy(float) / scale
        lo = total - summary[f"{ENERGY_KWH}_min"].to_numpy(float) / scale
        hi = summary[f"{ENERGY_KWH}_max"].to_numpy(float) / scale - total
        ax.errorbar(
            xs,
            total,
            yerr=[np.nan_to_num(lo), np.nan_to_num(hi)],
            fmt="none",
            ecolor="black",
            capsize=6,
            lw=1.3,
        )
        heads = np.nanmax(
            np.vstack([bottom, np.nan_to_num(total + hi), np.nan_to_num(cluster)]), axis=0
        )
        top = float(heads.max())
        overhead = (
            summary[f"{OVERHEAD_SHARE}_mean"].to_numpy(float)
            if f"{OVERHEAD_SHARE}_mean" in summary
            else np.full(len(summary), np.nan)
        )
        basis = summary.get(CLUSTER_ENERGY_BASIS, pd.Series([""] * len(strategies))).astype(str)
        for i, share in enumerate(summary[f"{ENERGY_MEASURED_SHARE}_mean"]):
            lines = ["measured: n/a" if not math.isfinite(share) else f"{share:.0%} measured"]
            if has_cluster[i]:
                gap = (
                    "overhead n/a"
                    if not math.isfinite(overhead[i])
                    else f"overhead {overhead[i]:.0%}"
                )
                lines.append(gap)
                if "estimated" in basis.iloc[i]:
                    lines.append("(estimated)")
            else:
                lines += ["cluster:", "not measured"]
            ax.text(
                xs[i],
                heads[i] + top * 0.03,
                "\n".join(lines),
                ha="center",
                va="bottom",
                fontsize=11,
            )
        ax.set_xticks(
            xs,
            [
                f"{s}\n({n} seed{'s' if n != 1 else ''})"
                for s, n in zip(strategies, summary["n_seeds"], strict=True)
            ],
        )
        ax.set_ylim(0, top * 1.35 if top > 0 else 1)
        ax.set_ylabel(f"energy ({unit})")
        ax.set_title(title + ("\nwhole cluster outlined" if has_cluster.any() else ""))
        handles = [Patch(facecolor=_COMPONENT_COLORS[c], label=c.upper()) for c in cols]
        handles.append(
            Patch(facecolor="white", edgecolor="gray", hatch="//", label="estimated (not measured)")
        )
        handles.append(
            Line2D(
                [],
                [],
                color="black",
                marker="_",
                ls="",
                markersize=12,
                label="trials' total: min-max over seeds",
            )
        )
        if has_cluster.any():
            handles.append(
                Patch(fill=False, edgecolor="black", ls="--", lw=1.6, label=CLUSTER_LABEL)
            )
        fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False)
    return fig


EFFECT_PANELS = (  # (measure of analysis.effects.MEASURES, panel title)
    ("memory", "peak memory"),
    ("speed", "samples/s"),
    ("energy", "energy"),
    ("accuracy", "test ROUGE-L"),
)


def plot_effects(changes: dict[str, dict[str, Any]], has_gpu: bool) -> Figure:
    """Each variation's change against its comparison (dot: mean over repeats, bar: 95 %
    t-interval) in memory (GPU where there is one, else RAM), speed, energy and test ROUGE-L:
    relative (%) but ROUGE-L in points. A dot right of the zero line means more of it."""
    title = "Effects of each technique against its comparison (mean, 95 % interval over seeds)"
    if not changes:
        return _note_figure(title, "No variation has finished against its comparison yet.")
    names = list(changes)[::-1]  # first variation on top
    ys = np.arange(len(names))
    with matplotlib.rc_context(_STYLE):
        fig = Figure(figsize=(WIDTH_IN, 1.8 + 0.32 * len(names)), dpi=DPI, layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(1, len(EFFECT_PANELS), sharey=True, squeeze=False)[0]
        for ax, (measure, label) in zip(axes, EFFECT_PANELS):
            key = ("vram" if has_gpu else "ram") if measure == "memory" else measure
            values = [changes[n][key] for n in names]
            mean = np.array([c.mean for c in values], dtype=float)
            low = np.array([c.low for c in values], dtype=float)
            high = np.array([c.high for c in values], dtype=float)
            known = np.isfinite(low) & np.isfinite(high)
            err = np.vstack([np.where(known, mean - low, 0), np.where(known, high - mean, 0)])
            ax.errorbar(mean, ys, xerr=err, fmt="o", color=_PALETTE[0], ecolor="#888", capsize=3)
            ax.axvline(0, color="black", lw=1)
            unit = values[0].unit if values else "%"
            memory = "GPU memory" if has_gpu else "RAM"
            ax.set_title(memory if measure == "memory" else label)
            ax.set_xlabel(f"change ({'ROUGE-L points' if unit == 'points' else unit})")
        axes[0].set_yticks(ys, names)
        fig.suptitle(title)
    return fig
