"""A trial process that already ran a trial gives the same result as a fresh one (the local
path reuses processes and their prepared data between trials)."""

import json
import subprocess
import sys

from tests.conftest import REPO

SCRIPT = r"""
import json, sys
import torch
from core.config import resolve_config
from trainables.session import LocalSession
from trainables.train_loop import prepared_data, run_worker

cfg = resolve_config(overrides=["data.n_train=48", "data.n_validation=8", "eval.max_new_tokens=8",
                                "train.epochs=1", "train.evals_per_epoch=2", "train.batch_size=8"])

def trial(seed, params):
    reports = []
    cpu = [torch.device("cpu")]
    session = LocalSession(None, lambda r, d: reports.append(r), devices=cpu, node_id="n")
    run_worker(cfg, params, seed, session)
    return [(r.rank_zero.quality["val_loss"], r.rank_zero.quality["train_loss"], r.samples)
            for r in reports]

fresh = trial(7, {"lr": 3e-3})
other = trial(8, {"lr": 1e-2})          # another trial in between, with its own seed and lr
reused = trial(7, {"lr": 3e-3})         # the first trial again, in the now-reused process
hits = prepared_data.cache_info().hits
print(json.dumps({"fresh": fresh, "other": other, "reused": reused, "cache_hits": hits}))
"""


def test_a_reused_process_gives_the_same_metrics_as_a_fresh_one():
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO,
        text=True,
        capture_output=True,
        timeout=300,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["cache_hits"] == 2  # data and tokenizer prepared once, reused twice
    assert result["reused"] == result["fresh"]  # bit for bit: nothing leaked between trials
    assert result["other"] != result["fresh"]  # and the trial in between really differed
    assert len(result["fresh"]) == 2
