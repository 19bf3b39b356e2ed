"""Figures render (Agg) with their axes labelled; slot packing and the not-applicable note."""

from __future__ import annotations

import pytest
from analysis_fixtures import report_row, write_realistic_studies, write_study
from matplotlib.figure import Figure

from analysis import plots
from analysis.load import load_studies
from analysis.summary import strategy_summary
from core.schema import X_COST_USD, X_ENERGY_KWH, X_WALL_S

pytestmark = pytest.mark.timeout(120)

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def studies(tmp_path_factory):
    return load_studies(write_realistic_studies(tmp_path_factory.mktemp("studies")))


def test_assign_slots_packs_greedily():
    # a [0,10], b [5,8], c [9,12], d [11,20]: c reuses b's slot, d reuses a's
    assert plots.assign_slots([0, 5, 9, 11], [10, 8, 12, 20]) == [0, 1, 1, 0]


@pytest.mark.parametrize(
    "x, unit", [(X_ENERGY_KWH, "energy (Wh)"), (X_COST_USD, "USD"), (X_WALL_S, "wall time (min)")]
)
def test_best_so_far_axes_carry_units(studies, x, unit):
    fig = plots.plot_best_so_far(studies, x=x, target=0.34)
    ax = fig.axes[0]
    assert unit in ax.get_xlabel() and "rougeL" in ax.get_ylabel()
    labels = ax.get_legend_handles_labels()[1]
    assert labels[:4] == [
        "grid (3 seeds)",
        "random (3 seeds)",
        "asha (3 seeds)",
        "pbt (3 seeds, partial)",
    ]
    assert plots.figure_png(fig).startswith(PNG)


def test_best_so_far_vs_dollars_without_prices_is_a_note(tmp_path):
    rows = [report_row("a", 10, 0.2, 100, 10, 1, iteration=1, cost=False)]
    studies = load_studies([write_study(tmp_path, "grid", 0, rows)])
    fig = plots.plot_best_so_far(studies, x=X_COST_USD)
    assert "Not applicable" in " ".join(t.get_text() for t in fig.axes[0].texts)


def test_pareto_timeline_and_breakdown_render(studies):
    for fig in (
        plots.plot_trials_pareto(studies),
        plots.plot_trial_timeline([s for s in studies if s.seed == 0]),
        plots.plot_energy_breakdown(strategy_summary(studies)),
    ):
        assert isinstance(fig, Figure)
        assert fig.get_size_inches()[0] * fig.dpi == 1200  # drawn for a 1200 px page
        assert plots.figure_png(fig).startswith(PNG)


def test_timeline_marks_restores_and_scheduler_stops(studies):
    pbt = next(s for s in studies if s.strategy == "pbt" and s.seed == 0)
    asha = next(s for s in studies if s.strategy == "asha" and s.seed == 0)
    fig = plots.plot_trial_timeline([asha, pbt])
    legend = " ".join(t.get_text() for leg in fig.legends for t in leg.get_texts())
    assert "restored from another trial" in legend and "stopped by the scheduler" in legend
    assert all(ax.get_ylabel() == "slot" for ax in fig.axes)
    assert fig.axes[-1].get_xlabel() == "study time (min)"
