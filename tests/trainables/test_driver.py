"""The driver's bookkeeping: combining workers' reports and a trial's totals over segments."""

import pytest

from trainables.driver import TrialTotals, combine_workers, weakest


def worker(rank, **kw):
    base = {"rank": rank, "interval_samples": 10, "interval_tokens": 100, "interval_train_s": 2.0,
            "interval_eval_s": 1.0, "interval_device_s": 3.0, "interval_energy_gpu_j": None,
            "interval_energy_cpu_j": 5.0, "interval_energy_ram_j": 1.0, "interval_flops": 1e9,
            "energy_gpu_source": None, "energy_cpu_source": "estimated", "energy_ram_source": "estimated",
            "cpu_util_pct": 90.0, "peak_rss_bytes": 100}
    base.update(kw)
    return base


def test_workers_are_summed_once_and_quality_comes_from_rank_0():
    r0 = worker(0, rougeL=0.3, interval_energy_gpu_j=100.0, energy_gpu_source="counter", peak_rss_bytes=50)
    r1 = worker(1, interval_energy_gpu_j=120.0, energy_gpu_source="power_integral")
    combined = combine_workers([r1, r0])
    assert combined["rougeL"] == 0.3
    assert combined["interval_samples"] == 20 and combined["interval_device_s"] == 6.0
    assert combined["interval_energy_gpu_j"] == 220.0 and combined["interval_energy_cpu_j"] == 10.0
    assert combined["energy_gpu_source"] == "power_integral"  # the weaker of the two
    assert combined["peak_rss_bytes"] == 100 and combined["workers"] == 2


def test_unmeasured_energy_stays_missing():
    combined = combine_workers([worker(0), worker(1)])
    assert combined["interval_energy_gpu_j"] is None and combined["energy_gpu_source"] is None


def test_totals_accumulate_over_segments():
    totals = TrialTotals()
    for _ in range(3):
        totals.add(combine_workers([worker(0)]))
    assert totals.energy_j == {"gpu": None, "cpu": 15.0, "ram": 3.0}
    assert totals.energy_total_j == pytest.approx(18.0)
    assert totals.device_s == 9.0 and totals.reports == 3
    assert TrialTotals().energy_total_j is None


def test_weakest_source():
    assert weakest("counter", "estimated") == "estimated"
    assert weakest(None, "counter") == "counter"
    assert weakest(None, None) is None
