"""Per-worker energy meter: named measurement windows over this worker's own devices.

In the style of Zeus's `ZeusMonitor` (ml-energy/zeus): `begin_window(name)` / `end_window(name)`
return a `Measurement`; windows may overlap; a `with meter.measure(name)` helper covers the simple
case. Each Ray Train worker meters only its own GPU, matched by NVML UUID, so summing workers
counts every GPU once (Ray shares `CUDA_VISIBLE_DEVICES` among a node's workers).

How each part is obtained (the `*_source` label says which):

- GPU `counter`: deltas of NVML's cumulative `nvmlDeviceGetTotalEnergyConsumption` (mJ, Volta
  and newer; updates about every 100 ms, so very short windows read 0).
  GPU `power_integral` (pre-Volta only): `nvmlDeviceGetPowerUsage` (mW) sampled by a daemon thread
  every `sample_interval_s` while a window is open, plus at both window ends; trapezoid rule.
- CPU `counter`: RAPL package counters (`/sys/class/powercap/intel-rapl:N/energy_uj`, wrap-around
  via `max_energy_range_uj`), attributed to this process by its share of the machine's busy CPU
  time in the window, so that the workers on one node add up to the package energy, not N times it.
  CPU `estimated` (no RAPL, e.g. Azure VMs): package power x this process's CPU-time share,
  ``cpu_j = package_w * process_cpu_s / logical_cpus``. Package power: `cpu_tdp_w` if given, else
  the TDP of this CPU model in CodeCarbon's `cpu_power.csv` (exact name match after CodeCarbon's
  clean-up, or a unique table row whose words all occur in the model name), else CodeCarbon's
  fallback of 4 W per logical CPU.
- RAM `estimated`: 3 W per 8 GiB (CodeCarbon < 3.0, after Crucial's guidance) applied to this
  process's resident set, averaged over the window's two ends: ``ram_j = 0.375 * rss_gib * s``.

Missing is None, never 0. If NVML fails during a window (a read at either end, or any power
sample in between), that window's `gpu_j` is None and a warning says why; later windows try again.
The same holds for a RAPL read. Costs: counters are read only at window ends; the sampling thread
exists only for the power integral, and only while a window is open.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import os
import platform
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from core.footprint import ESTIMATE_BAND
from core.measurement import Measurement, weakest_source

RAM_W_PER_GIB = 3.0 / 8.0  # CodeCarbon < 3.0: 3 W per 8 GB of DDR3/DDR4
DEFAULT_W_PER_LOGICAL_CPU = 4.0  # CodeCarbon's DEFAULT_POWER_PER_CORE (per thread)
POWERCAP_DIR = Path("/sys/class/powercap")
GIB = 1024**3


def cuda_device_uuid(index: int) -> str | None:
    """NVML's UUID ("GPU-xxxxxxxx-...") of CUDA device `index`; None without CUDA (or on ROCm)."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available() or torch.version.hip:
        return None
    raw = str(torch.cuda.get_device_properties(index).uuid)
    return raw if raw.startswith(("GPU-", "MIG-")) else f"GPU-{raw}"


@dataclass
class Window:
    """What `EnergyMeter.measure` yields: `measurement` is set when the `with` block ends."""

    name: str
    measurement: Measurement | None = None


@dataclass(frozen=True)
class _Start:
    t_s: float
    cpu_s: float
    rss_bytes: int
    gpu: list[Any]  # one start reading per GPU backend
    rapl: tuple[tuple[int, ...], float] | None


class EnergyMeter:
    """Meters this worker's GPUs (by NVML UUID), its CPU-time share and its RAM, per named window.

    >>> uuids = [cuda_device_uuid(i) for i in range(torch.cuda.device_count())]
    >>> meter = EnergyMeter(gpu_uuids=uuids, sync=torch.cuda.synchronize)
    >>> with meter.measure("segment") as window:
    ...     train()
    >>> window.measurement.gpu_j

    `gpu_uuids` names every GPU this worker holds (empty: meters no GPU, gpu_j None); `gpu_uuid`
    is the one-GPU shorthand. A UUID that NVML does not know raises ValueError; NVML being absent
    or failing to start gives gpu_j None with a warning. A MIG slice (`MIG-...`) is metered by its
    parent GPU's counter, labelled `shared_device`: NVML has no counter per slice, so the figure
    is the whole GPU's, other slices' work included. The CPU estimate (no RAPL) follows
    `cpu_power_model(cpu_tdp_w, vm_size)`. `sync` runs at both ends of every window (pass
    `torch.cuda.synchronize` so queued kernels land in the window). `clock`, `cpu_time` (process
    CPU seconds), `rss_bytes` and `nvml` (the `pynvml` module) are replaceable for tests.
    `sample_interval_s` is the power-sampling period of pre-Volta GPUs, in [0.01, 0.1] s, or 0
    for no thread (samples only at window ends and on `sample_gpu_power()`).
    """

    def __init__(
        self,
        gpu_uuid: str | None = None,
        cpu_tdp_w: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        gpu_uuids: Sequence[str] = (),
        vm_size: str = "",
        cpu_time: Callable[[], float] = time.process_time,
        rss_bytes: Callable[[], int] | None = None,
        sync: Callable[[], None] | None = None,
        nvml: ModuleType | None = None,
        sample_interval_s: float = 0.05,
    ) -> None:
        if not (sample_interval_s == 0 or 0.01 <= sample_interval_s <= 0.1):
            raise ValueError(f"sample_interval_s={sample_interval_s!r}: use 0.01 to 0.1 s (or 0)")
        self.gpu_uuids = list(gpu_uuids) or ([gpu_uuid] if gpu_uuid else [])
        self._clock, self._cpu_time, self._sync = clock, cpu_time, sync
        self._rss = rss_bytes or _process_rss_bytes(psutil.Process())
        self._gpus = _open_gpus(self.gpu_uuids, nvml, clock, sample_interval_s)
        self._rapl = _Rapl.open(POWERCAP_DIR)
        self.cpu_model = cpu_power_model(cpu_tdp_w, vm_size)
        self._open: dict[str, _Start] = {}

    @property
    def gpu_source(self) -> str | None:
        return weakest_source(g.source for g in self._gpus if g is not None)

    @property
    def cpu_source(self) -> str:
        return "counter" if self._rapl else "estimated"

    def describe(self) -> dict[str, Any]:
        """The meter's methods and constants, for a study's metadata."""
        return {
            "gpu_uuids": self.gpu_uuids,
            "gpu_source": self.gpu_source,
            "cpu_source": self.cpu_source,
            "cpu_model": self.cpu_model.to_dict(),
            "ram_source": "estimated",
            "ram_w_per_gib": RAM_W_PER_GIB,
        }

    def begin_window(self, name: str) -> None:
        """Open window `name` (several may be open at once)."""
        if name in self._open:
            raise ValueError(f"window {name!r} is already open; end it first or use another name")
        if self._sync:
            self._sync()
        # GPU backends read the clock themselves, so samples and the window share timestamps.
        starts = [g.begin() if g else (self._clock(), None) for g in self._gpus]
        t_s = starts[0][0] if starts else self._clock()
        rapl = self._rapl.read() if self._rapl else None
        self._open[name] = _Start(t_s, self._cpu_time(), self._rss(), [b for _, b in starts], rapl)

    def end_window(self, name: str) -> Measurement:
        """Close window `name` and return what it used, in joules."""
        if name not in self._open:
            raise ValueError(f"window {name!r} is not open; open ones: {sorted(self._open)}")
        if self._sync:
            self._sync()
        start = self._open.pop(name)
        ends = [
            g.end(b) if g else (self._clock(), None)
            for g, b in zip(self._gpus, start.gpu, strict=True)
        ]
        t_s = ends[0][0] if ends else self._clock()
        cpu_s, rss = self._cpu_time(), self._rss()
        duration_s, used_cpu_s = t_s - start.t_s, max(0.0, cpu_s - start.cpu_s)
        fields: dict[str, Any] = {"duration_s": duration_s}
        if self._gpus:
            measured = [
                (j, g.source)
                for (_, j), g in zip(ends, self._gpus, strict=True)
                if g is not None and j is not None
            ]
            fields["gpu_coverage"] = (len(measured), len(self._gpus))
            if len(measured) < len(self._gpus):
                errors = (
                    "; ".join(g.error for g in self._gpus if g is not None and g.error)
                    or "NVML unavailable"
                )
                warnings.warn(
                    f"energy window {name!r}: GPU energy of {len(self._gpus) - len(measured)} of "
                    f"{len(self._gpus)} devices unknown ({errors}); reported as None or "
                    "partial, not 0",
                    RuntimeWarning,
                    stacklevel=2,
                )
            if measured:
                source = weakest_source(src for _, src in measured)
                fields.update(
                    gpu_j=sum(j for j, _ in measured),
                    gpu_source=source if len(measured) == len(self._gpus) else "partial",
                )
        if self._rapl:
            cpu_j = self._rapl.attributed_j(start.rapl, used_cpu_s)
            fields["cpu_coverage"] = (int(cpu_j is not None), 1)
            if cpu_j is None:
                warnings.warn(
                    f"energy window {name!r}: RAPL read failed ({self._rapl.error}); "
                    "CPU energy reported as None",
                    RuntimeWarning,
                    stacklevel=2,
                )
            else:
                fields.update(cpu_j=cpu_j, cpu_source="counter")
        else:
            fields.update(
                cpu_j=self.cpu_model.w_per_thread * used_cpu_s,
                cpu_source="estimated",
                cpu_coverage=(1, 1),
            )
        mean_rss_gib = (start.rss_bytes + rss) / 2 / GIB
        fields.update(
            ram_j=RAM_W_PER_GIB * mean_rss_gib * duration_s,
            ram_source="estimated",
            ram_coverage=(1, 1),
        )
        if not self._open:
            for g in self._gpus:
                if g is not None:
                    g.idle()
        return Measurement(**fields)

    @contextlib.contextmanager
    def measure(self, name: str) -> Iterator[Window]:
        """`with meter.measure("eval") as w: ...`; then `w.measurement` holds the result."""
        window = Window(name)
        self.begin_window(name)
        try:
            yield window
        finally:
            window.measurement = self.end_window(name)

    def sample_gpu_power(self) -> None:
        """Take one power sample now (power_integral only; the thread calls this by itself)."""
        for g in self._gpus:
            if isinstance(g, _PowerIntegral):
                g.sample()

    def close(self) -> None:
        """Stop the sampling threads, if any, and release NVML."""
        opened = [g for g in self._gpus if g is not None]
        for g in opened:
            g.close()
        if opened:
            with contextlib.suppress(Exception):
                opened[0]._nvml.nvmlShutdown()
        self._gpus = [None] * len(self._gpus)


def _process_rss_bytes(process: psutil.Process) -> Callable[[], int]:
    return lambda: process.memory_info().rss


# --------------------------------------------------------------------------------------------
# GPU: NVML counter, or integrated power on GPUs without the counter


class GpuReader:
    """Cumulative energy of every GPU of a machine since the reader was made, per NVML UUID: the
    whole-node view of the cluster meter (the same backends as `EnergyMeter`: counter, or
    integrated power sampled by a thread while the reader lives)."""

    def __init__(self, uuids: Sequence[str], backends: Sequence[Any], clock: Callable[[], float]):
        self.uuids, self._backends = list(uuids), list(backends)
        self._starts = [b.begin()[1] if b is not None else None for b in self._backends]

    @classmethod
    def all_devices(
        cls,
        nvml: ModuleType | None = None,
        clock: Callable[[], float] = time.monotonic,
        sample_interval_s: float = 0.05,
    ) -> GpuReader:
        """Every GPU NVML lists here (none, or no NVML: a reader of nothing)."""
        try:
            nvml = nvml or importlib.import_module("pynvml")
            nvml.nvmlInit()
            uuids = [
                nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))
                for i in range(nvml.nvmlDeviceGetCount())
            ]
        except Exception:  # noqa: BLE001 - no NVML, no driver, no GPU: nothing to read
            return cls([], [], clock)
        uuids = [u.decode() if isinstance(u, bytes) else u for u in uuids]
        return cls(uuids, [_open_gpu(u, nvml, clock, sample_interval_s) for u in uuids], clock)

    @property
    def source(self) -> str | None:
        return weakest_source(b.source for b in self._backends if b is not None)

    def cumulative_j(self) -> dict[str, float | None]:
        """Joules per GPU since the reader was made; None for a GPU whose read failed now."""
        out: dict[str, float | None] = {}
        for uuid, backend, start in zip(self.uuids, self._backends, self._starts, strict=True):
            out[uuid] = backend.end(start)[1] if backend is not None and start is not None else None
        return out


def _open_gpus(
    uuids: Sequence[str], nvml: ModuleType | None, clock: Callable[[], float], interval_s: float
) -> list[_Counter | _PowerIntegral | None]:
    """One backend per GPU (None where NVML cannot read it); empty without GPUs."""
    if not uuids:
        return []
    if nvml is None:
        try:
            nvml = importlib.import_module("pynvml")
        except ImportError:
            warnings.warn(
                "pynvml is not importable (pip install nvidia-ml-py); GPU energy will be None",
                RuntimeWarning,
                stacklevel=3,
            )
            return [None] * len(uuids)
    try:
        nvml.nvmlInit()
    except nvml.NVMLError as e:
        warnings.warn(
            f"NVML did not start ({e}); GPU energy will be None", RuntimeWarning, stacklevel=3
        )
        return [None] * len(uuids)
    return [_open_gpu(uuid, nvml, clock, interval_s) for uuid in uuids]


def _open_gpu(
    uuid: str, nvml: ModuleType, clock: Callable[[], float], interval_s: float
) -> _Counter | _PowerIntegral | None:
    try:
        handle = nvml.nvmlDeviceGetHandleByUUID(uuid)
    except nvml.NVMLError as e:
        known: list[str] | str = "no list (NVML failed to enumerate)"
        with contextlib.suppress(nvml.NVMLError):
            known = [
                nvml.nvmlDeviceGetUUID(nvml.nvmlDeviceGetHandleByIndex(i))
                for i in range(nvml.nvmlDeviceGetCount())
            ]
        nvml.nvmlShutdown()
        raise ValueError(
            f"gpu_uuid={uuid!r}: NVML does not know this GPU ({e}); it knows "
            f"{known}. Pass cuda_device_uuid(torch.cuda.current_device()) from "
            "inside the worker, or None to meter no GPU"
        ) from e
    shared = uuid.startswith("MIG-")
    if shared:  # a MIG slice has no counter of its own: its parent GPU's is the only one
        handle = nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle(handle)
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
        counter = _Counter(nvml, handle, clock)
        if shared:
            counter.source = "shared_device"
        return counter
    except nvml.NVMLError_NotSupported:
        pass  # pre-Volta: integrate power instead
    except nvml.NVMLError as e:
        warnings.warn(
            f"NVML energy counter of {uuid} unreadable ({e}); its GPU energy will be None",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    integral = _PowerIntegral(nvml, handle, clock, interval_s)
    if shared:
        integral.source = "shared_device"
    return integral


class _Counter:
    source = "counter"

    def __init__(self, nvml: ModuleType, handle: Any, clock: Callable[[], float]) -> None:
        self._nvml, self._handle, self._clock, self.error = nvml, handle, clock, ""

    def begin(self) -> tuple[float, int | None]:
        return self._clock(), self._read_mj()

    def end(self, start_mj: int | None) -> tuple[float, float | None]:
        t_s, end_mj = self._clock(), self._read_mj()
        if start_mj is None or end_mj is None:
            return t_s, None
        if end_mj < start_mj:
            self.error = "the counter went backwards: GPU reset or driver reload?"
            return t_s, None
        return t_s, (end_mj - start_mj) / 1000.0

    def _read_mj(self) -> int | None:
        try:
            return self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)
        except self._nvml.NVMLError as e:
            self.error = f"nvmlDeviceGetTotalEnergyConsumption failed: {e}"
            return None

    def idle(self) -> None:
        pass

    def close(self) -> None:
        pass  # the meter shuts NVML down once for all its devices


class _PowerIntegral:
    """Running trapezoid integral of sampled power; a window = difference of two snapshots."""

    source = "power_integral"

    def __init__(
        self, nvml: ModuleType, handle: Any, clock: Callable[[], float], interval_s: float
    ) -> None:
        self._nvml, self._handle, self._clock, self._interval_s = nvml, handle, clock, interval_s
        self._lock = threading.Lock()
        self._last: tuple[float, float] | None = None  # (t_s, power_w) of the last good sample
        self._energy_j, self._failures, self.error = 0.0, 0, ""
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def sample(self) -> tuple[float, tuple[float, int] | None]:
        """Integrate up to now: (t_s, (running joules, failures so far) or None if this failed)."""
        with self._lock:
            t_s = self._clock()
            try:
                power_w = self._nvml.nvmlDeviceGetPowerUsage(self._handle) / 1000.0
            except self._nvml.NVMLError as e:
                self._failures, self._last = self._failures + 1, None
                self.error = f"nvmlDeviceGetPowerUsage failed: {e}"
                return t_s, None
            if self._last is not None:
                last_t_s, last_w = self._last
                self._energy_j += (last_w + power_w) / 2 * (t_s - last_t_s)
            self._last = (t_s, power_w)
            return t_s, (self._energy_j, self._failures)

    def begin(self) -> tuple[float, tuple[float, int] | None]:
        snapshot = self.sample()
        if self._interval_s and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="gpu-power", daemon=True)
            self._thread.start()
        return snapshot

    def end(self, start: tuple[float, int] | None) -> tuple[float, float | None]:
        t_s, end = self.sample()
        if start is None or end is None or end[1] != start[1]:
            return t_s, None  # a failed sample at an end or inside: the integral has a hole
        return t_s, end[0] - start[0]

    def idle(self) -> None:
        """No window open: stop sampling and forget the last sample."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=1.0)
            self._thread = None
        with self._lock:
            self._last = None

    def close(self) -> None:
        self.idle()

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()


# --------------------------------------------------------------------------------------------
# CPU: RAPL where readable, otherwise a stated estimate


class _Rapl:
    """Package RAPL counters (µJ), attributed to this process by its busy-CPU share."""

    def __init__(self, zones: list[tuple[Path, int]]) -> None:
        self._zones, self.error = zones, ""

    @classmethod
    def open(cls, root: Path) -> _Rapl | None:
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
