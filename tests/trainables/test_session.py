"""The trial process's console: what `quiet_worker_logs` takes off it, and what it keeps."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO
from trainables.session import VERBOSE_ENV

# Ray's SIGTERM handler raises SystemExit(1) wherever the process is; where that is a weakref
# callback Python cannot raise it. The callback here raises it as the handler would there.
UNRAISABLE = r"""
import weakref
from trainables.session import quiet_worker_logs
quiet_worker_logs()
class Obj:
    pass
def stop(_ref):
    raise SystemExit(1)
obj = Obj(); ref = weakref.ref(obj, stop); del obj
class Broken:
    def __del__(self):
        raise ValueError("a real bug in a finalizer")
broken = Broken(); del broken
print("still running")
"""


def _run(verbose: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), VERBOSE_ENV: verbose}
    return subprocess.run(
        [sys.executable, "-c", UNRAISABLE], env=env, capture_output=True, text=True, timeout=120
    )


def test_a_stop_signals_ignored_exit_is_not_printed_but_other_finalizer_errors_are():
    quiet = _run("0")
    assert quiet.returncode == 0 and quiet.stdout.strip() == "still running"
    assert "SystemExit" not in quiet.stderr
    assert "ValueError: a real bug in a finalizer" in quiet.stderr
    verbose = _run("1")  # --verbose: Python's own hook, both printed
    assert "SystemExit: 1" in verbose.stderr and "ValueError" in verbose.stderr
