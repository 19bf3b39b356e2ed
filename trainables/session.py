"""Where a worker loop runs: in a Ray Train worker group, or in the Tune trial's own process.

The worker loop (`trainables.train_loop.run_worker`) is the same on both paths; what differs is
how it learns its rank and device, which checkpoint it starts from, and where its reports go. A
`WorkerSession` answers those three questions:

- `TrainSession`: a worker of a Ray Train worker group (several workers: DDP, DeepSpeed ZeRO).
  Reports go through `ray.train.report`, which persists the checkpoint into the Train run's
  storage and reaches the trial driver through a Train callback. A worker restarted within its
  segment starts from the run's newest checkpoint.
- `LocalSession`: one worker, run in the Tune trial's process through Train's local mode
  (`ScalingConfig(num_workers=0)`), no controller or worker actor to start. Train's local mode
  neither persists checkpoints nor calls report callbacks, so the trial driver hands a `report`
  function in that does both (`trainables.driver`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from trainables.report import WorkerReport

REPORT_KEY = "greentune_report"  # the one key of the metrics dict a Train worker reports


VERBOSE_ENV = "GREENTUNE_VERBOSE"  # "1": Ray Train's own INFO lines stay (study.run --verbose)


def _drop_stop_signal_exits(unraisable: Any) -> None:
    """Ray's SIGTERM handler in a worker process raises SystemExit(1) wherever the process is.
    Landing in a weakref callback or a `__del__`, Python cannot raise it and prints "Exception
    ignored in ... SystemExit: 1" (seen when Tune stops a trial process after an exploit or at a
    study's end). The process stops either way (Ray follows with SIGKILL); only the print goes.
    Every other exception Python cannot raise is printed as before."""
    if isinstance(unraisable.exc_value, SystemExit):
        return
    sys.__unraisablehook__(unraisable)


def quiet_worker_logs() -> None:
    """Ray Train's per-report lines (each checkpoint's path, "Running in local mode"), the model
    export's progress bar, DeepSpeed's no-GPU warning on a CPU machine, torch.distributed's
    deprecation warnings under ZeRO, LED's padding notes and the stop signal's ignored
    SystemExit off in this process, unless the study runs with --verbose."""
    import logging

    if os.environ.get(VERBOSE_ENV) == "1":
        return
    sys.unraisablehook = _drop_stop_signal_exits
    logging.getLogger("ray.train").setLevel(logging.WARNING)
    import warnings

    # DeepSpeed's ZeRO calls torch.distributed functions torch 2.13 deprecates: a FutureWarning
    # per call, hundreds per trial; LED logs each new batch length it pads to its window.
    warnings.filterwarnings(
        "ignore", message=r"`torch\.distributed\.\w+` is deprecated", category=FutureWarning
    )
    logging.getLogger("transformers.models.led.modeling_led").setLevel(logging.ERROR)
    import torch

    if not torch.cuda.is_available():  # DeepSpeed would warn it "could not detect" a GPU
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except ImportError:
        pass


Reporter = Callable[[WorkerReport, Path | None], None]


class WorkerSession(Protocol):
    rank: int
    world_size: int
    local_rank: int
    devices: list[Any]  # torch devices this worker holds (one CPU device without a GPU)
    node_id: str
    path: str  # "local" (in the trial process) or "train_worker_group"

    @property
    def device(self) -> Any: ...

    def start_checkpoint(self) -> Any | None:
        """The `ray.train.Checkpoint` this segment starts from, or None for a fresh start."""

    def report(self, report: WorkerReport, checkpoint_dir: Path | None) -> None:
        """Hand one interval's report (and this rank's checkpoint folder, if any) to the driver."""


def _node_id() -> str:
    import ray

    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else ""


def _devices() -> list[Any]:
    import ray.train.torch

    return ray.train.torch.get_devices()


@dataclass
class TrainSession:
    """A worker of a Ray Train worker group."""

    restore_from: str | None  # the segment's start: a PBT donor's or this trial's checkpoint path
    path: str = "train_worker_group"
    rank: int = field(init=False)
    world_size: int = field(init=False)
    local_rank: int = field(init=False)
    devices: list[Any] = field(init=False)
    node_id: str = field(init=False)

    def __post_init__(self) -> None:
        import ray.train

        ctx = ray.train.get_context()
        self.rank, self.world_size = ctx.get_world_rank(), ctx.get_world_size()
        self.local_rank = ctx.get_local_rank()
        self.devices, self.node_id = _devices(), _node_id()

    @property
    def device(self) -> Any:
        return self.devices[0]

    def start_checkpoint(self) -> Any | None:
        import ray.train

        # A worker restarted within the segment continues from the run's own newest checkpoint.
        own = ray.train.get_checkpoint()
        if own is not None:
            return own
        return ray.train.Checkpoint(self.restore_from) if self.restore_from else None

    def report(self, report: WorkerReport, checkpoint_dir: Path | None) -> None:
        import ray.train

        checkpoint = ray.train.Checkpoint.from_directory(checkpoint_dir) if checkpoint_dir else None
        ray.train.report({REPORT_KEY: report.to_dict()}, checkpoint=checkpoint)


@dataclass
class LocalSession:
    """The one worker of a single-worker trial, in the Tune trial's own process."""

    restore_from: str | None
    reporter: Reporter
    path: str = "local"
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    devices: list[Any] = field(default_factory=_devices)
    node_id: str = field(default_factory=_node_id)

    @property
    def device(self) -> Any:
        return self.devices[0]

    def start_checkpoint(self) -> Any | None:
        import ray.train

        return ray.train.Checkpoint(self.restore_from) if self.restore_from else None

    def report(self, report: WorkerReport, checkpoint_dir: Path | None) -> None:
        self.reporter(report, checkpoint_dir)
