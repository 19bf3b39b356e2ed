"""The driver's bookkeeping: combining workers' reports and a trial's totals over segments."""

import json
from dataclasses import asdict

import pytest

from study.footprint import CarbonIntensity, HourlyIntensity
from trainables.driver import TrialTotals, _load_totals, combine_workers, weakest

EASTUS = CarbonIntensity(379.1, 1.185)  # the region row's figure and Azure's PUE


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


def test_totals_accumulate_over_segments(tmp_path):
    # Three segments (a start and two PBT restarts) of two workers each: every segment's driver
    # loads the totals file the previous one wrote, as trial_driver does.
    path = tmp_path / "totals.json"
    for _ in range(3):
        totals = _load_totals(path)
        totals.segments += 1
        totals.add(combine_workers([worker(0), worker(1)]), EASTUS, now_s=0.0)
        path.write_text(json.dumps(asdict(totals)))
    totals = _load_totals(path)
    assert totals.segments == 3 and totals.reports == 3
    assert totals.energy_j == {"gpu": None, "cpu": 30.0, "ram": 6.0}  # 3 x 2 workers x (5 + 1) J
    assert totals.energy_total_j == pytest.approx(36.0)
    assert totals.device_s == 18.0 and totals.samples == 60
    assert totals.co2_kg == pytest.approx(36.0 / 3.6e6 * 1.185 * 379.1 / 1000)
    assert TrialTotals().energy_total_j is None and TrialTotals().co2_kg is None


def test_co2_converts_each_interval_at_its_own_hour(tmp_path):
    csv = tmp_path / "zone.csv"
    csv.write_text("Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA)\n"
                   "2026-11-27 10:00:00,DE,300,400\n2026-11-27 11:00:00,DE,100,200\n")
    hourly = CarbonIntensity(float("nan"), 1.5, HourlyIntensity.from_csv(csv))
    ten, eleven = 1795773600.0, 1795777200.0  # 2026-11-27 10:00 and 11:00 UTC
    totals = TrialTotals()
    totals.add(combine_workers([worker(0, interval_energy_cpu_j=3.6e6, interval_energy_ram_j=0.0)]),
               hourly, now_s=ten + 1800)
    totals.add(combine_workers([worker(0, interval_energy_cpu_j=7.2e6, interval_energy_ram_j=0.0)]),
               hourly, now_s=eleven + 60)
    # 1 kWh at 400 g and 2 kWh at 200 g, times PUE 1.5: (0.4 + 0.4) x 1.5 kg
    assert totals.co2_kg == pytest.approx(1.2)
    assert hourly.at(eleven + 7200) == 200  # past the export's end: its last hour


def test_weakest_source():
    assert weakest("counter", "estimated") == "estimated"
    assert weakest(None, "counter") == "counter"
    assert weakest(None, None) is None


def test_report_timing_takes_the_slowest_worker():
    # the report reaches the driver only after the last worker's call; the slowest save gates it
    combined = combine_workers([worker(0, report_sent_s=100.0, checkpoint_save_s=0.2),
                                worker(1, report_sent_s=100.5, checkpoint_save_s=0.7)])
    assert combined["report_sent_s"] == 100.5 and combined["checkpoint_save_s"] == 0.7
