"""CPU and RAM energy of one host: RAPL counters where the kernel exposes them, else an estimate.

- CPU `counter`: RAPL package counters (`/sys/class/powercap/intel-rapl:N/energy_uj`, wrap-around
  via `max_energy_range_uj`), attributed to a process by its share of the machine's busy CPU time.
- CPU `estimated` (no RAPL, e.g. Azure VMs): package power x the process's CPU-time share,
  ``cpu_j = package_w * process_cpu_s / logical_cpus`` (`cpu_power_model` says where the watts
  come from: `cpu_tdp_w`, the VM's host CPU in `core/data/azure_vm_cpu.csv`, CodeCarbon's table,
  or its 4 W per logical CPU fallback).
- RAM `estimated`: 3 W per 8 GiB (CodeCarbon < 3.0) of the resident set.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import platform
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from core.footprint import ESTIMATE_BAND

RAM_W_PER_GIB = 3.0 / 8.0  # CodeCarbon < 3.0: 3 W per 8 GB of DDR3/DDR4


DEFAULT_W_PER_LOGICAL_CPU = 4.0  # CodeCarbon's DEFAULT_POWER_PER_CORE (per thread)


POWERCAP_DIR = Path("/sys/class/powercap")


GIB = 1024**3


class Rapl:
    """Package RAPL counters (µJ), attributed to this process by its busy-CPU share."""

    def __init__(self, zones: list[tuple[Path, int]]) -> None:
        self._zones, self.error = zones, ""

    @classmethod
    def open(cls, root: Path) -> Rapl | None:
        zones = []
        for zone in sorted(root.glob("intel-rapl:*")):
            if not re.fullmatch(r"intel-rapl:\d+", zone.name):
                continue  # sub-zones (core, dram) are inside the package figure or not CPU
            try:
                if not (zone / "name").read_text().startswith("package"):
                    continue
                int((zone / "energy_uj").read_text())
                range_uj = int((zone / "max_energy_range_uj").read_text())
            except (OSError, ValueError):
                return None  # unreadable (root-only since 2020) or odd: estimate instead
            if range_uj <= 0:
                return None
            zones.append((zone / "energy_uj", range_uj))
        return cls(zones) if zones else None

    def read(self) -> tuple[tuple[int, ...], float] | None:
        try:
            return tuple(int(path.read_text()) for path, _ in self._zones), machine_busy_cpu_s()
        except (OSError, ValueError) as e:
            self.error = str(e)
            return None

    def attributed_j(
        self, start: tuple[tuple[int, ...], float] | None, process_cpu_s: float
    ) -> float | None:
        end = self.read()
        if start is None or end is None:
            return None
        package_uj = sum(
            (b - a) % rng for a, b, (_, rng) in zip(start[0], end[0], self._zones, strict=True)
        )
        busy_s = end[1] - start[1]
        share = min(1.0, process_cpu_s / busy_s) if busy_s > 0 else 0.0
        return package_uj / 1e6 * share


def machine_busy_cpu_s() -> float:
    """CPU seconds the whole machine spent busy (all logical CPUs), from /proc/stat via psutil."""
    t = psutil.cpu_times()
    return sum(getattr(t, f, 0.0) for f in ("user", "nice", "system", "irq", "softirq"))


@dataclass(frozen=True)
class CpuPowerModel:
    """Watts per busy logical CPU for the CPU estimate (no RAPL), and where the figure comes from.

    estimated cpu_j = w_per_thread x CPU-seconds (a CPU-second is one logical CPU busy for 1 s).
    """

    w_per_thread: float
    basis: str  # vm_share | energy.cpu_tdp_w | package_share | per_thread_fallback
    description: str

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "band": ESTIMATE_BAND}


def cpu_power_model(cpu_tdp_w: float = 0.0, vm_size: str = "") -> CpuPowerModel:
    """The CPU estimate's watts per busy thread, best first:

    1. `energy.cpu_tdp_w`: the user's package power for the CPUs this OS sees, / its logical CPUs;
    2. a cloud VM of a known size (`core/data/azure_vm_cpu.csv`): the host package's TDP / the
       host's threads; a VM owns only its vCPUs' share of the package (TDP / the VM's own
       vCPUs would charge it for the whole package, 5-8x too much on Azure's sizes);
    3. bare metal (no hypervisor) whose CPU model is in CodeCarbon's table: TDP / logical CPUs;
    4. CodeCarbon's per-thread fallback, 4 W per logical CPU (any other VM or unknown CPU).
    """
    from core.footprint import vm_cpu_row

    threads = os.cpu_count() or 1
    if cpu_tdp_w > 0:
        return CpuPowerModel(
            cpu_tdp_w / threads,
            "energy.cpu_tdp_w",
            f"energy.cpu_tdp_w={cpu_tdp_w:g} W / {threads} logical CPUs",
        )
    row = vm_cpu_row(vm_size) if vm_size else None
    if row is not None:
        tdp, host_threads = float(row["host_tdp_w"]), int(row["host_threads"])
        return CpuPowerModel(
            tdp / host_threads,
            "vm_share",
            f"{row['vm_size']}: {row['host_cpu']} {tdp:g} W / {host_threads} host threads "
            f"({row['source']}, {row['source_date']})",
        )
    model = cpu_model_name()
    tdp_w = codecarbon_tdp_w(model) if model and not running_on_hypervisor() else None
    if tdp_w:
        return CpuPowerModel(
            tdp_w / threads,
            "package_share",
            f"CodeCarbon cpu_power.csv TDP for {model!r}: {tdp_w:g} W / {threads} logical CPUs",
        )
    why = (
        "a VM of a size without a host row"
        if running_on_hypervisor()
        else f"{model or 'this CPU'!r} not in its table"
    )
    return CpuPowerModel(
        DEFAULT_W_PER_LOGICAL_CPU,
        "per_thread_fallback",
        f"CodeCarbon's fallback, {DEFAULT_W_PER_LOGICAL_CPU:g} W per logical CPU ({why})",
    )


def running_on_hypervisor() -> bool:
    """Whether this OS runs in a VM (the `hypervisor` CPU flag), where TDP / visible CPUs fails."""
    with contextlib.suppress(OSError):
        return " hypervisor" in Path("/proc/cpuinfo").read_text()
    return False


def cpu_model_name() -> str:
    """This CPU's model name from /proc/cpuinfo ('' if unknown)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor()


@functools.cache
def codecarbon_tdp_w(model: str) -> float | None:
    """TDP (W) of `model` in CodeCarbon's CPU table, read from its file without importing it."""
    spec = importlib.util.find_spec("codecarbon")
    if spec is None or not spec.submodule_search_locations:
        return None
    table = Path(next(iter(spec.submodule_search_locations))) / "data/hardware/cpu_power.csv"
    try:
        rows = [line.rsplit(",", 1) for line in table.read_text().splitlines()[1:] if "," in line]
    except OSError:
        return None
    name = re.sub(r"\(r\)|\(tm\)", "", model.lower()).split(" cpu @ ")[0]
    name = re.sub(r" cpu\b|@\s*\d+\.\d+ghz", "", name)
    words = set(re.findall(r"[a-z0-9]+", name))
    exact = [tdp for row, tdp in rows if set(re.findall(r"[a-z0-9]+", row.lower())) == words]
    subset = [tdp for row, tdp in rows if set(re.findall(r"[a-z0-9]+", row.lower())) <= words]
    found = exact or subset
    return float(found[0]) if len(found) == 1 else None
