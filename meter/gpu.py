"""GPU energy by NVML: a cumulative counter where the GPU has one, else integrated power.

- `counter`: deltas of NVML's cumulative `nvmlDeviceGetTotalEnergyConsumption` (mJ, Volta and
  newer; updates about every 100 ms, so very short windows read 0).
- `power_integral` (pre-Volta only): `nvmlDeviceGetPowerUsage` (mW) sampled by a daemon thread
  every `sample_interval_s` while a window is open, plus at both window ends; trapezoid rule.
- `shared_device`: the counter of a GPU other work shares too (a MIG slice reads its whole GPU).

Each device is matched by its NVML UUID, so each is metered once however workers share
`CUDA_VISIBLE_DEVICES`. `pynvml` comes from `nvidia-ml-py`; tests fake it at this boundary.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

from core.measurement import weakest_source


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


def open_gpus(
    uuids: Sequence[str], nvml: ModuleType | None, clock: Callable[[], float], interval_s: float
) -> list[GpuCounter | GpuPowerIntegral | None]:
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


def close_gpus(gpus: Sequence[GpuCounter | GpuPowerIntegral | None]) -> None:
    """Stop the sampling threads, if any, and release NVML once for all the devices."""
    opened = [g for g in gpus if g is not None]
    for g in opened:
        g.close()
    if opened:
        with contextlib.suppress(Exception):
            opened[0]._nvml.nvmlShutdown()


def _open_gpu(
    uuid: str, nvml: ModuleType, clock: Callable[[], float], interval_s: float
) -> GpuCounter | GpuPowerIntegral | None:
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
        counter = GpuCounter(nvml, handle, clock)
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
    integral = GpuPowerIntegral(nvml, handle, clock, interval_s)
    if shared:
        integral.source = "shared_device"
    return integral


class GpuCounter:
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


class GpuPowerIntegral:
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
