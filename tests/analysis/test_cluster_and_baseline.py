"""Whole-cluster energy (metadata.json `cluster_energy`) and the lead-k baseline (`baseline`):
the figures, the plots and the report, checked against hand-computed numbers (no Ray)."""

from __future__ import annotations

import math
import statistics
from html import escape

import pytest
from analysis_fixtures import (
    BASELINE,
    GRID_CLUSTER,
    GRID_TOTAL_J,
    asha_rows,
    cluster_energy,
    grid_rows,
    report_row,
    write_study,
)

from analysis import plots
from analysis.load import load_studies
from analysis.report import ENERGY_HEAD, main
from analysis.summary import (
    CLUSTER_FIGURES,
    J_PER_KWH,
    cluster_energy_basis,
    cluster_energy_figures,
    common_baseline,
    per_study_summary,
    strategy_summary,
    study_baseline,
)
from analysis.tables import baseline_line, energy_table
from core.metadata import StudyMetadata
from core.schema import (
    BASELINE_LEAD_K,
    BASELINE_SEEDS,
    CLUSTER_ENERGY_BASIS,
    CLUSTER_ENERGY_CPU_KWH,
    CLUSTER_ENERGY_GPU_KWH,
    CLUSTER_ENERGY_KWH,
    CLUSTER_ENERGY_RAM_KWH,
    CLUSTER_METERED,
    CLUSTER_METERED_SEEDS,
    CLUSTER_NODES,
    OVERHEAD_ENERGY_KWH,
    OVERHEAD_SHARE,
    STARTUP_S,
    STRATEGY,
    X_COST_USD,
    X_ENERGY_KWH,
    X_WALL_S,
)

pytestmark = pytest.mark.timeout(120)

SHARE_0, SHARE_1 = 2825 / 7200, 7875 / 21000  # overhead / cluster of grid seeds 0 and 1


def _write(tmp_path, *, cluster=True, baseline=True):
    """grid seeds 0 and 1 (with the whole-cluster readings of GRID_CLUSTER), asha seed 0 (an
    older study: no cluster reading); the lead-3 baseline in every study."""

    def meta(seed):
        out = {"baseline": BASELINE} if baseline else {}
        if cluster and seed is not None:
            out["cluster_energy"] = GRID_CLUSTER[seed]
        return out

    return [
        write_study(tmp_path, "grid", 0, grid_rows(1.0), wall_s=400, metadata=meta(0)),
        write_study(tmp_path, "grid", 1, grid_rows(3.0), wall_s=600, metadata=meta(1)),
        write_study(
            tmp_path,
            "asha",
            0,
            asha_rows(),
            {"c": "scheduler_stopped"},
            wall_s=250,
            metadata=meta(None),
        ),
    ]


@pytest.fixture
def studies(tmp_path):
    return load_studies(_write(tmp_path))


def row_of(table, strategy):
    return table.set_index(STRATEGY).loc[strategy]


# --------------------------------------------------------------------------------------------
# Figures


def test_cluster_energy_of_one_study(studies):
    t = per_study_summary(studies, target_rougeL=0.34).set_index("study")
    g0 = t.loc["grid-tiny-bart-builtin-seed0"]
    assert g0[CLUSTER_ENERGY_KWH] == pytest.approx(7200 / J_PER_KWH)
    assert g0[CLUSTER_ENERGY_GPU_KWH] == pytest.approx(5000 / J_PER_KWH)
    assert g0[CLUSTER_ENERGY_CPU_KWH] == pytest.approx(1500 / J_PER_KWH)
    assert g0[CLUSTER_ENERGY_RAM_KWH] == pytest.approx(700 / J_PER_KWH)
    # overhead = whole cluster - the trials' own meters (4375 J), and its share of the cluster
    assert g0[OVERHEAD_ENERGY_KWH] == pytest.approx((7200 - GRID_TOTAL_J) / J_PER_KWH)
    assert g0[OVERHEAD_SHARE] == pytest.approx(SHARE_0)
    assert (g0[CLUSTER_METERED], g0[CLUSTER_NODES]) == (True, 1)
    assert g0["cluster_energy_gpu_source"] == "counter"
    assert g0["cluster_energy_cpu_source"] == g0["cluster_energy_ram_source"] == "estimated"
    assert g0[CLUSTER_ENERGY_BASIS] == "estimated: CPU, RAM"
    g1 = t.loc["grid-tiny-bart-builtin-seed1"]  # two nodes, summed
    assert g1[CLUSTER_NODES] == 2
    assert g1[CLUSTER_ENERGY_KWH] == pytest.approx(21000 / J_PER_KWH)
    assert g1[CLUSTER_ENERGY_GPU_KWH] == pytest.approx(15000 / J_PER_KWH)
    assert g1[OVERHEAD_ENERGY_KWH] == pytest.approx(7875 / J_PER_KWH)
    assert g1[OVERHEAD_SHARE] == pytest.approx(0.375)
    # an older study without a cluster reading: NaN ("not measured"), never zero
    a0 = t.loc["asha-tiny-bart-builtin-seed0"]
    assert all(math.isnan(a0[f]) for f in CLUSTER_FIGURES)
    assert (a0[CLUSTER_METERED], a0[CLUSTER_NODES]) == (False, 0)
    assert a0[CLUSTER_ENERGY_BASIS] == "not measured"


def test_cluster_energy_over_seeds(studies):
    t = strategy_summary(studies, target=0.34)
    grid, asha = row_of(t, "grid"), row_of(t, "asha")
    c0, c1 = 7200 / J_PER_KWH, 21000 / J_PER_KWH
    assert grid[f"{CLUSTER_ENERGY_KWH}_mean"] == pytest.approx((c0 + c1) / 2)
    assert grid[f"{CLUSTER_ENERGY_KWH}_std"] == pytest.approx(statistics.stdev([c0, c1]))
    assert grid[f"{CLUSTER_ENERGY_KWH}_min"] == pytest.approx(c0)
    assert grid[f"{CLUSTER_ENERGY_KWH}_max"] == pytest.approx(c1)
    assert grid[f"{CLUSTER_ENERGY_CPU_KWH}_mean"] == pytest.approx(3000 / J_PER_KWH)
    assert grid[f"{OVERHEAD_ENERGY_KWH}_mean"] == pytest.approx((2825 + 7875) / 2 / J_PER_KWH)
    assert grid[f"{OVERHEAD_SHARE}_mean"] == pytest.approx((SHARE_0 + SHARE_1) / 2)
    assert grid[f"{OVERHEAD_SHARE}_min"] == pytest.approx(0.375)
    assert grid[CLUSTER_METERED_SEEDS] == 2 and grid[CLUSTER_ENERGY_BASIS] == "estimated: CPU, RAM"
    assert grid[f"{CLUSTER_ENERGY_KWH}_vs_grid"] == 1.0
    assert asha[CLUSTER_METERED_SEEDS] == 0 and asha[CLUSTER_ENERGY_BASIS] == "not measured"
    assert all(math.isnan(asha[f"{f}_mean"]) for f in CLUSTER_FIGURES)
    assert math.isnan(asha[f"{CLUSTER_ENERGY_KWH}_vs_grid"])


def test_cluster_energy_cpu_only_is_estimated_and_basis_labels():
    # a CPU machine: no GPU counter; CPU and RAM estimated -> the whole figure is an estimate
    reading = cluster_energy([{"gpu_j": None, "cpu_j": 900, "ram_j": 180}], 600.0)
    fig = cluster_energy_figures(StudyMetadata(cluster_energy=reading))
    assert math.isnan(fig[CLUSTER_ENERGY_GPU_KWH])
    assert fig[CLUSTER_ENERGY_KWH] == pytest.approx(1080 / J_PER_KWH)
    assert fig[OVERHEAD_ENERGY_KWH] == pytest.approx(480 / J_PER_KWH)
    assert fig[OVERHEAD_SHARE] == pytest.approx(480 / 1080)
    assert fig["cluster_energy_gpu_source"] == "none"
    assert fig[CLUSTER_ENERGY_BASIS] == "estimated"
    counters = {f"cluster_energy_{c}_source": "counter" for c in ("gpu", "cpu", "ram")}
    assert cluster_energy_basis(counters) == "measured"
    assert cluster_energy_basis({}) == "not measured"
    # no metadata at all, or a reading where no node measured anything
    assert math.isnan(cluster_energy_figures(StudyMetadata())[CLUSTER_ENERGY_KWH])
    nothing = {"nodes": [], "energy_gpu_j": None, "energy_cpu_j": None, "energy_ram_j": None,
               "energy_j": None, "trials_energy_j": 10.0, "overhead_energy_j": None}  # fmt: skip
    fig = cluster_energy_figures(StudyMetadata(cluster_energy=nothing))
    assert all(math.isnan(fig[f]) for f in CLUSTER_FIGURES) and not fig[CLUSTER_METERED]


def test_cluster_energy_of_a_resumed_study_adds_earlier_runs():
    earlier = cluster_energy([{"gpu_j": 300, "cpu_j": 100, "ram_j": 100}], 800.0)
    reading = cluster_energy([{"gpu_j": 600, "cpu_j": 200, "ram_j": 200}], 1200.0)
    reading["previous_runs"] = [earlier]
    fig = cluster_energy_figures(StudyMetadata(cluster_energy=reading))
    assert fig[CLUSTER_ENERGY_KWH] == pytest.approx(1500 / J_PER_KWH)
    assert fig[CLUSTER_ENERGY_GPU_KWH] == pytest.approx(900 / J_PER_KWH)
    # the trials' total (1200 J) covers the whole study: overhead = 1500 - 1200
    assert fig[OVERHEAD_ENERGY_KWH] == pytest.approx(300 / J_PER_KWH)
    assert fig[OVERHEAD_SHARE] == pytest.approx(0.2)


def test_cluster_without_trial_energy_has_no_overhead():
    reading = cluster_energy([{"gpu_j": 600, "cpu_j": 200, "ram_j": 200}], None)
    fig = cluster_energy_figures(StudyMetadata(cluster_energy=reading))
    assert fig[CLUSTER_ENERGY_KWH] == pytest.approx(1000 / J_PER_KWH)
    assert math.isnan(fig[OVERHEAD_ENERGY_KWH]) and math.isnan(fig[OVERHEAD_SHARE])


def test_startup_seconds_are_summed_over_segments(tmp_path):
    rows = [
        report_row("a", 10, 0.2, 100, 10, 1, iteration=1, startup=(2.0, 3.0)),
        report_row("b", 12, 0.2, 100, 10, 1, iteration=1, startup=(1.5, 0.5)),
        report_row("a", 20, 0.3, 200, 20, 2, iteration=2, startup=(0.0, 0.0)),
        report_row("a", 30, 0.3, 300, 30, 3, iteration=3, segment=2, startup=(4.0, 1.0)),
    ]
    with_startup = write_study(tmp_path / "a", "grid", 0, rows)
    without = write_study(tmp_path / "b", "grid", 0, grid_rows(1.0))
    (s,), (o,) = load_studies([with_startup]), load_studies([without])
    assert strategy_summary([s])[f"{STARTUP_S}_mean"].iloc[0] == pytest.approx(12.0)
    assert math.isnan(strategy_summary([o])[f"{STARTUP_S}_mean"].iloc[0])


def test_baseline_from_metadata(studies, tmp_path):
    assert study_baseline(studies[0].metadata) == BASELINE
    assert study_baseline(StudyMetadata()) is None
    assert (
        study_baseline(StudyMetadata(baseline={"rougeL": 0.2})) is None
    )  # no lead_k: not a baseline
    floor = common_baseline(studies)
    assert floor == {
        "label": "lead-3 baseline",
        "lead_k": 3,
        "value": 0.2,
        "low": 0.2,
        "high": 0.2,
        "n": 3,
    }
    t = strategy_summary(studies, target=0.34)
    grid = row_of(t, "grid")
    assert (grid[BASELINE_LEAD_K], grid[BASELINE_SEEDS]) == (3, 2)
    assert (grid["baseline_rougeL"], grid["baseline_rouge2"]) == (0.2, 0.08)
    # two validation sets: the mean, with the range
    other = write_study(
        tmp_path / "other",
        "random",
        0,
        grid_rows(1.0),
        metadata={"baseline": {**BASELINE, "lead_k": 1, "rougeL": 0.3}},
    )
    floor = common_baseline([*studies, *load_studies([other])])
    assert floor["label"] == "lead-1/3 baseline" and floor["lead_k"] is None
    assert (floor["value"], floor["low"], floor["high"], floor["n"]) == (
        pytest.approx(0.225),
        0.2,
        0.3,
        4,
    )
    assert common_baseline(load_studies(_write(tmp_path / "none", baseline=False))) is None


# --------------------------------------------------------------------------------------------
# Plots


@pytest.mark.parametrize("x", [X_ENERGY_KWH, X_COST_USD, X_WALL_S])
def test_best_so_far_draws_the_baseline_as_the_floor(studies, x):
    ax = plots.plot_best_so_far(studies, x=x, target=0.34).axes[0]
    floors = [ln for ln in ax.get_lines() if ln.get_label().startswith("lead-")]
    assert len(floors) == 1
    (line,) = floors
    assert line.get_label() == "lead-3 baseline (rougeL = 0.2000)"
    assert line.get_linestyle() == "--"
    assert list(line.get_ydata()) == [0.2, 0.2]  # horizontal, at the baseline's ROUGE-L
    assert "lead-3 baseline (rougeL = 0.2000)" in ax.get_legend_handles_labels()[1]


def test_best_so_far_without_baseline_draws_none(tmp_path):
    studies = load_studies(_write(tmp_path, baseline=False))
    ax = plots.plot_best_so_far(studies, x=X_ENERGY_KWH, target=0.34).axes[0]
    labels = ax.get_legend_handles_labels()[1]
    assert labels == ["grid (2 seeds)", "asha (1 seed)", "target rougeL = 0.3400"]
    # and the caller may leave it out
    with_baseline = load_studies(_write(tmp_path / "b"))
    ax = plots.plot_best_so_far(with_baseline, x=X_WALL_S, baseline=False).axes[0]
    assert not any("baseline" in label for label in ax.get_legend_handles_labels()[1])


def test_energy_breakdown_outlines_the_cluster_total(studies):
    fig = plots.plot_energy_breakdown(strategy_summary(studies, target=0.34))
    ax = fig.axes[0]
    assert ax.get_ylabel() == "energy (Wh)"
    outlines = [p for p in ax.patches if not p.get_fill()]
    # one outline, grid's: mean of 7200 and 21000 J = 14100 J = 3.9167 Wh; asha has none
    assert len(outlines) == 1
    assert outlines[0].get_height() == pytest.approx(14100 / 3600)
    assert outlines[0].get_x() + outlines[0].get_width() / 2 == pytest.approx(0)
    assert outlines[0].get_linestyle() == "--"
    texts = [t.get_text() for t in ax.texts]
    assert texts == [
        "80% measured\noverhead 38%\n(estimated)",  # (39.2 % + 37.5 %) / 2 = 38.4 %
        "80% measured\ncluster:\nnot measured",
    ]
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert plots.CLUSTER_LABEL in legend


def test_energy_breakdown_without_cluster_readings(tmp_path):
    studies = load_studies(_write(tmp_path, cluster=False))
    fig = plots.plot_energy_breakdown(strategy_summary(studies, target=0.34))
    ax = fig.axes[0]
    assert not [p for p in ax.patches if not p.get_fill()]
    assert all(t.get_text().endswith("cluster:\nnot measured") for t in ax.texts)
    legend = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert plots.CLUSTER_LABEL not in legend


# --------------------------------------------------------------------------------------------
# Report


def test_energy_table_cells(studies):
    table = energy_table(strategy_summary(studies, target=0.34))
    grid, asha = table.iloc[0].to_dict(), table.iloc[1].to_dict()
    # kWh of the two grid seeds: trials 4375 / 13125 J, cluster 7200 / 21000 J, overhead
    # 2825 / 7875 J; mean ± sample std [min – max], CPU and RAM estimated
    assert grid["strategy"] == "grid" and grid["seeds metered"] == "2/2"
    assert grid["trials' own meters (kWh)"] == "0.002431 ± 0.001719\n[0.001215 – 0.003646]"
    assert grid["whole cluster (kWh)"] == (
        "0.003917 ± 0.002711 (CPU, RAM estimated)\n[0.002000 – 0.005833]"
    )
    assert grid["cluster GPU (kWh)"] == "0.002778 ± 0.001964\n[0.001389 – 0.004167]"
    assert grid["cluster CPU (kWh)"] == "0.0008333 ± 0.0005893 (estimated)\n[0.0004167 – 0.001250]"
    assert grid["cluster RAM (kWh)"] == "0.0003056 ± 0.0001571 (estimated)\n[0.0001944 – 0.0004167]"
    assert grid["overhead: cluster − trials (kWh)"].startswith(
        "0.001486 ± 0.000992 (CPU, RAM estimated)\n[0.0007847 – "
    )
    assert grid["overhead share of cluster"] == "38% ± 1% (CPU, RAM estimated)\n[38% – 39%]"
    assert grid["basis"] == "estimated: CPU, RAM (GPU: counter, CPU: estimated, RAM: estimated)"
    assert asha == {
        "strategy": "asha",
        "seeds metered": "0/1",
        "trials' own meters (kWh)": "0.0006944",
        **{c: "not measured" for c in list(asha)[3:]},
    }
    assert len(asha) == 10


def test_energy_table_partly_metered_and_cpu_only(tmp_path):
    cpu_only = cluster_energy([{"gpu_j": None, "cpu_j": 900, "ram_j": 180}], 600.0)
    paths = [
        write_study(tmp_path, "random", 0, grid_rows(1.0), metadata={"cluster_energy": cpu_only}),
        write_study(tmp_path, "random", 1, grid_rows(1.0)),
    ]
    (row,) = energy_table(strategy_summary(load_studies(paths))).to_dict("records")
    assert row["seeds metered"] == "1/2"
    assert row["whole cluster (kWh)"] == "0.0003000 (estimated) (1/2 seeds)"  # 1080 J
    assert row["cluster GPU (kWh)"] == "not measured"
    assert row["cluster CPU (kWh)"] == "0.0002500 (estimated) (1/2 seeds)"
    assert row["overhead share of cluster"] == "44% (estimated) (1/2 seeds)"  # 480 / 1080
    assert row["basis"] == "estimated (GPU: none, CPU: estimated, RAM: estimated)"


def test_baseline_line(studies, tmp_path):
    summary = strategy_summary(studies, target=0.34)
    assert baseline_line(studies, summary) == (
        "Floor: the lead-3 baseline (extractive, on the validation set) scores ROUGE-L 0.2000 "
        "(R-1 0.2500, R-2 0.0800, R-Lsum 0.2300). "
        "Best ROUGE-L minus the baseline: grid +0.1500, asha +0.1450."
    )
    high = {**BASELINE, "rougeL": 0.346}
    paths = [
        write_study(tmp_path / "high", "grid", 0, grid_rows(1.0), metadata={"baseline": high}),
        write_study(tmp_path / "high", "asha", 0, asha_rows()),
    ]
    partial = load_studies(paths)
    line = baseline_line(partial, strategy_summary(partial, target=0.34))
    assert "scores ROUGE-L 0.3460" in line
    assert "(mean of the 1 of 2 studies that hold one)" in line
    assert line.endswith("baseline: grid +0.0040, asha -0.0010 (below the floor).")
    none = load_studies(_write(tmp_path / "none", baseline=False))
    assert baseline_line(none, strategy_summary(none)) is None


def test_report_shows_cluster_energy_and_the_floor(studies, tmp_path, capsys):
    out = tmp_path / "report"
    assert main([str(s.path) for s in studies] + ["--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert f"## {ENERGY_HEAD}" in md
    energy = md.split(f"## {ENERGY_HEAD}")[1].split("\n## ")[0]
    assert "| grid | 2/2 | 0.002431 ± 0.001719 [0.001215 – 0.003646] | " in energy
    assert "| asha | 0/1 | 0.0006944 | not measured | not measured |" in energy
    assert "Floor: the lead-3 baseline" in md and "grid +0.1500, asha +0.1450." in md
    assert "Whole-cluster energy (2 of 3 studies)" in md
    # the studies table says it per study
    assert "0.002000 kWh on 1 node, 39% overhead (estimated: CPU, RAM)" in md
    # HTML: the table sits right after the energy breakdown plot; the floor under the benchmark
    plot_at = html.index("<h2>Energy breakdown</h2>")
    assert html.index(f"<h3>{escape(ENERGY_HEAD)}</h3>") > plot_at
    assert '<table class="energy">' in html
    assert html.index("<p class='floor'>Floor: the lead-3 baseline") < plot_at
    assert "Gray dashed: the lead-3 baseline, the floor." in html
    summary = (out / "summary.csv").read_text()
    assert "cluster_energy_kwh_mean" in summary and "baseline_rougeL" in summary


def test_report_without_cluster_or_baseline_says_not_measured(tmp_path, capsys):
    paths = _write(tmp_path, cluster=False, baseline=False)
    out = tmp_path / "report"
    assert main([*map(str, paths), "--out", str(out)]) == 0
    md = (out / "report.md").read_text()
    html = (out / "report.html").read_text()
    assert "Whole-cluster energy: not measured" in md
    assert "| grid | 0/2 | 0.002431 ± 0.001719 [0.001215 – 0.003646] | not measured |" in md
    # no baseline: nothing about it anywhere
    for text in (md, html):
        assert "lead-" not in text and "Floor:" not in text and "baseline" not in text
