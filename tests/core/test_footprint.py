"""CO2 and cost arithmetic against hand-computed values, and the dated tables behind them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.config import EnergyConfig
from core.footprint import (
    DEFAULT_PUE,
    FootprintError,
    HourlyIntensity,
    billed_cost_for_nodes,
    carbon_accounting,
    co2_kg,
    embodied_kg,
    footprint_inputs,
    grid_intensity,
    kg_to_lbs,
    price_per_worker_hour,
    retired_note,
    vm_price,
)

EXPORT = """\
Datetime (UTC),Country,Zone Name,Zone Id,Carbon Intensity gCO₂eq/kWh (direct),\
Carbon Intensity gCO₂eq/kWh (LCA),Low Carbon Percentage,Renewable Percentage,Data Source,\
Data Estimated,Data Estimation Method
2023-01-01 00:00:00,United States,PJM,US-MIDA-PJM,350.5,400.25,40,10,eia.gov,false,
2023-01-01 01:00:00,United States,PJM,US-MIDA-PJM,340.0,390.0,41,11,eia.gov,false,
2023-01-01 02:00:00,United States,PJM,US-MIDA-PJM,,,,,eia.gov,true,
2023-01-01 03:00:00,United States,PJM,US-MIDA-PJM,320.0,370.0,43,13,eia.gov,false,
"""


def _unix(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


def test_co2_of_one_kwh_in_eastus():
    g, source = grid_intensity("eastus")
    assert (g, source) == (379.1, "Cloud Carbon Footprint coefficients, June 2022")
    assert DEFAULT_PUE == 1.185
    # 3.6e6 J = 1 kWh; x 1.185 x 379.1 g/kWh = 449.2335 g
    assert co2_kg(3.6e6, g, DEFAULT_PUE) == pytest.approx(0.4492335, rel=1e-12)
    assert co2_kg(7.2e6, 322.2, 1.0) == pytest.approx(0.6444, rel=1e-12)
    assert co2_kg(None, g) is None
    assert kg_to_lbs(0.4492335) == pytest.approx(0.9903891588, rel=1e-9)  # x 2.20462
    assert kg_to_lbs(None) is None


def test_unknown_region_lists_the_known_ones():
    assert grid_intensity(" WestEurope ")[0] == 328.4
    with pytest.raises(FootprintError, match=r"energy.region='mars'.*eastus.*westus2"):
        grid_intensity("mars")


def test_vm_prices_and_costs():
    assert vm_price("NC24ads_A100_v4") == 3.673
    assert vm_price("Standard_ND96asr_v4", spot=True) == 2.992
    # a worker holding 2 of an ND96asr_v4's 8 GPUs: 2/8 of the VM's 27.197 per hour
    assert price_per_worker_hour("ND96asr_v4", 2) == pytest.approx(27.197 / 8 * 2, rel=1e-12)
    assert price_per_worker_hour("NC4as_T4_v3", 1, spot=True) == pytest.approx(0.0627)
    assert price_per_worker_hour("NC4as_T4_v3", 0) == pytest.approx(
        0.526
    )  # a CPU-only worker: one GPU's share
    billed = billed_cost_for_nodes(
        [("NC24ads_A100_v4", 7200.0), ("ND96isr_H100_v5", 1800.0)], spot=False
    )
    assert billed == pytest.approx(2 * 3.673 + 0.5 * 98.32, rel=1e-12)  # 56.506


def test_prices_are_keyed_by_size_and_region_and_can_be_overridden():
    assert vm_price("NC24ads_A100_v4", region="eastus") == 3.673
    with pytest.raises(
        FootprintError,
        match=r"in energy.region='westeurope'.*only in eastus.*energy.price_usd_per_hour",
    ):
        vm_price("NC24ads_A100_v4", region="westeurope")
    assert vm_price("NC24ads_A100_v4", region="westeurope", override_usd_per_hour=4.1) == 4.1
    # a head of another size is billed at its own price: one D-size head is not in the price
    # table, so it must be named and priced by the user
    held = [("NC24ads_A100_v4", 3600.0), ("NC24ads_A100_v4", 3600.0), ("NC4as_T4_v3", 1800.0)]
    assert billed_cost_for_nodes(held, False, "eastus") == pytest.approx(2 * 3.673 + 0.5 * 0.526)
    assert billed_cost_for_nodes(held, False, "eastus", {"NC24ads_A100_v4": 3.0}) == pytest.approx(
        2 * 3.0 + 0.263
    )
    assert "retired" in retired_note("NC6s_v3") and retired_note("NC24ads_A100_v4") is None
    inputs = footprint_inputs(EnergyConfig(vm_size="NC24ads_A100_v4", head_vm_size="NC4as_T4_v3"))
    assert inputs["head_price_usd_per_hour"] == 0.526 and inputs["price_usd_per_hour"] == 3.673
    assert "lower bound" in inputs["billed_note"] and inputs["co2_method"].startswith(
        "location-based"
    )


def test_unknown_vm_size_and_unknown_spot_price_are_errors():
    with pytest.raises(
        FootprintError, match=r"energy.vm_size='NC999'.*NC4as_T4_v3.*ND96isr_H100_v5"
    ):
        vm_price("NC999")
    with pytest.raises(FootprintError, match=r"no spot price for NC40ads_H100_v5"):
        vm_price("NC40ads_H100_v5", spot=True)


def test_local_machine_has_no_cost():
    assert vm_price("") is None
    assert price_per_worker_hour("", 1) is None
    assert billed_cost_for_nodes([("", 3600.0)], spot=False) is None
    inputs = footprint_inputs(EnergyConfig())
    assert inputs["price_usd_per_hour"] is None and inputs["vm_size"] is None


def test_footprint_inputs_record_sources_and_overrides():
    # the table prices NC6s_v3 in eastus only: another region needs the user's price
    with pytest.raises(FootprintError, match="prices it only in eastus"):
        footprint_inputs(EnergyConfig(region="northeurope", vm_size="Standard_NC6s_v3"))
    inputs = footprint_inputs(
        EnergyConfig(region="northeurope", vm_size="Standard_NC6s_v3", price_usd_per_hour=3.3)
    )
    assert inputs["intensity_g_per_kwh"] == 278.6
    assert inputs["intensity_kind"] == "average"
    assert inputs["pue"] == 1.185 and "Cloud Carbon Footprint" in inputs["pue_source"]
    assert (
        inputs["price_usd_per_hour"] == 3.3 and inputs["price_basis"] == "energy.price_usd_per_hour"
    )
    assert inputs["gpus_per_vm"] == 1 and inputs["retired"] == "retired 2025-09-30"
    eastus = footprint_inputs(EnergyConfig(vm_size="Standard_NC6s_v3"))
    assert eastus["price_usd_per_hour"] == 3.06 and eastus["price_basis"] == "table"
    assert (
        eastus["price_source"]
        == "SkyPilot Azure catalog (Azure Retail Prices API), eastus, undated"
    )
    assert set(inputs["tables"]) == {
        "grid_intensity.csv",
        "azure_vm_prices.csv",
        "azure_vm_cpu.csv",
        "azure_embodied.csv",
    }
    assert eastus["overrides"] == {}

    given = footprint_inputs(EnergyConfig(region="mars", intensity_g_per_kwh=100.0, pue=1.1))
    assert given["intensity_g_per_kwh"] == 100.0
    assert given["intensity_source"] == "energy.intensity_g_per_kwh"
    assert given["pue"] == 1.1
    assert given["overrides"] == {"energy.intensity_g_per_kwh": 100.0, "energy.pue": 1.1}
    with pytest.raises(FootprintError, match="energy.region"):
        footprint_inputs(EnergyConfig(region="mars"))


def test_hourly_intensity_from_an_electricity_maps_export(tmp_path):
    path = tmp_path / "US-MIDA-PJM_2023_hourly.csv"
    path.write_text(EXPORT, encoding="utf-8")
    lca = HourlyIntensity.from_csv(path)
    assert lca.basis == "lca" and lca.zone == "US-MIDA-PJM"
    assert lca.at(_unix("2023-01-01T00:00:00")) == 400.25
    assert lca.at(_unix("2023-01-01T01:59:59")) == 390.0
    assert lca.at(_unix("2023-01-01T03:30:00")) == 370.0
    direct = HourlyIntensity.from_csv(path, basis="direct")
    assert direct.at(_unix("2023-01-01T00:30:00")) == 350.5
    assert direct.describe()["hours"] == 3
    with pytest.raises(FootprintError, match="no lca intensity"):
        lca.at(_unix("2023-01-01T02:15:00"))  # the empty hour is not filled in
    with pytest.raises(FootprintError, match="no lca intensity"):
        lca.at(_unix("2023-01-01T04:00:00"))
    with pytest.raises(FootprintError, match="basis"):
        HourlyIntensity.from_csv(path, basis="marginal")
    bad = tmp_path / "bad.csv"
    bad.write_text("time,value\n2023-01-01,1\n")
    with pytest.raises(FootprintError, match="Electricity Maps"):
        HourlyIntensity.from_csv(bad)


def test_billed_cost_for_nodes_bills_every_node_for_the_time_it_was_held():
    # 2 x NC24ads_A100_v4 for 1.5 h, pay-as-you-go: 2 x 3.673 x 1.5 = 11.019
    assert billed_cost_for_nodes(
        [("NC24ads_A100_v4", 5400.0), ("NC24ads_A100_v4", 5400.0)], spot=False
    ) == (pytest.approx(11.019, rel=1e-12))
    # spot, half an hour: (ND96asr_v4 2.992 + NC4as_T4_v3 0.0627) x 0.5 = 1.52735
    assert billed_cost_for_nodes(
        [("ND96asr_v4", 1800.0), ("Standard_NC4as_T4_v3", 1800.0)], spot=True
    ) == (pytest.approx(1.52735, rel=1e-12))
    # 8-GPU VM for 10 minutes, billed whole whatever the GPUs did: 98.32 / 6 = 16.38666...
    assert billed_cost_for_nodes([("ND96isr_H100_v5", 600.0)], spot=False) == pytest.approx(
        16.386666666666667, rel=1e-12
    )
    assert billed_cost_for_nodes([("NC4as_T4_v3", 0.0)], spot=False) == 0.0
    # a spot node evicted after 20 minutes of a 1 h study: 0.0627 x 1 + 0.0627 / 3
    assert billed_cost_for_nodes([("NC4as_T4_v3", 3600.0), ("NC4as_T4_v3", 1200.0)], spot=True) == (
        pytest.approx(0.0627 * 4 / 3, rel=1e-12)
    )


def test_billed_cost_for_nodes_local_unknown_and_bad_input():
    assert billed_cost_for_nodes([("", 3600.0)], spot=False) is None
    assert (
        billed_cost_for_nodes([("NC4as_T4_v3", 3600.0), (" ", 3600.0)], spot=True) is None
    )  # one local node
    with pytest.raises(FootprintError, match=r"energy.vm_size='NC999'"):
        billed_cost_for_nodes(
            [("", 3600.0), ("NC999", 3600.0)], spot=False
        )  # a typo is not "local"
    with pytest.raises(FootprintError, match=r"no spot price for ND96isr_H100_v5"):
        billed_cost_for_nodes([("NC4as_T4_v3", 3600.0), ("ND96isr_H100_v5", 3600.0)], spot=True)
    with pytest.raises(FootprintError, match=r"at least one node"):
        billed_cost_for_nodes([], spot=False)
    with pytest.raises(FootprintError, match=r"negative"):
        billed_cost_for_nodes([("NC4as_T4_v3", -1.0)], spot=False)


def test_embodied_emissions_follow_the_vms_share_of_its_host():
    # NC4as_T4_v3: a 2349.62 kg host (CCF, Teads method) of 64 vCPUs; 4 of them for 10 hours of
    # a 4-year life: 2349.62 x 4/64 x 10 / 35040 = 0.004191 kg
    kg, basis = embodied_kg("Standard_NC4as_T4_v3", 36000.0)
    assert kg == pytest.approx(2349.62 * 4 / 64 * 10 / (4 * 8760))
    assert "Cloud Carbon Footprint" in basis and "2023-01-23" in basis
    assert (
        embodied_kg("NC24ads_A100_v4", 3600.0)[0] is None
    )  # no dated row: not reported, not guessed
    assert embodied_kg("", 3600.0) == (None, "local machine: not applicable")


def test_carbon_accounting_keeps_scopes_apart_and_scores_sci():
    # 2 kWh at the IT equipment x PUE 1.2, location-based 0.9 kg; a market factor of 50 g/kWh
    held = [("NC4as_T4_v3", 36000.0)]
    out = carbon_accounting(
        0.9, 7.2e6, 1.2, 50.0, held, held_out_j=3600.0, held_out_n=500, held_out_g_per_kwh=400.0
    )
    assert out["scope2_method"].startswith("location-based")
    assert out["market_based_kg"] == pytest.approx(2 * 1.2 * 50 / 1000)  # 0.12 kg
    m = 2349.62 * 4 / 64 * 10 / (4 * 8760)
    assert out["embodied_kg"] == pytest.approx(m)
    assert out["sci"]["kg"] == pytest.approx(0.9 + m) and out["sci"]["embodied_included"]
    # 1 Wh for 500 test summaries at 400 g/kWh x PUE 1.2: 0.48 g, so 0.96 g per 1,000
    assert out["sci"]["per_1000_summaries"]["operational_kg"] == pytest.approx(0.00096)
    local = carbon_accounting(0.9, 7.2e6, 1.2, None, [("", 3600.0)], None, 0, 400.0)
    assert local["embodied_kg"] is None and local["market_based_kg"] is None
    assert local["sci"]["kg"] == 0.9 and "lower bound" in local["sci"]["note"]


def test_filled_hours_are_counted(tmp_path):
    path = tmp_path / "zone.csv"
    path.write_text(
        "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity "
        "gCO₂eq/kWh (LCA)\n"
        "2026-11-27 10:00:00,DE,300,400\n2026-11-27 12:00:00,DE,100,200\n"
    )
    hourly = HourlyIntensity.from_csv(path)
    ten = 1795773600.0  # 2026-11-27 10:00 UTC
    # a study from 10:30 to 13:10 spans 10, 11, 12 and 13 h: 11 and 13 are not in the export
    assert hourly.filled_hours(ten + 1800, ten + 3 * 3600 + 600) == 2
