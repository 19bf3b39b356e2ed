"""The per-worker energy meter. No GPU here: NVML is a scripted fake module, time a fake clock."""

from __future__ import annotations

import os
import sys
import threading
import time
import types

import pytest

from core import footprint
from core.measurement import Measurement, sum_measurements
from meter import energy, host
from meter.energy import EnergyMeter
from meter.gpu import cuda_device_uuid

GIB = 1024**3


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeGpu:
    def __init__(self, uuid: str, energy_mj: int = 0, power_mw: int = 0, counter: bool = True):
        self.uuid, self.energy_mj, self.power_mw, self.counter = uuid, energy_mj, power_mw, counter
        self.failing = False
        self.power_reads = 0
        self.power_read_event = threading.Event()


def fake_nvml(*gpus: FakeGpu) -> types.ModuleType:
    """A stand-in for `pynvml` (nvidia-ml-py) with the calls the meter makes, in NVML order."""
    nvml = types.ModuleType("pynvml")

    class NVMLError(Exception):
        pass

    class NVMLError_NotSupported(NVMLError):  # noqa: N801 - pynvml's own name
        pass

    class NVMLError_GpuIsLost(NVMLError):  # noqa: N801
        pass

    def handle_by_uuid(uuid: str) -> FakeGpu:
        for gpu in gpus:
            if gpu.uuid == uuid:
                return gpu
        raise NVMLError("Not Found")

    def total_energy(gpu: FakeGpu) -> int:
        if not gpu.counter:
            raise NVMLError_NotSupported("Not Supported")
        if gpu.failing:
            raise NVMLError_GpuIsLost("GPU is lost")
        return gpu.energy_mj

    def power(gpu: FakeGpu) -> int:
        if gpu.failing:
            raise NVMLError_GpuIsLost("GPU is lost")
        gpu.power_reads += 1
        gpu.power_read_event.set()
        return gpu.power_mw

    nvml.NVMLError, nvml.NVMLError_NotSupported = NVMLError, NVMLError_NotSupported
    nvml.nvmlInit = nvml.nvmlShutdown = lambda: None
    nvml.nvmlDeviceGetCount = lambda: len(gpus)
    nvml.nvmlDeviceGetHandleByIndex = lambda i: gpus[i]
    nvml.nvmlDeviceGetUUID = lambda gpu: gpu.uuid
    nvml.nvmlDeviceGetHandleByUUID = handle_by_uuid
    nvml.nvmlDeviceGetTotalEnergyConsumption = total_energy
    nvml.nvmlDeviceGetPowerUsage = power
    return nvml


def meter_for(nvml, uuid, clock, **kw) -> EnergyMeter:
    kw.setdefault("cpu_time", lambda: 0.0)
    kw.setdefault("rss_bytes", lambda: 0)
    return EnergyMeter(gpu_uuid=uuid, clock=clock, nvml=nvml, **kw)


@pytest.fixture(autouse=True)
def no_rapl(tmp_path, monkeypatch):
    """This machine has no RAPL; make sure no test depends on where it runs."""
    monkeypatch.setattr(energy, "POWERCAP_DIR", tmp_path / "no-powercap")


def test_meters_the_gpu_named_by_uuid_when_cuda_and_nvml_order_differ(monkeypatch):
    """NVML mocked (no GPU here): NVML lists A then B, CUDA (fastest first) lists B then A."""
    a, b = FakeGpu("GPU-aaaaaaaa-0000", energy_mj=10_000), FakeGpu("GPU-bbbbbbbb-1111", 5_000)
    cuda_props = {
        0: types.SimpleNamespace(uuid="bbbbbbbb-1111"),
        1: types.SimpleNamespace(uuid="aaaaaaaa-0000"),
    }
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_properties", cuda_props.__getitem__)
    assert cuda_device_uuid(0) == "GPU-bbbbbbbb-1111"

    clock = FakeClock()
    meter = meter_for(fake_nvml(a, b), cuda_device_uuid(0), clock)
    meter.begin_window("segment")
    a.energy_mj += 999_000  # the other GPU's work must not show up
    b.energy_mj += 123_456
    clock.t += 2.0
    m = meter.end_window("segment")
    assert m.gpu_j == 123.456
    assert m.gpu_source == "counter"
    assert m.duration_s == 2.0


def test_workers_sharing_visible_devices_each_meter_their_own_gpu():
    """NVML mocked (no GPU here): two workers see both GPUs; the sum is the truth, not double."""
    g0, g1 = FakeGpu("GPU-0", energy_mj=1_000), FakeGpu("GPU-1", energy_mj=2_000)
    nvml, clock = fake_nvml(g0, g1), FakeClock()
    workers = [meter_for(nvml, "GPU-0", clock), meter_for(nvml, "GPU-1", clock)]
    for w in workers:
        w.begin_window("segment")
    g0.energy_mj += 50_000
    g1.energy_mj += 30_000
    clock.t += 10.0
    parts = [w.end_window("segment") for w in workers]
    assert [p.gpu_j for p in parts] == [50.0, 30.0]
    total = sum_measurements(parts)
    assert total.gpu_j == 80.0  # both devices' deltas, each once (160 if each read both)
    assert total.duration_s == 20.0  # worker-seconds


def test_pre_volta_gpu_integrates_power_with_the_trapezoid_rule():
    """NVML mocked (no GPU here): no energy counter, so sampled power is integrated."""
    gpu = FakeGpu("GPU-v100-less", power_mw=100_000, counter=False)
    clock = FakeClock()
    meter = meter_for(fake_nvml(gpu), gpu.uuid, clock, sample_interval_s=0)
    assert meter.gpu_source == "power_integral"
    meter.begin_window("segment")  # 100 W at t=0
    clock.t += 0.5
    gpu.power_mw = 200_000
    meter.sample_gpu_power()  # (100 + 200) / 2 * 0.5 = 75 J
    clock.t += 0.5
    m = meter.end_window("segment")  # 200 W * 0.5 = 100 J
    assert m.gpu_j == 175.0
    assert m.gpu_source == "power_integral"


def test_power_sampling_thread_runs_only_while_a_window_is_open():
    """NVML mocked (no GPU here): constant 150 W, real clock; energy = 150 W x duration exactly."""
    gpu = FakeGpu("GPU-old", power_mw=150_000, counter=False)
    meter = EnergyMeter(gpu_uuid=gpu.uuid, nvml=fake_nvml(gpu), sample_interval_s=0.01)
    meter.begin_window("segment")
    gpu.power_read_event.clear()
    assert gpu.power_read_event.wait(timeout=5.0)  # the thread sampled (waiting, not metering)
    m = meter.end_window("segment")
    assert gpu.power_reads >= 3  # begin, at least one thread sample, end
    assert m.gpu_j == pytest.approx(150.0 * m.duration_s, rel=1e-9)
    assert not any(t.name == "gpu-power" for t in threading.enumerate())
    meter.close()


def test_counter_failing_mid_run_reports_none_then_recovers():
    """NVML mocked (no GPU here): a failed read makes the window None (with a warning), not 0."""
    gpu = FakeGpu("GPU-x", energy_mj=0)
    clock = FakeClock()
    meter = meter_for(fake_nvml(gpu), gpu.uuid, clock)
    meter.begin_window("a")
    gpu.energy_mj, gpu.failing = 40_000, True
    clock.t += 1.0
    with pytest.warns(RuntimeWarning, match="GPU energy of 1 of 1 devices unknown.*GPU is lost"):
        m = meter.end_window("a")
    assert m.gpu_j is None and m.gpu_source is None
    assert m.total_j == m.cpu_j + m.ram_j  # the other parts still count
    gpu.failing = False
    meter.begin_window("b")
    gpu.energy_mj += 7_000
    assert meter.end_window("b").gpu_j == 7.0


def test_power_sample_failing_inside_a_window_voids_only_that_window():
    """NVML mocked (no GPU here): a hole in the power samples makes the window's integral None."""
    gpu = FakeGpu("GPU-old", power_mw=100_000, counter=False)
    clock = FakeClock()
    meter = meter_for(fake_nvml(gpu), gpu.uuid, clock, sample_interval_s=0)
    meter.begin_window("a")
    clock.t += 1.0
    gpu.failing = True
    meter.sample_gpu_power()
    gpu.failing = False
    clock.t += 1.0
    with pytest.warns(RuntimeWarning, match="nvmlDeviceGetPowerUsage failed"):
        assert meter.end_window("a").gpu_j is None
    meter.begin_window("b")
    clock.t += 2.0
    assert meter.end_window("b").gpu_j == 200.0


def test_no_nvml_gives_none_not_zero(monkeypatch):
    """No NVML at all (pynvml not importable, as on a machine without the package): gpu_j None."""
    monkeypatch.setitem(sys.modules, "pynvml", None)
    with pytest.warns(RuntimeWarning, match="pynvml is not importable"):
        meter = EnergyMeter(gpu_uuid="GPU-1234", cpu_time=lambda: 0.0)
    meter.begin_window("x")
    m = meter.end_window("x")
    assert m.gpu_j is None and m.gpu_source is None
    assert EnergyMeter().gpu_source is None  # no GPU asked for: NVML is not touched


def test_unknown_uuid_raises_with_the_fix():
    """NVML mocked (no GPU here): asking for a GPU NVML does not know is an error, not None."""
    nvml = fake_nvml(FakeGpu("GPU-known"))
    with pytest.raises(ValueError, match=r"GPU-missing.*GPU-known.*cuda_device_uuid"):
        EnergyMeter(gpu_uuid="GPU-missing", nvml=nvml)


def test_cpu_estimate_on_this_machine_is_proportional_to_cpu_time():
    """The real CPU estimate here (no RAPL on this machine): burn CPU, no sleeping."""
    meter = EnergyMeter(cpu_tdp_w=0.0)
    assert meter.cpu_source == "estimated"
    per_cpu_s = meter.cpu_model.w_per_thread
    results = []
    for burn_s in (0.1, 0.3):
        cpu0 = time.process_time()
        with meter.measure("burn") as window:
            _burn_cpu(burn_s)
        used = time.process_time() - cpu0
        m = window.measurement
        assert m.cpu_source == "estimated" and m.cpu_j > 0
        assert m.cpu_j == pytest.approx(per_cpu_s * used, rel=0.05)
        assert m.ram_source == "estimated" and m.ram_j > 0
        results.append(m.cpu_j)
    assert results[1] / results[0] == pytest.approx(3.0, rel=0.15)


def _burn_cpu(seconds: float) -> None:
    end, x = time.process_time() + seconds, 0
    while time.process_time() < end:
        x += 1


def test_cpu_and_ram_estimate_models():
    """Fake clocks: cpu_j = tdp / logical CPUs x cpu_s; ram_j = 3/8 W per GiB x mean RSS x s."""
    clock, cpu = FakeClock(), FakeClock()
    rss = iter([6 * GIB, 10 * GIB])
    meter = EnergyMeter(cpu_tdp_w=64.0, clock=clock, cpu_time=cpu, rss_bytes=lambda: next(rss))
    assert meter.cpu_model.basis == "energy.cpu_tdp_w"
    meter.begin_window("w")
    clock.t += 10.0
    cpu.t += 4.0
    m = meter.end_window("w")
    assert m.cpu_j == pytest.approx(64.0 / os.cpu_count() * 4.0)
    assert m.ram_j == 0.375 * 8 * 10.0  # 30 J
    assert m.gpu_j is None and m.total_j == m.cpu_j + m.ram_j


def test_rapl_counter_with_wraparound_attributed_by_cpu_share(tmp_path, monkeypatch):
    """A fake powercap tree: package counter wraps; this process had 1/4 of the busy CPU time."""
    zone = tmp_path / "intel-rapl:0"
    zone.mkdir()
    (zone / "name").write_text("package-0\n")
    (zone / "max_energy_range_uj").write_text("1000000000\n")
    (zone / "energy_uj").write_text("999000000\n")
    (tmp_path / "intel-rapl:0:0").mkdir()  # a sub-zone: ignored
    busy = iter([1000.0, 1008.0])
    monkeypatch.setattr(energy, "POWERCAP_DIR", tmp_path)
    monkeypatch.setattr(host, "machine_busy_cpu_s", lambda: next(busy))
    clock, cpu = FakeClock(), FakeClock()
    meter = EnergyMeter(clock=clock, cpu_time=cpu, rss_bytes=lambda: 0)
    assert meter.cpu_source == "counter"
    meter.begin_window("w")
    (zone / "energy_uj").write_text("3000000\n")  # wrapped: 1e6 + 3e6 uJ = 4 J
    cpu.t += 2.0
    assert meter.end_window("w").cpu_j == 4.0 * 2.0 / 8.0


def test_overlapping_windows_and_errors():
    """NVML mocked (no GPU here): a segment window spans two eval windows."""
    gpu = FakeGpu("GPU-x")
    clock = FakeClock()
    meter = meter_for(fake_nvml(gpu), gpu.uuid, clock)
    meter.begin_window("segment")
    gpu.energy_mj += 1_000
    meter.begin_window("eval")
    gpu.energy_mj += 2_000
    with pytest.raises(ValueError, match="already open"):
        meter.begin_window("eval")
    assert meter.end_window("eval").gpu_j == 2.0
    gpu.energy_mj += 4_000
    assert meter.end_window("segment").gpu_j == 7.0
    with pytest.raises(ValueError, match="not open"):
        meter.end_window("segment")


def test_sum_keeps_the_weakest_source_and_none_where_all_missing():
    a = Measurement(10.0, gpu_j=100.0, cpu_j=5.0, gpu_source="counter", cpu_source="estimated")
    b = Measurement(20.0, gpu_j=50.0, cpu_j=2.0, gpu_source="power_integral", cpu_source="counter")
    c = Measurement(5.0, cpu_j=1.0, cpu_source="estimated")  # a worker without a GPU
    total = sum_measurements([a, b, c])
    assert total == Measurement(35.0, 150.0, 8.0, None, "power_integral", "estimated", None)
    assert total.total_j == 158.0
    assert total.to_dict()["total_j"] == 158.0 and total.to_dict()["ram_j"] is None
    empty = sum_measurements([])
    assert empty.total_j is None and empty.duration_s == 0


def test_measurement_rejects_values_without_sources():
    with pytest.raises(ValueError, match="gpu_source"):
        Measurement(1.0, gpu_j=0.0)
    with pytest.raises(ValueError, match="cpu_source"):
        Measurement(1.0, cpu_j=1.0, cpu_source="guess")


def test_cpu_estimate_takes_the_vms_share_of_its_host_package(monkeypatch):
    """The two Azure sizes of issue 13, by hand: watts per busy thread = host TDP / host threads
    (not TDP / the VM's own vCPUs, which charged a D8s_v5 the whole package)."""
    d8 = host.cpu_power_model(vm_size="Standard_D8s_v5")  # Xeon Platinum 8370C, 270 W, 64 threads
    assert d8.basis == "vm_share" and d8.w_per_thread == pytest.approx(4.21875)
    assert "8370C" in d8.description and "Green Software Foundation" in d8.description
    a100 = host.cpu_power_model(vm_size="NC24ads_A100_v4")  # EPYC 7V13, 240 W, 128 threads
    assert a100.w_per_thread == pytest.approx(1.875)
    # one CPU-hour on the NC24ads_A100_v4: 1.875 Wh, not 240 W / 24 vCPUs = 10 Wh
    clock, cpu = FakeClock(), FakeClock()
    meter = EnergyMeter(vm_size="NC24ads_A100_v4", clock=clock, cpu_time=cpu, rss_bytes=lambda: 0)
    meter.begin_window("w")
    cpu.t += 3600.0
    assert meter.end_window("w").cpu_j == pytest.approx(1.875 * 3600)


def test_cpu_estimate_without_a_size_row(monkeypatch):
    assert host.codecarbon_tdp_w("Intel(R) Xeon(R) Platinum 8272CL CPU @ 2.60GHz") == 195.0
    assert host.codecarbon_tdp_w("AMD EPYC 7763 64-Core Processor") == 280.0
    assert host.codecarbon_tdp_w("AMD EPYC") is None  # not one model: no guess from the table
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    # a VM of a size the table lacks: TDP / visible CPUs would be wrong, so the per-thread fallback
    monkeypatch.setattr(host, "running_on_hypervisor", lambda: True)
    monkeypatch.setattr(host, "cpu_model_name", lambda: "AMD EPYC 7763 64-Core Processor")
    vm = host.cpu_power_model(vm_size="NC40ads_H100_v5")
    assert vm.basis == "per_thread_fallback" and vm.w_per_thread == 4.0
    # bare metal with a known CPU: its package over the threads this OS sees
    monkeypatch.setattr(host, "running_on_hypervisor", lambda: False)
    metal = host.cpu_power_model()
    assert metal.basis == "package_share" and metal.w_per_thread == pytest.approx(280.0 / 16)
    assert host.cpu_power_model(cpu_tdp_w=64.0).w_per_thread == pytest.approx(4.0)


def test_a_worker_with_two_gpus_meters_both():
    """NVML mocked (no GPU here): one worker holds two GPUs; a third belongs to someone else."""
    g0, g1, other = FakeGpu("GPU-0"), FakeGpu("GPU-1"), FakeGpu("GPU-2")
    clock = FakeClock()
    meter = EnergyMeter(
        gpu_uuids=["GPU-0", "GPU-1"],
        clock=clock,
        nvml=fake_nvml(g0, g1, other),
        cpu_time=lambda: 0.0,
        rss_bytes=lambda: 0,
    )
    meter.begin_window("w")
    g0.energy_mj, g1.energy_mj, other.energy_mj = 40_000, 60_000, 999_000
    clock.t += 1.0
    m = meter.end_window("w")
    assert m.gpu_j == 100.0 and m.gpu_source == "counter" and m.gpu_coverage == (2, 2)


def test_one_of_two_gpu_reads_failing_is_a_partial_lower_bound():
    """NVML mocked (no GPU here): coverage says how much of the figure was measured."""
    g0, g1 = FakeGpu("GPU-0"), FakeGpu("GPU-1")
    clock = FakeClock()
    meter = EnergyMeter(
        gpu_uuids=["GPU-0", "GPU-1"],
        clock=clock,
        nvml=fake_nvml(g0, g1),
        cpu_time=lambda: 0.0,
        rss_bytes=lambda: 0,
    )
    meter.begin_window("w")
    g0.energy_mj, g1.failing = 30_000, True
    with pytest.warns(RuntimeWarning, match="1 of 2 devices unknown"):
        m = meter.end_window("w")
    assert m.gpu_j == 30.0 and m.gpu_source == "partial" and m.coverage("gpu") == 0.5
    # two windows of two workers: 3 of 4 device-windows measured
    whole = Measurement(1.0, gpu_j=50.0, gpu_source="counter", gpu_coverage=(2, 2))
    total = sum_measurements([m, whole])
    assert total.gpu_j == 80.0 and total.gpu_source == "partial" and total.coverage("gpu") == 0.75
    assert sum_measurements([whole, whole]).gpu_source == "counter"


def test_a_mig_slice_reads_its_parent_gpu_labelled_shared():
    """NVML mocked (no GPU here): NVML has no energy counter per MIG slice."""
    parent = FakeGpu("GPU-parent")
    nvml = fake_nvml(parent)
    mig = FakeGpu("MIG-slice-1")
    lookup = nvml.nvmlDeviceGetHandleByUUID
    nvml.nvmlDeviceGetHandleByUUID = lambda uuid: mig if uuid == mig.uuid else lookup(uuid)
    nvml.nvmlDeviceGetDeviceHandleFromMigDeviceHandle = lambda handle: parent
    clock = FakeClock()
    meter = meter_for(nvml, mig.uuid, clock)
    meter.begin_window("w")
    parent.energy_mj += 12_000
    m = meter.end_window("w")
    assert m.gpu_j == 12.0 and m.gpu_source == "shared_device"


def test_estimated_parts_carry_a_band():
    low, high = footprint.energy_band_j(
        {"gpu": (100.0, "counter"), "cpu": (20.0, "estimated"), "ram": (None, None)}
    )
    assert (low, high) == (110.0, 130.0)  # 100 measured + 20 x (1 -/+ 0.5)
    assert footprint.energy_band_j({"cpu": (None, None)}) == (None, None)
