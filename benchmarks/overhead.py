"""Orchestration overhead of a finished study, with a breakdown of where the rest of the time went.

    python benchmarks/overhead.py greentune_results/pbt-tiny-bart-builtin-seed0 [more study folders]

overhead = 1 - (time workers spent training and evaluating) / (wall time x worker slots)

where worker slots = trials that may run at once x workers per trial. Useful time comes from the
workers' own clocks (`trial_train_s`, `trial_eval_s`, summed over workers and segments), plus
the final held-out evaluation of the selected model (metadata `test.seconds`; on a local study it
runs alone on the whole machine, so it counts x slots). The rest is broken down from the study's
own records:

- ray_start: `ray.init` (metadata `ray_init_s`) x slots
- launch: per segment, from the driver's start to the workers' first line (Train controller and
  worker processes, placement group) - `segment_launch_s`, summed over segments
- setup: per segment, the workers' data, tokenizer, model, engine and checkpoint restore
  (`segment_setup_s`)
- report: time inside report intervals that is neither training nor evaluation (checkpoint
  save, metering, report) - `device_s - train_s - eval_s`
- idle: whatever is left: slots waiting for a trial, Tune's scheduling, trial restarts, the tail
  where fewer trials than slots remain. Nothing here is a measured figure of its own.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from core import schema  # noqa: E402


def overhead(study_dir: Path) -> dict[str, float]:
    meta = json.loads((study_dir / schema.METADATA_FILE).read_text())
    reports = pd.read_parquet(study_dir / schema.REPORTS_FILE)
    wall = meta["wall_s"]
    slots = meta["concurrent_trials"] * meta["config"]["resources"]["workers_per_trial"]
    last = reports.sort_values(schema.TIMESTAMP_S).groupby(schema.TRIAL_ID).tail(1)
    train = last[schema.TRIAL_TRAIN_S].sum()
    evaluate = last[schema.TRIAL_EVAL_S].sum()
    device = last[schema.DEVICE_S].sum()
    capacity = wall * slots
    held_out = (meta.get("test") or {}).get("seconds", 0.0) * slots
    parts = {
        "ray_start": meta.get("ray_init_s", 0.0) * slots,
        "launch": reports["segment_launch_s"].sum()
        * meta["config"]["resources"]["workers_per_trial"],
        "setup": reports["segment_setup_s"].sum()
        * meta["config"]["resources"]["workers_per_trial"],
        "report": device - train - evaluate,
    }
    parts["idle"] = capacity - train - evaluate - held_out - sum(parts.values())
    return {
        "study": meta["study"],
        "wall_s": wall,
        "slots": slots,
        "trials": last[schema.TRIAL_ID].nunique(),
        "segments": int(reports.groupby(schema.TRIAL_ID)[schema.SEGMENT].max().sum()),
        "train_s": train,
        "eval_s": evaluate,
        "held_out_s": held_out / slots,
        "overhead": 1 - (train + evaluate + held_out) / capacity,
        **{f"{k}_share": v / capacity for k, v in parts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("studies", nargs="+", type=Path)
    rows = [overhead(p) for p in parser.parse_args().studies]
    with pd.option_context("display.float_format", "{:.3f}".format, "display.width", 200):
        print(pd.DataFrame(rows).set_index("study").T.to_string())


if __name__ == "__main__":
    main()
