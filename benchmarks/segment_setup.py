"""Where a trial segment's start-up goes, phase by phase, in a fresh process (no Ray).

    python benchmarks/segment_setup.py [--repeats 3]

Each repeat runs in a new Python process, as every Train worker of a new segment does, and times
what the worker loop does before its first step: imports (torch, transformers, the model family),
the built-in data, the tokenizer (trained on the training texts for a preset), encoding, model
build, engine. Printed: each phase's median over the repeats, on an idle machine. In a study the
same phases run under contention (several segments starting at once), so they take longer there;
`benchmarks/overhead.py` gives the in-study `setup` share.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PHASES = r"""
import json, time
t = time.perf_counter(); marks = {}
def mark(name):
    global t
    now = time.perf_counter(); marks[name] = now - t; t = now
import torch; mark("import torch")
import transformers, ray.train; mark("import transformers + ray.train")
from core.config import StudyConfig
from trainables import batching
from trainables.datasets import load_split
from trainables.engine import make_engine
from trainables.models import build_model, load_tokenizer
from core.config import trial_train_config
cfg = StudyConfig(); mark("import greentune")
train = load_split(cfg.data, cfg.data.train_split, cfg.data.n_train, cfg.data.seed)
val = load_split(cfg.data, cfg.data.validation_split, cfg.data.n_validation, cfg.data.seed)
mark("built-in data")
tok = load_tokenizer(cfg.model, [x for p in train for x in p]); mark("tokenizer")
enc = batching.encode_pairs(train, tok, cfg.data.max_source_tokens, cfg.data.max_target_tokens)
batching.encode_pairs(val, tok, cfg.data.max_source_tokens, cfg.data.max_target_tokens)
mark("encode")
model = build_model(cfg.model, tok, seed=0); mark("model build")
engine = make_engine(model, trial_train_config(cfg, {}), torch.device("cpu"), 1); mark("engine")
print(json.dumps(marks))
"""


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    runs = []
    for _ in range(args.repeats):
        out = subprocess.run(
            [sys.executable, "-c", PHASES], cwd=REPO, capture_output=True, text=True, check=True
        )
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    total = [sum(r.values()) for r in runs]
    print(f"segment start-up phases, fresh process, idle machine, median of {args.repeats}:")
    for phase in runs[0]:
        print(f"  {phase:34s} {statistics.median(r[phase] for r in runs):6.2f} s")
    print(f"  {'total':34s} {statistics.median(total):6.2f} s")


if __name__ == "__main__":
    main()
