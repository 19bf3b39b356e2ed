"""The whole-node meter (no Ray needed for the reading itself)."""

import os

import pytest

from study.cluster_meter import NodeMeter, cluster_total


def test_node_meter_estimates_cpu_and_ram_and_leaves_gpu_missing():
    meter = NodeMeter(cpu_tdp_w=os.cpu_count() * 10.0)  # 10 W per logical CPU, stated
    x = 0
    for i in range(3_000_000):  # about a third of a CPU-second of real work
        x += i * i
    reading = meter.read()
    assert reading["gpu_j"] is None and reading["gpu_source"] is None  # no NVML/GPU on this machine
    assert reading["cpu_source"] == "estimated" and reading["ram_source"] == "estimated"
    # 10 W per CPU x busy CPU-seconds of the whole machine (at least our own loop's)
    assert reading["cpu_j"] >= 10.0 * 0.1
    assert reading["ram_j"] > 0 and reading["duration_s"] > 0


def test_cluster_total_keeps_unmeasured_parts_missing():
    nodes = [{"gpu_j": None, "cpu_j": 10.0, "ram_j": 2.0}, {"gpu_j": 100.0, "cpu_j": 5.0, "ram_j": 1.0}]
    total = cluster_total(nodes)
    assert total == {"energy_gpu_j": 100.0, "energy_cpu_j": 15.0, "energy_ram_j": 3.0, "energy_j": 118.0}
    assert cluster_total([{"gpu_j": None, "cpu_j": None, "ram_j": None}])["energy_j"] is None
    assert pytest.approx(cluster_total(nodes)["energy_j"]) == 118.0
