"""The one place that touches DeepSpeed's private state (DeepSpeed 0.19), for reused processes.

DeepSpeed clones the world process group when its first engine starts and keeps the clone in a
module global. Ray Train's local mode destroys the process group when a run ends, so in a trial
process that Tune reuses, the next DeepSpeed engine would find a dead clone and fail ("Group ...
is not registered"). `forget_world_group` drops the clone after a new group is made.
"""

from __future__ import annotations


def forget_world_group() -> None:
    """Make DeepSpeed clone the current world group afresh at its next engine."""
    from deepspeed.utils import groups

    groups._WORLD_GROUP = None
