"""The driver's bookkeeping: combining workers' reports, a trial's totals over segments, seeds,
pointers (pure; no Ray)."""

import dataclasses

import pytest

from core.footprint import CarbonIntensity, HourlyIntensity
from core.measurement import Measurement, weakest_source
from trainables.driver import Pointer, TrialTotals, relative_checkpoint, trial_seed
from trainables.report import RankZero, WorkerReport, combine_workers

EASTUS = CarbonIntensity(379.1, 1.185)  # the region row's figure and Azure's PUE


def worker(rank, energy=None, quality=None, **kw) -> WorkerReport:
    energy = energy or Measurement(
        3.0, cpu_j=5.0, ram_j=1.0, cpu_source="estimated", ram_source="estimated"
    )
    zero = None
    if rank == 0:
        zero = RankZero(
            quality=quality or {"rougeL": 0.3, "val_loss": 2.0, "train_loss": 2.5},
            step=4,
            epoch=1.0,
            step_time_s=0.1,
            trainable_params=10,
            total_params=10,
            padding_fraction=0.0,
            truncated_source_fraction=0.0,
            truncated_target_fraction=0.0,
            early_stopped=False,
            setup_s=1.0,
            node_id="n0",
            checkpoint_bytes=100,
        )
    base = dict(
        rank=rank,
        samples=10,
        tokens=100,
        train_s=2.0,
        eval_s=1.0,
        device_s=3.0,
        energy=energy,
        flops=1e9,
        cpu_s=2.7,
        peak_rss_bytes=100,
        checkpoint_save_s=0.1,
        sent_s=100.0,
        rank_zero=zero,
    )
    base.update(kw)
    return WorkerReport(**base)


def test_workers_are_summed_once_and_quality_comes_from_rank_0():
    r0 = worker(
        0,
        energy=Measurement(
            3.0, gpu_j=100.0, cpu_j=5.0, gpu_source="counter", cpu_source="estimated"
        ),
        peak_rss_bytes=50,
    )
    r1 = worker(
        1,
        energy=Measurement(
            3.0, gpu_j=120.0, cpu_j=5.0, gpu_source="power_integral", cpu_source="estimated"
        ),
    )
    combined = combine_workers([r1, r0])
    assert combined.rank_zero.quality["rougeL"] == 0.3
    assert combined.samples == 20 and combined.device_s == 6.0 and combined.workers == 2
    assert combined.energy.gpu_j == 220.0 and combined.energy.cpu_j == 10.0
    assert combined.energy.gpu_source == "power_integral"  # the weaker of the two
    assert combined.peak_rss_bytes == 100
    # CPU seconds per wall second of the trial: 5.4 CPU-s over 3 s of wall, two processes
    assert combined.cpu_util_pct == pytest.approx(180.0)


def test_unmeasured_energy_stays_missing():
    combined = combine_workers([worker(0), worker(1)])
    assert combined.energy.gpu_j is None and combined.energy.gpu_source is None


def test_a_report_survives_the_trip_through_train_as_plain_data():
    report = worker(0)
    assert WorkerReport.from_dict(report.to_dict()) == report
    assert WorkerReport.from_dict(worker(1).to_dict()).rank_zero is None


def test_totals_accumulate_over_segments(tmp_path):
    # Three segments (a start and two PBT restarts) of two workers each: every segment's driver
    # loads the totals file the previous one wrote, as Segment does.
    location = str(tmp_path / "trial_totals" / "t.json")
    for _ in range(3):
        totals = TrialTotals.load(location)
        totals.segments += 1
        totals.add(combine_workers([worker(0), worker(1)]), EASTUS, now_s=0.0)
        totals.save(location)
    totals = TrialTotals.load(location)
    assert totals.segments == 3 and totals.reports == 3
    assert totals.energy_j == {"gpu": None, "cpu": 30.0, "ram": 6.0}  # 3 x 2 workers x (5 + 1) J
    assert totals.energy_total_j == pytest.approx(36.0)
    assert totals.device_s == 18.0 and totals.samples == 60
    assert totals.co2_kg == pytest.approx(36.0 / 3.6e6 * 1.185 * 379.1 / 1000)
    assert TrialTotals().energy_total_j is None and TrialTotals().co2_kg is None
    assert not list((tmp_path / "trial_totals").glob(".*tmp*"))  # written atomically, no leftovers


def test_co2_converts_each_interval_at_its_own_hour(tmp_path):
    csv = tmp_path / "zone.csv"
    csv.write_text(
        "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity "
        "gCO₂eq/kWh (LCA)\n"
        "2026-11-27 10:00:00,DE,300,400\n2026-11-27 11:00:00,DE,100,200\n"
    )
    hourly = CarbonIntensity(float("nan"), 1.5, HourlyIntensity.from_csv(csv))
    ten, eleven = 1795773600.0, 1795777200.0  # 2026-11-27 10:00 and 11:00 UTC
    totals = TrialTotals()
    kwh = Measurement(1.0, cpu_j=3.6e6, cpu_source="estimated")
    totals.add(combine_workers([worker(0, energy=kwh)]), hourly, now_s=ten + 1800)
    totals.add(
        combine_workers([worker(0, energy=dataclasses.replace(kwh, cpu_j=7.2e6))]),
        hourly,
        now_s=eleven + 60,
    )
    # 1 kWh at 400 g and 2 kWh at 200 g, times PUE 1.5: (0.4 + 0.4) x 1.5 kg
    assert totals.co2_kg == pytest.approx(1.2)
    assert hourly.at(eleven + 7200) == 200  # past the export's end: its last hour


def test_weakest_source():
    assert weakest_source(("counter", "estimated")) == "estimated"
    assert weakest_source((None, "counter")) == "counter"
    assert weakest_source((None, None)) is None
    assert weakest_source(("partial", "counter", "power_integral")) == "partial"


def test_report_timing_takes_the_slowest_worker():
    # the report reaches the driver only after the last worker's call; the slowest save gates it
    combined = combine_workers(
        [
            worker(0, sent_s=100.0, checkpoint_save_s=0.2),
            worker(1, sent_s=100.5, checkpoint_save_s=0.7),
        ]
    )
    assert combined.sent_s == 100.5 and combined.checkpoint_save_s == 0.7


def test_trial_seeds_differ_per_trial_and_pair_across_strategies():
    seeds = {trial_seed(0, f"abcde_{i:05d}") for i in range(50)}
    assert len(seeds) == 50  # grid repeats and random trials all draw their own init and order
    # trial k of a study with seed s: the same seed whatever the strategy's experiment prefix
    assert trial_seed(3, "aaaaa_00007") == trial_seed(3, "bbbbb_00007")
    assert trial_seed(3, "aaaaa_00007") != trial_seed(4, "aaaaa_00007")


def test_pointers_are_relative_to_the_study(tmp_path):
    path = "/old/place/study/train_runs/t_00001-s2-abc/checkpoint_2026-12-01_10-00-00.000001"
    assert relative_checkpoint(path) == "t_00001-s2-abc/checkpoint_2026-12-01_10-00-00.000001"
    pointer = Pointer(relative_checkpoint(path), "t_00001", 0.31, 4)
    pointer.write(tmp_path)
    assert Pointer.read(tmp_path) == pointer


def test_tune_row_carries_rank_0_quality_all_workers_throughput_and_the_trial_totals():
    from core import schema
    from core.config import resolve_config
    from trainables.driver import StudyContext, tune_metrics

    cfg = resolve_config(overrides=["data.n_train=40"])
    ctx = StudyContext(cfg, "grid", "s", "/tmp/s", EASTUS, price_usd_per_device_hour=3.6)
    report = combine_workers([worker(0), worker(1)])
    totals = TrialTotals()
    totals.add(report, EASTUS, now_s=0.0)
    donor = Pointer("run/checkpoint_1", "t_donor", 0.31, 3)
    row = tune_metrics(report, totals, ctx, segment=2, restored=donor, now_s=101.5)
    assert row[schema.ROUGEL] == 0.3 and row[schema.STEP] == 4  # rank 0's quality
    # 20 samples over 2 workers x 2 s of training each: 2 s of wall, 10 samples/s per worker
    assert row[schema.SAMPLES_PER_S] == pytest.approx(10.0)
    assert row[schema.TRIAL_EPOCHS] == pytest.approx(20 / 40)
    assert row[schema.ENERGY_TOTAL_J] == pytest.approx(12.0)  # (5 + 1) J x 2 workers
    assert row["energy_cpu_source"] == "estimated" and row["energy_gpu_j"] is None
    assert row[schema.COST_USD] == pytest.approx(6.0 / 3600 * 3.6)  # device-seconds x price
    assert row[schema.REPORT_LATENCY_S] == pytest.approx(1.5)  # sent at 100.0
    assert (row[schema.RESTORED_FROM], row[schema.RESTORED_FROM_ITERATION]) == ("t_donor", 3)
    assert row[schema.SEGMENT] == 2 and row[schema.WORKERS] == 2
