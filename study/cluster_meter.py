"""The study's whole-cluster meter: one small actor per node, from study start to end.

Trial meters see only their own workers' devices while they train. The cluster meter reads every
node's devices for the whole study, so its total includes idle GPUs, worker start-up,
checkpoints, evaluation and the Tune driver; `cluster - sum of trials` is reported as overhead.

Per node: GPUs by NVML's cumulative counters (all devices of the node; missing = None); CPU by
the estimate of `trainables.energy` applied to the whole machine's busy CPU time (package power x
busy CPU-seconds / logical CPUs); RAM by 3 W per 8 GiB of memory in use. Nodes that join after
the study started (autoscaling) are not metered: say so where the figure is used.
"""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from trainables.energy import RAM_W_PER_GIB, _machine_busy_cpu_s, cpu_package_power_w

GIB = 1024**3


class NodeMeter:
    """Runs as a zero-CPU Ray actor pinned to one node."""

    def __init__(self, cpu_tdp_w: float = 0.0):
        self.package_w, self.package_source = cpu_package_power_w(cpu_tdp_w)
        self.start_s = time.monotonic()
        self.start_busy_s = _machine_busy_cpu_s()
        self.ram_samples = [psutil.virtual_memory().used]
        self.nvml, self.start_mj = None, None
        try:
            import pynvml

            pynvml.nvmlInit()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(pynvml.nvmlDeviceGetCount())]
            self.nvml, self.handles = pynvml, handles
            self.start_mj = [pynvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in handles]
        except Exception:  # noqa: BLE001 - no NVML, no GPU, or no counter: GPU energy unknown
            self.nvml = None

    def sample(self) -> None:
        self.ram_samples.append(psutil.virtual_memory().used)

    def read(self) -> dict[str, Any]:
        duration_s = time.monotonic() - self.start_s
        self.sample()
        busy_s = _machine_busy_cpu_s() - self.start_busy_s
        gpu_j = None
        if self.nvml is not None and self.start_mj:
            try:
                now = [self.nvml.nvmlDeviceGetTotalEnergyConsumption(h) for h in self.handles]
                gpu_j = sum(b - a for a, b in zip(self.start_mj, now)) / 1000
            except Exception:  # noqa: BLE001
                gpu_j = None
        ram_gib = sum(self.ram_samples) / len(self.ram_samples) / GIB
        return {
            "node": os.uname().nodename, "duration_s": duration_s,
            "gpus": len(self.start_mj or []),
            "gpu_j": gpu_j, "gpu_source": "counter" if gpu_j is not None else None,
            "cpu_j": self.package_w * busy_s / (os.cpu_count() or 1), "cpu_source": "estimated",
            "cpu_model": self.package_source,
            "ram_j": RAM_W_PER_GIB * ram_gib * duration_s, "ram_source": "estimated",
        }


def start_cluster_meter(cpu_tdp_w: float = 0.0) -> list:
    """One NodeMeter on every alive node."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    actor = ray.remote(num_cpus=0)(NodeMeter)
    return [actor.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
            .remote(cpu_tdp_w) for node in ray.nodes() if node["Alive"]]


def read_cluster_meter(meters: list, trial_energy_j: float | None) -> dict[str, Any]:
    """Per-node readings, the cluster total and the gap to the trials' own sum (overhead)."""
    import ray

    nodes = ray.get([m.read.remote() for m in meters])
    total = cluster_total(nodes)
    return {"nodes": nodes, **total, "trials_energy_j": trial_energy_j,
            "overhead_energy_j": (total["energy_j"] - trial_energy_j) if trial_energy_j is not None else None,
            "note": "nodes that joined after the study started are not metered"}


def cluster_total(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums per part; a part no node measured stays None."""
    out: dict[str, Any] = {}
    for part in ("gpu", "cpu", "ram"):
        values = [n[f"{part}_j"] for n in nodes if n[f"{part}_j"] is not None]
        out[f"energy_{part}_j"] = sum(values) if values else None
    parts = [v for v in out.values() if v is not None]
    out["energy_j"] = sum(parts) if parts else None
    return out
