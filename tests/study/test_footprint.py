"""CO2 and cost arithmetic against hand-computed values, and the dated tables behind them."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from study.config import EnergyConfig
from study.footprint import (
    DEFAULT_PUE,
    FootprintError,
    HourlyIntensity,
    attributed_cost_usd,
    billed_cost_for_nodes,
    billed_cost_usd,
    co2_kg,
    footprint_inputs,
    grid_intensity,
    kg_to_lbs,
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
    # 2 GPU-hours on an 8-GPU ND96asr_v4 = 2/8 of a VM-hour x 27.197
    assert attributed_cost_usd(7200.0, "ND96asr_v4") == pytest.approx(6.79925, rel=1e-12)
    assert attributed_cost_usd(1800.0, "NC4as_T4_v3", spot=True) == pytest.approx(0.03135)
    billed = billed_cost_usd({"NC24ads_A100_v4": 2.0, "ND96isr_H100_v5": 0.5})
    assert billed == pytest.approx(2 * 3.673 + 0.5 * 98.32, rel=1e-12)  # 56.506


def test_unknown_vm_size_and_unknown_spot_price_are_errors():
    with pytest.raises(
        FootprintError, match=r"energy.vm_size='NC999'.*NC4as_T4_v3.*ND96isr_H100_v5"
    ):
        vm_price("NC999")
    with pytest.raises(FootprintError, match=r"no spot price for NC40ads_H100_v5"):
        vm_price("NC40ads_H100_v5", spot=True)


def test_local_machine_has_no_cost():
    assert vm_price("") is None
    assert attributed_cost_usd(3600.0, "") is None
    assert billed_cost_usd({"": 1.0}) is None
    inputs = footprint_inputs(EnergyConfig())
    assert inputs["price_usd_per_hour"] is None and inputs["vm_size"] is None


def test_footprint_inputs_record_sources_and_overrides():
    inputs = footprint_inputs(EnergyConfig(region="northeurope", vm_size="Standard_NC6s_v3"))
    assert inputs["intensity_g_per_kwh"] == 278.6
    assert inputs["intensity_kind"] == "average"
    assert inputs["pue"] == 1.185 and "Cloud Carbon Footprint" in inputs["pue_source"]
    assert inputs["price_usd_per_hour"] == 3.06 and inputs["gpus_per_vm"] == 1
    assert inputs["price_source"] == (
        "SkyPilot Azure catalog (Azure Retail Prices API), eastus, undated"
    )
    assert set(inputs["tables"]) == {"grid_intensity.csv", "azure_vm_prices.csv"}
    assert inputs["overrides"] == {}

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
    assert billed_cost_for_nodes([("NC24ads_A100_v4", 5400.0), ("NC24ads_A100_v4", 5400.0)], spot=False) == (
        pytest.approx(11.019, rel=1e-12)
    )
    # spot, half an hour: (ND96asr_v4 2.992 + NC4as_T4_v3 0.0627) x 0.5 = 1.52735
    assert billed_cost_for_nodes([("ND96asr_v4", 1800.0), ("Standard_NC4as_T4_v3", 1800.0)], spot=True) == (
        pytest.approx(1.52735, rel=1e-12)
    )
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
    assert billed_cost_for_nodes([("NC4as_T4_v3", 3600.0), (" ", 3600.0)], spot=True) is None  # one local node
    with pytest.raises(FootprintError, match=r"energy.vm_size='NC999'"):
        billed_cost_for_nodes([("", 3600.0), ("NC999", 3600.0)], spot=False)  # a typo is not "local"
    with pytest.raises(FootprintError, match=r"no spot price for ND96isr_H100_v5"):
        billed_cost_for_nodes([("NC4as_T4_v3", 3600.0), ("ND96isr_H100_v5", 3600.0)], spot=True)
    with pytest.raises(FootprintError, match=r"at least one node"):
        billed_cost_for_nodes([], spot=False)
    with pytest.raises(FootprintError, match=r"negative"):
        billed_cost_for_nodes([("NC4as_T4_v3", -1.0)], spot=False)
