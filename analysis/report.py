"""Compare studies in one report: `python -m analysis.report STUDY_DIR [STUDY_DIR ...] --out DIR`.

Writes `report.html` (self-contained: plots embedded as base64 PNG), `report.md`,
`summary.parquet` and `summary.csv` (one row per strategy, see `analysis.summary.strategy_summary`)
into `--out`, and prints their paths. Bad input exits with status 2 and one line on stderr.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd

from analysis import plots
from analysis.document import Section, to_html, to_markdown
from analysis.formatting import interval, num, sig4
from analysis.fronts import (
    HYPERVOLUME,
    front_table,
    hypervolume_by_strategy,
)
from analysis.inference import inference_sections
from analysis.load import Study, StudyLoadError, load_studies, mismatches
from analysis.summary import (
    ENERGY_COMPONENTS,
    common_baseline,
    default_target,
    default_target_rule,
    per_study_summary,
    strategy_summary,
    what_if_region,
)
from analysis.tables import (
    baseline_line,
    benchmark_table,
    carbon_table,
    energy_table,
    figures_table,
    ratios_table,
    statistics_table,
    studies_table,
)
from analysis.verdict import verdicts
from core.measurement import ENERGY_PARTS
from core.schema import (
    BEST_CONFIG,
    BEST_PREFIX,
    BEST_SEED,
    CLUSTER_METERED_SEEDS,
    COST_USD,
    N_SEEDS,
    ROUGEL,
    STRATEGY,
    X_CLUSTER_ENERGY_KWH,
    X_COST_USD,
    X_ENERGY_KWH,
    X_WALL_S,
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


ENERGY_PLOT = "Energy breakdown"


ENERGY_HEAD = "Energy: whole cluster vs the trials' own meters"
ENERGY_NOTE = (
    "Mean ± std [min – max] over the seeds that have each figure; 'estimated' marks a part "
    "computed from a stated model rather than a counter; 'not measured' where no seed "
    "recorded it."
)


CARBON_NOTE = (
    "Operational CO2e is location-based (the grid's average intensity, GHG Protocol Scope 2); a "
    "market-based figure appears where energy.market_intensity_g_per_kwh was given. Embodied "
    "emissions (the VMs' manufacturing share for the time held, Cloud Carbon Footprint's method) "
    "are Scope 3 and shown beside, never added to the CO2e columns. SCI = (E x I + M) / R "
    "(ISO/IEC 21031:2024), R one tuned model (the whole search) or 1,000 summaries of the held-out "
    "split; without M it is operational only, a lower bound. Estimated energy parts carry +-50 %, "
    "the order of the errors wall-meter comparisons report (Jay et al., CCGrid 2023)."
)


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
                "Skipped: cost is not applicable (no study recorded a VM price, e.g. a local "
                "machine).",
                None,
            )
        )
    add(
        "Best ROUGE-L so far vs wall time",
        "Study elapsed time since the study started." + floor_text,
        lambda: plots.plot_best_so_far(studies, x=X_WALL_S, target=target),
    )
    add(
        FRONT_PLOT,
        "Each point is a trial: its best validation ROUGE-L against its share of the whole "
        "cluster's energy (its own meter x the study's cluster / trials ratio: idle time and "
        "start-up included); the black steps join the trials no other trial beats on both.",
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
        f"Target ROUGE-L = {target:.4f} ({how}). Time, energy and dollars to target are means "
        "over the seeds that reached it."
    )
    notes.append(
        "ROUGE scores are F-measures in [0, 1]; best = the report with the best search metric, "
        "and its config."
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


FRONT_PLOT = "Trials: ROUGE-L vs their share of the whole-cluster energy"
FRONT_HEAD = "Hypervolume of each strategy's ROUGE-energy front"
FRONT_NOTE = (
    "The share of the box [0, reference kWh] x [0, 1 ROUGE-L] that a study's front dominates "
    "(larger: better and cheaper trials), mean over seeds with its 95 % bootstrap interval "
    "(none with one seed). One reference for every study: 1.1 x the costliest trial of any. "
    "Single- and multi-objective strategies on the same axes; validation scores."
)


def hypervolume_table(studies: Sequence[Study]) -> pd.DataFrame:
    per_study = front_table(studies)
    by_strategy = hypervolume_by_strategy(per_study)
    basis = ", ".join(sorted(set(per_study["energy_basis"])))
    return pd.DataFrame(
        {
            "strategy": by_strategy["strategy"],
            "seeds": by_strategy["seeds"],
            "hypervolume": [
                num(r[HYPERVOLUME + "_mean"], 4)
                + interval(r["hypervolume_ci_low"], r["hypervolume_ci_high"], lambda v: num(v, 4))
                for _, r in by_strategy.iterrows()
            ],
            "trials on the front (mean)": [num(v, 1) for v in by_strategy["trials_on_front_mean"]],
            "reference": f"{sig4(per_study['reference_kwh'].iloc[0] * 1000)} Wh; {basis}",
        }
    )


def winners_table(summary: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "strategy": summary[STRATEGY],
            "best ROUGE-L": [num(v, 4) for v in summary[BEST_PREFIX + ROUGEL + "_max"]],
            "seed": summary[BEST_SEED],
            "config": summary[BEST_CONFIG],
        }
    )


def what_if_sections(what_if: pd.DataFrame) -> list[Section]:
    table = pd.DataFrame(
        {
            "strategy": what_if[STRATEGY],
            "energy (kWh)": [sig4(v) for v in what_if["energy_kwh_mean"]],
            "actual CO2e (kg)": [sig4(v) for v in what_if["actual_co2_kg_mean"]],
            "COUNTERFACTUAL CO2e (kg)": [sig4(v) for v in what_if["what_if_co2_kg_mean"]],
            "COUNTERFACTUAL CO2e (lb)": [sig4(v) for v in what_if["what_if_co2_lb_mean"]],
            "PUE": what_if["pue"],
        }
    )
    place = what_if["what_if_label"].iloc[0]
    intensity = what_if["what_if_intensity_g_per_kwh"].iloc[0]
    note = (
        "Not measured: the studies' energy × PUE × the given grid intensity"
        + ("" if what_if["pue_recorded"].all() else " (PUE 1.0 where a study recorded none)")
        + "."
    )
    title = f"Counterfactual CO2: the same energy on {place} ({intensity:g} gCO2e/kWh)"
    return [Section(title, note, table, css="warn")]


def sections(
    studies: Sequence[Study],
    summary: pd.DataFrame,
    target: float,
    target_given: bool,
    what_if: pd.DataFrame | None,
) -> list[Section]:
    """The report in order: banners, verdict, benchmark, floor, plots (the energy table after
    its plot), carbon, statistics, figures, ratios, best configurations, what-if, studies, notes."""
    out: list[Section] = []
    differing = mismatches(list(studies))
    if differing:
        out.append(
            Section(
                note="MISMATCHED COMPARISON (--allow-mismatch): these studies differ in "
                + "; ".join(m.describe() for m in differing)
                + ". Their figures are not comparable as a fair benchmark.",
                banner=True,
            )
        )
    running = [s.name for s in studies if s.running]
    if running:
        out.append(
            Section(
                note="PARTIAL: still running, figures so far: " + ", ".join(running), banner=True
            )
        )
    verdict_lines = [
        v.sentence for v in verdicts(studies, per_study_summary(studies, target), target)
    ]
    out.append(Section("Verdict", VERDICT_NOTE, bullets=tuple(verdict_lines)))
    out.append(Section("Benchmark", BENCHMARK_NOTE, benchmark_table(summary), "bench"))
    floor = baseline_line(studies, summary)
    if floor:
        out.append(Section(note=floor, css="floor"))
    energy = Section(ENERGY_HEAD, ENERGY_NOTE, energy_table(summary), "energy", level=3)
    plotted = _plots(studies, summary, target)
    for plot_title, caption, png in plotted:
        out.append(Section(plot_title, caption, plot=png, is_plot=True))
        if plot_title == ENERGY_PLOT:
            out.append(energy)
        if plot_title == FRONT_PLOT:
            out.append(
                Section(FRONT_HEAD, FRONT_NOTE, hypervolume_table(studies), "front", level=3)
            )
    if ENERGY_PLOT not in [t for t, _, _ in plotted]:
        out.append(energy)
    out += [
        Section("Carbon accounting", CARBON_NOTE, carbon_table(summary), "carbon"),
        Section("Statistics over seeds", STATISTICS_NOTE, statistics_table(summary), "stats"),
        Section(
            "Figures per strategy",
            "mean ± std [min – max] over seeds",
            figures_table(summary),
            "figures",
        ),
    ]
    if (summary[STRATEGY] == "grid").any():
        out.append(
            Section(
                "Ratio to grid",
                "each figure's mean divided by grid's mean",
                ratios_table(summary),
                "ratios",
            )
        )
    out.append(Section("Best configuration per strategy", table=winners_table(summary)))
    if what_if is not None:
        out += what_if_sections(what_if)
    out += inference_sections(studies)
    out.append(Section("Studies", table=studies_table(studies)))
    out.append(Section("Notes", bullets=tuple(_notes(studies, summary, target, target_given))))
    return out


def render(
    studies: Sequence[Study],
    summary: pd.DataFrame,
    target: float,
    target_given: bool,
    what_if: pd.DataFrame | None,
    allowed_mismatch: bool = False,
) -> tuple[str, str]:
    """The report as (html, markdown), from one list of sections."""
    title = (
        f"greentune: {len(summary)} strategies on {studies[0].dataset} "
        f"({studies[0].metric}, {len(studies)} studies)"
    )
    parts = sections(studies, summary, target, target_given, what_if)
    return to_html(title, parts), to_markdown(title, parts)


# --------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis.report",
        description="Compare greentune studies (strategies x seeds): best-so-far curves, "
        "energy, CO2, "
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
        help="ROUGE-L (F-measure in [0, 1]) to reach; default: 0.01 below the best any study "
        "reached",
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
                f"--target-rougeL {args.target_rougeL}: ROUGE-L is an F-measure, give a value "
                "in [0, 1]"
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
        experiments = [s.strategy == "experiments" for s in studies]
        if any(experiments) and not all(experiments):
            raise ValueError(
                "an experiments study and tuning studies in one report; report them apart "
                "(the experiments measure techniques, the others compare strategies)"
            )
    except (StudyLoadError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if all(experiments):
        return write_experiments_report(studies, Path(args.out))
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


EXPERIMENT_OUTPUTS = ("report.html", "report.md", "effects.parquet", "effects.csv")


def write_experiments_report(studies: Sequence[Study], out: Path) -> int:
    """The experiments report and every trial's measures (`analysis.effects.trial_measures`)."""
    from analysis.effects import trial_measures
    from analysis.experiments_report import experiments_sections

    parts = experiments_sections(studies)
    title = f"greentune: efficiency experiments on {studies[0].dataset} ({len(studies)} studies)"
    measures = pd.concat(
        [trial_measures(s.reports, s.trials).assign(study=s.name) for s in studies]
    )
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / name for name in EXPERIMENT_OUTPUTS]
    paths[0].write_text(to_html(title, parts), encoding="utf-8")
    paths[1].write_text(to_markdown(title, parts), encoding="utf-8")
    measures.to_parquet(paths[2], index=False)
    measures.to_csv(paths[3], index=False)
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
