"""Strategy efficiency: best ROUGE-L and the energy to reach grid's best minus one point, per seed.

    python -m study.run compare --seeds 3                       # 9 studies, about 45 min on 2 cores
    python benchmarks/strategy_efficiency.py greentune_results   # this table from their folders

For each seed, the target is that seed's grid best ROUGE-L minus 0.01. For every strategy of the
same seed: its best ROUGE-L (and the difference to grid's, in points), the study's cumulative
trial energy when a report first reached the target (kWh; with no energy counter, as on a CPU
machine, this energy is an estimate from CPU time, so its ratio is a ratio of CPU-seconds'
estimates) and that energy as a ratio to grid's. Then the mean of each ratio over seeds.
Targets (issue 7): asha <= 0.3x grid's energy; pbt best >= grid best + 1 point at <= 1.0x.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.load import load_studies  # noqa: E402
from analysis.summary import J_PER_KWH, study_cumulative  # noqa: E402
from study import schema  # noqa: E402

POINT = 0.01  # one ROUGE point


def energy_to_reach(reports: pd.DataFrame, target: float) -> float:
    """kWh the study's trials had spent when a report first reached `target` (NaN: never)."""
    r = reports.sort_values(schema.STUDY_ELAPSED_S).reset_index(drop=True)
    spent = study_cumulative(r, schema.ENERGY_TOTAL_J).reset_index(drop=True) / J_PER_KWH
    reached = r.index[r[schema.ROUGEL] >= target]
    return float(spent[reached[0]]) if len(reached) else np.nan


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("storage", help="folder holding the compare's study folders")
    args = p.parse_args()
    folders = [d for d in sorted(Path(args.storage).iterdir()) if (d / schema.REPORTS_FILE).exists()]
    studies = load_studies(folders)
    by_key = {(s.strategy, s.seed): s for s in studies}
    seeds = sorted({seed for strategy, seed in by_key if strategy == "grid"})
    rows = []
    for seed in seeds:
        grid = by_key[("grid", seed)]
        grid_best = grid.reports[schema.ROUGEL].max()
        target = grid_best - POINT
        grid_kwh = energy_to_reach(grid.reports, target)
        for (strategy, s_seed), study in sorted(by_key.items()):
            if s_seed != seed:
                continue
            best = study.reports[schema.ROUGEL].max()
            kwh = energy_to_reach(study.reports, target)
            rows.append({"seed": seed, "strategy": strategy, "best_rougeL": best,
                         "points_vs_grid": (best - grid_best) / POINT, "target": target,
                         "kwh_to_target": kwh, "energy_ratio_to_grid": kwh / grid_kwh})
    table = pd.DataFrame(rows)
    pd.set_option("display.width", 160)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    mean = table.groupby("strategy")[["best_rougeL", "points_vs_grid", "energy_ratio_to_grid"]].mean()
    reached = table.groupby("strategy")["kwh_to_target"].apply(lambda s: f"{s.notna().sum()}/{len(s)}")
    print("\nmean over seeds (energy ratio over the seeds that reached the target):")
    print(mean.assign(reached_target=reached).to_string(float_format=lambda v: f"{v:.4g}"))


if __name__ == "__main__":
    main()
