"""The study's whole-cluster meter: one small actor per node, from study start to end.

Trial meters see only their own workers' devices while they train. The cluster meter reads every
node's devices for the whole study, so its total includes idle GPUs, worker start-up,
checkpoints, evaluation and the Tune driver; `cluster - sum of trials` is reported as overhead.

Per node: GPUs by NVML's cumulative counters (all devices of the node; missing = None); CPU by
the estimate of `trainables.energy` applied to the whole machine's busy CPU time (package power x
busy CPU-seconds / logical CPUs); RAM by 3 W per 8 GiB of memory in use.

The study polls every node every `POLL_S` seconds and keeps each node's latest reading, so:
a node that joins mid-study (autoscaling) is metered from the first poll after it joins; a node
that is lost (a spot eviction) keeps the energy read up to its last poll, marked `lost`; and each
poll's new energy is converted to CO2 at the grid intensity of that moment.

On one machine with several Ray nodes (a loopback test cluster) every node reads the same CPU and
RAM, so the cluster total counts them once per node; on a real cluster each node is its own VM.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from study.budget import ClusterSpend
from study.footprint import J_PER_KWH, CarbonIntensity
from trainables.energy import ENERGY_PARTS, RAM_W_PER_GIB, _machine_busy_cpu_s, cpu_package_power_w

GIB = 1024**3
POLL_S = 10.0


class NodeMeter:
    """Runs as a zero-CPU Ray actor pinned to one node."""

    def __init__(self, node_id: str = "", cpu_tdp_w: float = 0.0):
        self.node_id = node_id
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
            "node_id": self.node_id, "node": os.uname().nodename, "duration_s": duration_s,
            "gpus": len(self.start_mj or []),
            "gpu_j": gpu_j, "gpu_source": "counter" if gpu_j is not None else None,
            "cpu_j": self.package_w * busy_s / (os.cpu_count() or 1), "cpu_source": "estimated",
            "cpu_model": self.package_source,
            "ram_j": RAM_W_PER_GIB * ram_gib * duration_s, "ram_source": "estimated",
        }


class ClusterMeter:
    """A NodeMeter per node, polled from a background thread of the study process."""

    def __init__(self, carbon: CarbonIntensity, started_s: float, cpu_tdp_w: float = 0.0, poll_s: float = POLL_S,
                 snapshot: Path | None = None, previous_runs: list[dict[str, Any]] | None = None,
                 billing: Callable[[list[tuple[str, float]]], float | None] | None = None):
        self.carbon, self.cpu_tdp_w, self.poll_s = carbon, cpu_tdp_w, poll_s
        # billing([(node_id, held_s), ...]) -> dollars billed for those nodes (None: no price)
        self.billing = billing
        self._last_poll = 0.0  # time.monotonic() of the last poll
        # After every poll the reading so far goes to `snapshot` (atomically), so a study process
        # killed mid-study keeps its cluster energy: `--resume` adds it as a previous run.
        self.snapshot, self.previous_runs = snapshot, list(previous_runs or [])
        self.started_s = started_s  # the study's start: nodes there at the first poll were held since
        self.meters: dict[str, Any] = {}  # node id -> actor
        self.joined: dict[str, float] = {}  # node id -> unix time the study first saw it
        self.readings: dict[str, dict[str, Any]] = {}  # node id -> latest reading
        self.lost: dict[str, float] = {}  # node id -> unix time its meter stopped answering
        self.co2_kg: float | None = None
        self._converted_j = 0.0  # cluster energy already converted to CO2
        # (unix time, energy J, CO2 kg, billed USD) after every poll: the analysis reads the
        # whole cluster's spend at any moment (e.g. when a study first reached a ROUGE target)
        self.series: list[tuple[float, float | None, float | None, float | None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._actor = None  # NodeMeter as a zero-CPU Ray actor class, made once in start()

    def start(self) -> ClusterMeter:
        import ray

        self._actor = ray.remote(num_cpus=0, max_restarts=0)(NodeMeter)
        self.poll()
        self._thread = threading.Thread(target=self._run, name="cluster-meter", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception as e:  # noqa: BLE001 - a failed poll must not end the study
                print(f"cluster meter: poll failed ({e!r}); the next poll retries")

    def poll(self) -> None:
        """Start meters on nodes that joined, read every meter, keep the latest readings."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        with self._lock:
            self._last_poll = time.monotonic()
            joined_s = self.started_s if not self.meters else time.time()
            for node in ray.nodes():
                node_id = node["NodeID"]
                if node["Alive"] and node_id not in self.meters:
                    self.joined[node_id] = joined_s
                    self.meters[node_id] = self._actor.options(
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
                    ).remote(node_id, self.cpu_tdp_w)
            live = {n: m for n, m in self.meters.items() if n not in self.lost}
            pending = {n: m.read.remote() for n, m in live.items()}
            for node_id, ref in pending.items():
                try:
                    self.readings[node_id] = ray.get(ref, timeout=30)
                except (RayActorError, GetTimeoutError):
                    # The node (or its meter) is gone: keep what it read up to its last poll.
                    self.lost[node_id] = time.time()
            total = cluster_total(list(self.readings.values()))["energy_j"]
            if total is not None and total > self._converted_j:
                self.co2_kg = (self.co2_kg or 0.0) + self.carbon.co2_kg(total - self._converted_j, time.time())
                self._converted_j = total
            now = time.time()
            held = [(n, self.lost.get(n, now) - self.joined[n]) for n in self.readings]
            self.series.append((now, total, self.co2_kg,
                                self.billing(held) if self.billing is not None and held else None))
            if self.snapshot is not None:
                tmp = self.snapshot.with_name(f".{self.snapshot.name}.tmp")
                tmp.write_text(json.dumps(self.reading(None)))
                os.replace(tmp, self.snapshot)

    def spend(self, max_age_s: float = 1.0) -> ClusterSpend:
        """The whole cluster's running totals for a budget (energy with PUE), polling first
        when the last poll is older than `max_age_s`."""
        if time.monotonic() - self._last_poll > max_age_s:
            self.poll()
        reading = self.reading(None)
        previous = [r for r in self.previous_runs if isinstance(r, dict)]
        energies = [r.get("energy_j") for r in (reading, *previous)]
        known = [e for e in energies if e is not None]
        co2 = [r.get("co2_kg") for r in (reading, *previous) if r.get("co2_kg") is not None]
        return ClusterSpend(
            energy_kwh=sum(known) / J_PER_KWH * self.carbon.pue if known else None,
            co2_kg=sum(co2) if co2 else None,
            cost_usd=self.billed_usd(reading["nodes"]),
        )

    def billed_usd(self, nodes: list[dict[str, Any]]) -> float | None:
        """What the VMs cost for the time this run held them (None without prices)."""
        if self.billing is None or not nodes:
            return None
        return self.billing([(n["node_id"], n["held_s"]) for n in nodes])

    def finish(self, trial_energy_j: float | None) -> dict[str, Any]:
        """Stop polling and read every node a last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
        return self.reading(trial_energy_j)

    def reading(self, trial_energy_j: float | None) -> dict[str, Any]:
        """Per-node readings so far, the cluster total, the gap to the trials' own sum (overhead)."""
        now = time.time()
        nodes = [{**r, "lost": node_id in self.lost,
                  "held_s": self.lost.get(node_id, now) - self.joined[node_id]}  # what the VM is billed for
                 for node_id, r in self.readings.items()]
        total = cluster_total(nodes)
        return {
            "nodes": nodes, **total, "trials_energy_j": trial_energy_j,
            "overhead_energy_j": (total["energy_j"] - trial_energy_j)
            if trial_energy_j is not None and total["energy_j"] is not None else None,
            "co2_kg": self.co2_kg,
            "billed_usd": self.billed_usd(nodes),
            "series": {"columns": ["time_s", "energy_j", "co2_kg", "billed_usd"], "rows": self.series},
            "note": f"every node polled each {self.poll_s:g} s: a node that joined is metered from "
                    "the first poll after it joined; a lost node counts up to its last poll",
            "previous_runs": self.previous_runs,  # interrupted runs of this study (--resume)
        }


def cluster_total(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums per part; a part no node measured stays None."""
    out: dict[str, Any] = {}
    for part in ENERGY_PARTS:
        values = [n[f"{part}_j"] for n in nodes if n[f"{part}_j"] is not None]
        out[f"energy_{part}_j"] = sum(values) if values else None
    parts = [v for v in out.values() if v is not None]
    out["energy_j"] = sum(parts) if parts else None
    return out
