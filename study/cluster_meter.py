"""The study's whole-cluster meter: one small actor per node, from study start to end.

Trial meters see only their own workers' devices while they train. The cluster meter reads every
node's devices for the whole study, so its total includes idle GPUs, worker start-up,
checkpoints, evaluation and the Tune driver; `cluster - sum of trials` is reported as overhead.

Per node it uses the same device layer as the trials' meter (`meter.energy`): every GPU of
the node by NVML (its cumulative counter, or integrated power where the counter is missing;
each GPU keyed by its UUID), the CPU by the estimate of `cpu_power_model` for the node's own VM
size (watts per busy thread x the machine's busy CPU-seconds), RAM by 3 W per 8 GiB in use.

The study polls every node every `POLL_S` seconds and keeps each node's latest reading, so:
a node that joins mid-study (autoscaling) is metered from the first poll after it joins; a node
that does not answer a poll keeps its last good reading, flagged `stale`, and is marked `lost`
only when Ray says it is dead (a spot eviction), its energy counted up to its last reading; a
GPU read that fails keeps that GPU's last good figure (flagged stale too); each poll's new energy
is converted to CO2 at the grid intensity of that moment. Several Ray nodes on one host (a
loopback test cluster) are counted once: CPU and RAM once per host, each GPU once per UUID.
"""

from __future__ import annotations

import json
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from core.footprint import J_PER_KWH, CarbonIntensity
from core.measurement import ENERGY_PARTS, measured_sum
from core.storage import Mirror
from meter.gpu import GpuReader
from meter.host import RAM_W_PER_GIB, cpu_power_model, machine_busy_cpu_s
from study.budget import ClusterSpend
from trainables.live_metrics import LiveTags

GIB = 1024**3
POLL_S = 10.0
READ_TIMEOUT_S = 30.0


def host_id() -> str:
    """This machine across Ray nodes: hostname and boot id (two Ray nodes on one host share it)."""
    boot = ""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        pass
    return f"{socket.gethostname()}/{boot}"


class NodeMeter:
    """Runs as a zero-CPU Ray actor pinned to one node; every reading is cumulative since start."""

    def __init__(
        self, node_id: str = "", cpu_tdp_w: float = 0.0, vm_size: str = "", nvml: Any = None
    ):
        self.node_id, self.vm_size = node_id, vm_size
        self.cpu_model = cpu_power_model(cpu_tdp_w, vm_size)
        self.start_s = time.monotonic()
        self.start_busy_s = machine_busy_cpu_s()
        self.ram_samples = [psutil.virtual_memory().used]
        self.gpus = GpuReader.all_devices(nvml)  # every GPU of this node (none: empty)
        self.last_gpu_j: dict[str, float] = {}  # the last good cumulative figure per GPU UUID

    def sample(self) -> None:
        self.ram_samples.append(psutil.virtual_memory().used)

    def read(self) -> dict[str, Any]:
        duration_s = time.monotonic() - self.start_s
        self.sample()
        busy_s = machine_busy_cpu_s() - self.start_busy_s
        fresh = self.gpus.cumulative_j()
        stale = [u for u, j in fresh.items() if j is None and u in self.last_gpu_j]
        self.last_gpu_j.update({u: j for u, j in fresh.items() if j is not None})
        gpu_by_uuid = {u: self.last_gpu_j[u] for u in fresh if u in self.last_gpu_j}
        ram_gib = sum(self.ram_samples) / len(self.ram_samples) / GIB
        return {
            "node_id": self.node_id,
            "node": os.uname().nodename,
            "host": host_id(),
            "vm_size": self.vm_size or None,
            "duration_s": duration_s,
            "gpus": len(fresh),
            "gpu_by_uuid": gpu_by_uuid,
            "gpu_j": sum(gpu_by_uuid.values()) if gpu_by_uuid else None,
            "gpu_source": self.gpus.source if gpu_by_uuid else None,
            "gpu_stale": stale,
            "cpu_j": self.cpu_model.w_per_thread * busy_s,
            "cpu_source": "estimated",
            "cpu_model": self.cpu_model.to_dict(),
            "ram_j": RAM_W_PER_GIB * ram_gib * duration_s,
            "ram_source": "estimated",
        }


class ClusterMeter:
    """A NodeMeter per node, polled from a background thread of the study process."""

    def __init__(
        self,
        carbon: CarbonIntensity,
        started_s: float,
        cpu_tdp_w: float = 0.0,
        poll_s: float = POLL_S,
        snapshot: Path | None = None,
        previous_runs: list[dict[str, Any]] | None = None,
        billing: Callable[[list[tuple[str, float]]], float | None] | None = None,
        vm_size: str = "",
        head_vm_size: str = "",
        meter_cls: type = NodeMeter,
        read_timeout_s: float = READ_TIMEOUT_S,
        mirror: Mirror | None = None,
        live_tags: LiveTags | None = None,
    ):
        self.carbon, self.cpu_tdp_w, self.poll_s = carbon, cpu_tdp_w, poll_s
        self.live_tags = live_tags  # set: the cluster's energy and power go to Grafana after polls
        # billing([(vm_size, held_s), ...]) -> dollars billed for those nodes (None: no price)
        self.billing = billing
        self.vm_size, self.head_vm_size = (
            vm_size,
            head_vm_size or vm_size,
        )  # each node priced as its own
        self.sizes: dict[str, str] = {}  # node id -> its VM size
        self.meter_cls, self.read_timeout_s = meter_cls, read_timeout_s
        self._last_poll = -math.inf  # time.monotonic() of the last poll (none yet)
        # After every poll the reading so far goes to `snapshot` (atomically), so a study process
        # killed mid-study keeps its cluster energy: `--resume` adds it as a previous run.
        self.snapshot, self.previous_runs = snapshot, list(previous_runs or [])
        self.mirror = mirror  # a URI study: the snapshot copied to the URI after each poll
        self.started_s = (
            started_s  # the study's start: nodes there at the first poll were held since
        )
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
        self._lock = threading.RLock()  # a poll, or a read of the totals (which may poll)
        self._actor = None  # NodeMeter as a zero-CPU Ray actor class, made once in start()

    def start(self) -> ClusterMeter:
        import ray

        self._actor = ray.remote(num_cpus=0, max_restarts=0)(self.meter_cls)
        # The first poll starts the meter actors and waits for their first reading (a process
        # start: 1-2 s on 2 cores); it runs in the thread, so the study starts its trials
        # meanwhile. Anything that reads the meter before then waits on the lock.
        self._thread = threading.Thread(target=self._run, name="cluster-meter", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            try:
                self.poll()
            except Exception as e:  # noqa: BLE001 - a failed poll must not end the study
                print(f"cluster meter: poll failed ({e!r}); the next poll retries")
            if self._stop.wait(self.poll_s):
                return

    def poll(self) -> None:
        """Start meters on nodes that joined, read every meter, keep the latest readings."""
        import ray
        from ray.exceptions import GetTimeoutError, RayActorError
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        with self._lock:
            self._last_poll = time.monotonic()
            joined_s = self.started_s if not self.meters else time.time()
            nodes = ray.nodes()
            alive = {n["NodeID"] for n in nodes if n["Alive"]}
            for node in nodes:
                node_id = node["NodeID"]
                if node["Alive"] and node_id not in self.meters:
                    head = "node:__internal_head__" in (node.get("Resources") or {})
                    self.sizes[node_id] = self.head_vm_size if head else self.vm_size
                    self.joined[node_id] = joined_s
                    self.meters[node_id] = self._actor.options(
                        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False)
                    ).remote(node_id, self.cpu_tdp_w, self.sizes[node_id])
            live = {n: m for n, m in self.meters.items() if n not in self.lost}
            pending = {n: m.read.remote() for n, m in live.items()}
            for node_id, ref in pending.items():
                try:
                    self.readings[node_id] = {
                        **ray.get(ref, timeout=self.read_timeout_s),
                        "stale": False,
                    }
                except (RayActorError, GetTimeoutError):
                    if node_id in alive and node_id in self.readings:
                        # a slow answer is not a lost node: keep its last reading, flagged
                        self.readings[node_id] = {**self.readings[node_id], "stale": True}
                    elif node_id not in alive:
                        # Ray says the node is dead: keep what it read up to its last poll.
                        self.lost[node_id] = time.time()
            total = cluster_total(list(self.readings.values()))["energy_j"]
            if total is not None and total > self._converted_j:
                self.co2_kg = (self.co2_kg or 0.0) + self.carbon.co2_kg(
                    total - self._converted_j, time.time()
                )
                self._converted_j = total
            now = time.time()
            held = [
                (self.sizes.get(n, self.vm_size), self.lost.get(n, now) - self.joined[n])
                for n in self.readings
            ]
            if self.live_tags is not None:
                self._publish(now, total)
            self.series.append(
                (
                    now,
                    total,
                    self.co2_kg,
                    self.billing(held) if self.billing is not None and held else None,
                )
            )
            if self.snapshot is not None:
                tmp = self.snapshot.with_name(f".{self.snapshot.name}.tmp")
                tmp.write_text(json.dumps(self.reading(None)))
                os.replace(tmp, self.snapshot)
                if self.mirror is not None:
                    self.mirror.push(self.snapshot.name)

    def _publish(self, now: float, total_j: float | None) -> None:
        """The live gauges: energy since the study started (earlier runs of a resumed study
        included), power over the interval since the last poll."""
        from trainables.live_metrics import publish_cluster

        earlier = [r.get("energy_j") for r in self.previous_runs if isinstance(r, dict)]
        before = self.series[-1] if self.series else None
        power_w = None
        if before is not None and before[1] is not None and total_j is not None and now > before[0]:
            power_w = (total_j - before[1]) / (now - before[0])
        publish_cluster(self.live_tags, measured_sum([total_j, *earlier]), power_w)

    def spend(self, max_age_s: float = 1.0) -> ClusterSpend:
        """The whole cluster's running totals for a budget (energy with PUE), polling first
        when the last poll is older than `max_age_s`."""
        with self._lock:  # the first poll may still run in the meter's thread: wait for it
            if time.monotonic() - self._last_poll > max_age_s:
                self.poll()
            reading = self.reading(None)
        previous = [r for r in self.previous_runs if isinstance(r, dict)]
        energy_j = measured_sum(r.get("energy_j") for r in (reading, *previous))
        return ClusterSpend(
            energy_kwh=energy_j / J_PER_KWH * self.carbon.pue if energy_j is not None else None,
            co2_kg=measured_sum(r.get("co2_kg") for r in (reading, *previous)),
            cost_usd=self.billed_usd(reading["nodes"]),
        )

    def billed_usd(self, nodes: list[dict[str, Any]]) -> float | None:
        """What the VMs cost for the time this run held them (None without prices)."""
        if self.billing is None or not nodes:
            return None
        return self.billing(
            [(self.sizes.get(n["node_id"], self.vm_size), n["held_s"]) for n in nodes]
        )

    def finish(self, trial_energy_j: float | None) -> dict[str, Any]:
        """Stop polling and read every node a last time."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.poll()
        return self.reading(trial_energy_j)

    def reading(self, trial_energy_j: float | None) -> dict[str, Any]:
        """Per-node readings so far, the cluster total, the gap to the trials' sum (overhead)."""
        now = time.time()
        nodes = [
            {
                **r,
                "lost": node_id in self.lost,
                "held_s": self.lost.get(node_id, now) - self.joined[node_id],
            }  # what the VM is billed for
            for node_id, r in self.readings.items()
        ]
        total = cluster_total(nodes)
        return {
            "nodes": nodes,
            **total,
            "trials_energy_j": trial_energy_j,
            "overhead_energy_j": (total["energy_j"] - trial_energy_j)
            if trial_energy_j is not None and total["energy_j"] is not None
            else None,
            "co2_kg": self.co2_kg,
            "billed_usd": self.billed_usd(nodes),
            "series": {
                "columns": ["time_s", "energy_j", "co2_kg", "billed_usd"],
                "rows": self.series,
            },
            "note": f"every node polled each {self.poll_s:g} s: a node that joined is metered from "
            "the first poll after it joined; a lost node counts up to its last poll",
            "previous_runs": self.previous_runs,  # interrupted runs of this study (--resume)
        }


def cluster_total(nodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Sums per part; a part no node measured stays None. Several Ray nodes on one host count
    once: each node reads the whole host (its busy CPU time, its used RAM) since that node started,
    so the host's CPU and RAM are the largest of its nodes' readings (the node that ran longest; a
    node lost early is superseded by one still running; a lower bound where their spans only
    overlap), and each GPU counts once by its UUID."""
    by_host: dict[Any, list[dict[str, Any]]] = {}
    for n in nodes:
        by_host.setdefault(n.get("host") or n.get("node_id") or id(n), []).append(n)
    gpus: dict[str, float] = {}
    unkeyed = []
    for n in nodes:
        if n.get("gpu_by_uuid"):
            gpus.update({u: max(j, gpus.get(u, 0.0)) for u, j in n["gpu_by_uuid"].items()})
        elif n.get("gpu_j") is not None:
            unkeyed.append(n["gpu_j"])  # an older reading without UUIDs
    out: dict[str, Any] = {}
    out["energy_gpu_j"] = measured_sum([*gpus.values(), *unkeyed])
    for part in ("cpu", "ram"):
        out[f"energy_{part}_j"] = measured_sum(
            max(readings)
            for host_nodes in by_host.values()
            if (readings := [n[f"{part}_j"] for n in host_nodes if n.get(f"{part}_j") is not None])
        )
    out["energy_j"] = measured_sum(out[f"energy_{p}_j"] for p in ENERGY_PARTS)
    out["hosts"] = len(by_host)
    return out
