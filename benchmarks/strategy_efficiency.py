"""Strategy efficiency over paired seeds: test ROUGE-L, whole-cluster energy to a target, and
the hypervolume of each study's ROUGE-energy front.

    python -m study.run compare --seeds 3                       # 9 studies on the default
    python benchmarks/strategy_efficiency.py greentune_results   # this table from their folders

For each seed, the target is that seed's grid best *validation* ROUGE-L minus 0.01 (one point).
For every strategy of the same seed: the selected model's test ROUGE-L (and its difference to
grid's, in points), the whole cluster's energy when a report first reached the target (kWh,
interpolated from the cluster meter's polls; on a CPU machine CPU and RAM are estimates, so the
ratio is a ratio of estimates of the same model) and the trials' own energy at that moment, each
as a ratio to grid's. Then per strategy: the mean over seeds with a 95 % bootstrap interval of
the paired difference (test ROUGE-L points) and of the ratio, and the targets of issue 11:
ASHA <= 0.5x grid's energy to target; PBT's test best >= grid's + 1 point at <= 1.0x grid's energy.
`hypervolume` is analysis.fronts' (one reference over every study read), `test_ci` the test
ROUGE-L's 95 % bootstrap interval over the test examples.

    python -m study.run compare --strategies grid,random,asha,pbt,hyperband,bohb,pb2,optuna,\
        optuna-asha,optuna-gp,optuna-mo,mo-asha                 # every strategy, one seed
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.fronts import HYPERVOLUME, front_table  # noqa: E402
from analysis.load import CLUSTER_ENERGY_J, load_studies  # noqa: E402
from analysis.summary import J_PER_KWH, study_cumulative  # noqa: E402
from core import schema  # noqa: E402
from core.stats import bootstrap_ci  # noqa: E402

POINT = 0.01  # one ROUGE point


def spent_at_target(reports: pd.DataFrame, target: float) -> tuple[float, float]:
    """(whole-cluster kWh, trials' own kWh) when a report first reached `target` (NaN: never)."""
    r = reports.sort_values(schema.STUDY_ELAPSED_S).reset_index(drop=True)
    trials = study_cumulative(r, schema.ENERGY_TOTAL_J).reset_index(drop=True) / J_PER_KWH
    reached = r.index[r[schema.ROUGEL] >= target]
    if not len(reached):
        return np.nan, np.nan
    i = reached[0]
    return float(r[CLUSTER_ENERGY_J].iloc[i]) / J_PER_KWH, float(trials[i])


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("storage", help="folder holding the compare's study folders")
    args = p.parse_args()
    folders = [
        d for d in sorted(Path(args.storage).iterdir()) if (d / schema.REPORTS_FILE).exists()
    ]
    studies = load_studies(folders)
    by_key = {(s.strategy, s.seed): s for s in studies}
    fronts = front_table(studies).set_index("study")
    seeds = sorted({seed for strategy, seed in by_key if strategy == "grid"})
    if not seeds:
        sys.exit(
            "no grid study among them: the target and ratios are grid's; add --strategies grid"
        )
    rows = []
    for seed in seeds:
        grid = by_key[("grid", seed)]
        target = grid.reports[schema.ROUGEL].max() - POINT
        grid_cluster, grid_trials = spent_at_target(grid.reports, target)
        grid_test = grid.metadata.test["rougeL"]
        for (strategy, s_seed), study in sorted(by_key.items()):
            if s_seed != seed:
                continue
            cluster, trials = spent_at_target(study.reports, target)
            test = study.metadata.test["rougeL"]
            rows.append(
                {
                    "seed": seed,
                    "strategy": strategy,
                    "test_rougeL": test,
                    "test_ci": "{:.4f}-{:.4f}".format(*study.metadata.test["rougeL_ci95"]),
                    "points_vs_grid": (test - grid_test) / POINT,
                    "target_val": target,
                    "cluster_kwh_to_target": cluster,
                    "cluster_ratio": cluster / grid_cluster,
                    "trials_ratio": trials / grid_trials,
                    "wall_s": study.wall_s,
                    "trials": len(study.trials),
                    "hypervolume": fronts.loc[study.name, HYPERVOLUME],
                }
            )
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print("\nper strategy, mean over seeds [95 % bootstrap interval over seeds]:")
    for strategy, g in table.groupby("strategy"):

        def show(column: str, g: pd.DataFrame = g) -> str:
            values = g[column].dropna().to_numpy(float)
            if not len(values):
                return "-"
            low, high = bootstrap_ci(values)
            interval = f" [{low:.3g}, {high:.3g}]" if np.isfinite(low) else ""
            return f"{values.mean():.3g}{interval}"

        reached = f"{g['cluster_kwh_to_target'].notna().sum()}/{len(g)}"
        print(
            f"  {strategy:11s} test ROUGE-L {show('test_rougeL')}, points vs grid "
            f"{show('points_vs_grid')}, "
            f"whole-cluster energy to target / grid {show('cluster_ratio')} (reached {reached}), "
            f"trials' own / grid {show('trials_ratio')}, wall {show('wall_s')} s, trials "
            f"{show('trials')}, hypervolume {show('hypervolume')}"
        )


if __name__ == "__main__":
    main()
