"""The whole-node meter (no Ray needed for the reading itself). NVML is a scripted fake where a
test needs GPUs (this machine has none)."""

import pytest

from study.cluster_meter import NodeMeter, cluster_total
from tests.meter.test_energy import FakeGpu, fake_nvml


def test_node_meter_estimates_cpu_and_ram_and_leaves_gpu_missing():
    meter = NodeMeter(nvml=fake_nvml())  # a node without GPUs
    x = 0
    for i in range(3_000_000):  # about a third of a CPU-second of real work
        x += i * i
    reading = meter.read()
    assert reading["gpu_j"] is None and reading["gpu_source"] is None and reading["gpus"] == 0
    assert reading["cpu_source"] == "estimated" and reading["ram_source"] == "estimated"
    # watts per busy thread x busy CPU-seconds of the whole machine (at least our own loop's)
    assert reading["cpu_j"] >= meter.cpu_model.w_per_thread * 0.1
    assert reading["ram_j"] > 0 and reading["duration_s"] > 0


def test_the_node_cpu_estimate_uses_the_nodes_own_vm_size():
    # Standard_D8s_v5 (a head): Xeon Platinum 8370C, 270 W over 64 host threads = 4.22 W a thread,
    # not 270 W / 8 vCPUs = 33.75 W (a whole package charged to one small VM)
    head = NodeMeter(vm_size="Standard_D8s_v5", nvml=fake_nvml())
    assert head.cpu_model.w_per_thread == pytest.approx(270 / 64)
    assert head.read()["vm_size"] == "Standard_D8s_v5"


def test_a_failed_gpu_read_keeps_the_last_good_figure_flagged_stale():
    """NVML mocked (no GPU here): two GPUs; one read fails, then recovers."""
    a, b = FakeGpu("GPU-a", energy_mj=1_000), FakeGpu("GPU-b", energy_mj=5_000)
    meter = NodeMeter(nvml=fake_nvml(a, b))
    a.energy_mj += 10_000
    b.energy_mj += 20_000
    first = meter.read()
    assert first["gpu_j"] == 30.0 and first["gpu_by_uuid"] == {"GPU-a": 10.0, "GPU-b": 20.0}
    a.failing = True
    b.energy_mj += 5_000
    second = meter.read()
    assert second["gpu_by_uuid"] == {"GPU-a": 10.0, "GPU-b": 25.0} and second["gpu_stale"] == [
        "GPU-a"
    ]
    a.failing, a.energy_mj = False, a.energy_mj + 1_000
    assert meter.read()["gpu_by_uuid"]["GPU-a"] == 11.0


def test_cluster_total_keeps_unmeasured_parts_missing():
    nodes = [
        {"gpu_j": None, "cpu_j": 10.0, "ram_j": 2.0, "host": "h1"},
        {"gpu_j": 100.0, "cpu_j": 5.0, "ram_j": 1.0, "host": "h2"},
    ]
    total = cluster_total(nodes)
    assert total == {
        "energy_gpu_j": 100.0,
        "energy_cpu_j": 15.0,
        "energy_ram_j": 3.0,
        "energy_j": 118.0,
        "hosts": 2,
    }
    assert cluster_total([{"gpu_j": None, "cpu_j": None, "ram_j": None}])["energy_j"] is None


def test_two_ray_nodes_on_one_host_count_it_once():
    # a loopback test cluster: both Ray nodes read the same machine's CPU, RAM and GPUs
    same = {
        "host": "box/boot-1",
        "cpu_j": 40.0,
        "ram_j": 4.0,
        "gpu_by_uuid": {"GPU-a": 90.0},
        "gpu_j": 90.0,
    }
    # n1 was lost early (its reading froze at 12 J of the host's CPU); n2 kept reading the host
    lost_early = {**same, "node_id": "n1", "cpu_j": 12.0, "ram_j": 1.0, "lost": True}
    total = cluster_total([lost_early, {**same, "node_id": "n2"}])
    assert (
        total["energy_cpu_j"] == 40.0
        and total["energy_ram_j"] == 4.0
        and total["energy_gpu_j"] == 90.0
    )
    assert total["hosts"] == 1 and total["energy_j"] == 134.0


class SlowOnce(NodeMeter):
    """A node whose meter misses one poll (a busy node, a slow network), then answers again."""

    SLOW_READ = 2  # which read sleeps past the poll's timeout

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reads = 0

    def read(self):
        import time

        self.reads += 1
        if self.reads == self.SLOW_READ:
            time.sleep(3.0)
        return super().read()


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_a_node_that_misses_a_poll_is_stale_not_lost_and_the_head_is_priced_as_itself(ray_token):
    import sys
    import time

    import ray
    from ray import cloudpickle

    from core.footprint import CarbonIntensity
    from study.cluster_meter import ClusterMeter

    cloudpickle.register_pickle_by_value(sys.modules[SlowOnce.__module__])  # a test module: ship it
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        meter = ClusterMeter(
            CarbonIntensity(400.0, 1.0),
            started_s=0.0,
            meter_cls=SlowOnce,
            read_timeout_s=60.0,
            vm_size="NC24ads_A100_v4",
            head_vm_size="D8s_v5",
        )
        meter._actor = ray.remote(num_cpus=0, max_restarts=0)(
            SlowOnce
        )  # start() without its thread
        meter.poll()  # read 1: answers (the actor's start may take seconds)
        (node_id,) = meter.readings
        meter.read_timeout_s = 1.0
        assert meter.sizes[node_id] == "D8s_v5"  # this one-node cluster's node is its head
        meter.poll()  # read 2: too slow, but Ray says the node lives
        assert node_id not in meter.lost and meter.readings[node_id]["stale"]
        time.sleep(3.0)  # the slow read ends
        meter.poll()  # read 3: answers again, energy still counted
        assert not meter.readings[node_id]["stale"] and node_id not in meter.lost
        assert (
            meter.readings[node_id]["cpu_model"]["basis"] == "vm_share"
        )  # D8s_v5's own host share
    finally:
        ray.shutdown()


class SlowFirstRead(SlowOnce):
    """A node meter whose first answer takes seconds (a meter process starting on a busy node)."""

    SLOW_READ = 1


@pytest.mark.ray
@pytest.mark.timeout(120)
def test_the_meter_starts_without_waiting_for_its_first_reading(ray_token):
    """start() hands the first poll to the meter's thread (the study starts its trials
    meanwhile); the reading still arrives, and a budget check waits for it rather than
    seeing no node."""
    import sys

    import ray
    from ray import cloudpickle

    from core.footprint import CarbonIntensity
    from study.cluster_meter import ClusterMeter

    cloudpickle.register_pickle_by_value(sys.modules[SlowFirstRead.__module__])
    ray.init(address="local", num_cpus=1, include_dashboard=False, logging_level="ERROR")
    try:
        meter = ClusterMeter(
            CarbonIntensity(400.0, 1.0), started_s=0.0, poll_s=3600, meter_cls=SlowFirstRead
        ).start()
        assert meter.readings == {}  # returned while the first read is still sleeping
        spend = meter.spend(max_age_s=3600)  # waits on the first poll's lock, then reads
        assert len(meter.readings) == 1 and spend.energy_kwh is not None
        reading = meter.finish(None)
        assert len(reading["nodes"]) == 1 and reading["energy_j"] > 0
    finally:
        ray.shutdown()
