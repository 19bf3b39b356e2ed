"""Shared test helpers: where the real samples live, and the smallest study settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# The smallest study that still trains, evaluates and checkpoints (used by the Ray tests).
TINY_STUDY = [
    "--set",
    "data.n_train=64",
    "--set",
    "data.n_validation=8",
    "--set",
    "data.n_test=16",
    "--set",
    "eval.max_new_tokens=16",
    "--set",
    "train.epochs=2",
    "--set",
    "train.evals_per_epoch=1",
    "--set",
    "resources.cpus_per_worker=0.5",
]

# One parameter, two grid points: two trials (PBT may perturb lr within the domain).
TWO_LR_SPACE = """
parameters:
  lr:
    domain: {type: loguniform, low: 1.0e-4, high: 3.0e-2}
    grid: [1.0e-3, 1.0e-2]
    mutate: perturb
"""


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real dataset samples not found at {SHARED_DATA} (the ../shared folder beside the checkout)"
        )
    return SHARED_DATA


def run_study(*args: str, cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m study.run ...` as a user runs it, in a fresh process (its own local Ray)."""
    # no RAY_AUTH_MODE: the study starts its local Ray with a token of its own, as for a user
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "study.run", *args],
        cwd=cwd,
        env=env,
        text=True,
        capture_output=True,
        timeout=timeout,
    )
