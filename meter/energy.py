"""Per-worker energy meter: named measurement windows over this worker's own devices.

In the style of Zeus's `ZeusMonitor` (ml-energy/zeus): `begin_window(name)` / `end_window(name)`
return a `Measurement`; windows may overlap; a `with meter.measure(name)` helper covers the simple
case. Each Ray Train worker meters only its own GPU, matched by NVML UUID, so summing workers
counts every GPU once (Ray shares `CUDA_VISIBLE_DEVICES` among a node's workers).

The device backends, each with how its part is obtained (the `*_source` label says which):
`meter/gpu.py` (NVML counter or power integral, by UUID) and `meter/host.py` (RAPL counters or
the CPU estimate, and the RAM estimate); this module opens them and keeps the windows.

Missing is None, never 0. If NVML fails during a window (a read at either end, or any power
sample in between), that window's `gpu_j` is None and a warning says why; later windows try again.
The same holds for a RAPL read. Costs: counters are read only at window ends; the sampling thread
exists only for the power integral, and only while a window is open.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import psutil

from core.measurement import Measurement, weakest_source
from meter.gpu import GpuPowerIntegral, close_gpus, open_gpus
from meter.host import GIB, POWERCAP_DIR, RAM_W_PER_GIB, Rapl, cpu_power_model


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
        self._gpus = open_gpus(self.gpu_uuids, nvml, clock, sample_interval_s)
        self._rapl = Rapl.open(POWERCAP_DIR)
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
            if isinstance(g, GpuPowerIntegral):
                g.sample()

    def close(self) -> None:
        """Stop the sampling threads, if any, and release NVML."""
        close_gpus(self._gpus)
        self._gpus = [None] * len(self._gpus)


def _process_rss_bytes(process: psutil.Process) -> Callable[[], int]:
    return lambda: process.memory_info().rss
