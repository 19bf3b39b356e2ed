"""How long a trial segment takes to start training, split by whether its process was fresh.

    python benchmarks/segment_start.py greentune_results/grid-tiny-bart-builtin-seed0 [more folders]

A segment's start = `segment_launch_s` (from the driver's start to the worker loop: Train's
controller and worker on the Train path; Train's local mode and the imports a fresh process
still needs on the local path) + `segment_setup_s` (data, tokenizer, model, engine, restore),
both measured by the study itself in the segment's first report. A segment is *fresh* when it is
the first its process ran (`process_id` not seen before in the study), *reused* otherwise (a
later trial, a PBT exploit or a restart in a process Tune kept, `reuse_actors`). Prints the
count, median and max of each, in seconds, per study and over all.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core import schema  # noqa: E402


def segment_starts(study_dir: Path) -> pd.DataFrame:
    reports = pd.read_parquet(study_dir / schema.REPORTS_FILE).sort_values(schema.TIMESTAMP_S)
    firsts = reports.groupby([schema.TRIAL_ID, schema.SEGMENT], sort=False).head(1).copy()
    firsts["start_s"] = firsts[schema.SEGMENT_LAUNCH_S] + firsts[schema.SEGMENT_SETUP_S]
    firsts["process"] = [
        "fresh" if first else "reused" for first in ~firsts[schema.PROCESS_ID].duplicated()
    ]
    firsts["study"] = study_dir.name
    return firsts[
        [
            "study",
            schema.TRIAL_ID,
            schema.SEGMENT,
            "process",
            schema.SEGMENT_LAUNCH_S,
            schema.SEGMENT_SETUP_S,
            "start_s",
            schema.EXECUTION_PATH,
        ]
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("studies", nargs="+", type=Path)
    table = pd.concat([segment_starts(p) for p in parser.parse_args().studies], ignore_index=True)
    stats = table.groupby(["study", "process"])["start_s"].agg(["count", "median", "max"])
    overall = table.groupby("process")["start_s"].agg(["count", "median", "max"])
    with pd.option_context("display.float_format", "{:.2f}".format, "display.width", 160):
        print(stats.to_string())
        print("\nall studies:")
        print(overall.to_string())


if __name__ == "__main__":
    main()
