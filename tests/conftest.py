"""Shared test helpers: where the real samples live, and the smallest study settings."""

from __future__ import annotations

import os
import secrets
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

# Two parameters: lr (two grid points) and batch_size (8 or 16; one grid point).
LR_BATCH_SPACE = """
parameters:
  lr:
    domain: {type: loguniform, low: 1.0e-4, high: 3.0e-2}
    grid: [1.0e-3, 1.0e-2]
    mutate: perturb
  batch_size:
    domain: {type: choice, values: [8, 16]}
    grid: [8]
    mutate: perturb
"""

# One parameter, two grid points: two trials (PBT may perturb lr within the domain).
TWO_LR_SPACE = """
parameters:
  lr:
    domain: {type: loguniform, low: 1.0e-4, high: 3.0e-2}
    grid: [1.0e-3, 1.0e-2]
    mutate: perturb
"""


# Every Ray this test process starts itself (a loopback cluster, a meter test) uses token auth
# with one token of the session's own: a local Ray with auth disabled listens on every
# interface, so never that, not even in a test. Ray loads the token once per process (checked on
# 2.60: a second token in the same process is refused with InvalidAuthToken), so it is set here,
# before any test module imports ray. Study processes started by `run_study` drop it and make
# their own, as a user's study does.
SESSION_RAY_TOKEN = secrets.token_hex(32)
os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_AUTH_TOKEN"] = SESSION_RAY_TOKEN
os.environ.pop("RAY_AUTH_TOKEN_PATH", None)


@pytest.fixture
def ray_token() -> str:
    """The session's Ray token, for a test that starts Ray in this process (and processes that
    join it, which inherit it through the environment)."""
    assert os.environ.get("RAY_AUTH_MODE") == "token"
    assert os.environ.get("RAY_AUTH_TOKEN") == SESSION_RAY_TOKEN
    return SESSION_RAY_TOKEN


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(
            f"real dataset samples not found at {SHARED_DATA} (the ../shared folder beside the "
            "checkout)"
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
