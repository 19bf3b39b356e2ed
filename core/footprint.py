"""Energy -> CO2 and compute -> cost, from dated tables whose source travels with every figure.

Tables (in `core/data/`, each row naming its source and date):

- `grid_intensity.csv`: annual average grid intensity per Azure region, gCO2e/kWh
  (Cloud Carbon Footprint coefficients, June 2022).
- `azure_vm_prices.csv`: pay-as-you-go and spot prices, USD/hour, eastus, with GPUs per VM
  (SkyPilot Azure catalog, built from the Azure Retail Prices API; the catalog carries no date).
  A spot price missing from the table is unknown, and asking for it is an error.

Arithmetic: ``co2_kg = energy_j / 3.6e6 * pue * g_per_kwh / 1000``;
``attributed cost = device_s / 3600 * vm_price / gpus_per_vm``;
``billed cost = node_hours * vm_price`` (a VM is billed from start to deallocation, idle included).
A local machine (`energy.vm_size` empty) has no price: costs are None, never an invented number.

    >>> round(co2_kg(3.6e6, 379.1, 1.185), 7)  # 1 kWh in eastus, Azure's PUE
    0.4492335
"""

from __future__ import annotations

import csv
import functools
import hashlib
import time
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from core.config import EnergyConfig

DATA_DIR = Path(__file__).parent / "data"
GRID_FILE = "grid_intensity.csv"
PRICE_FILE = "azure_vm_prices.csv"
VM_CPU_FILE = "azure_vm_cpu.csv"  # each size's host CPU: TDP and threads (the CPU estimate's share)
EMBODIED_FILE = "azure_embodied.csv"  # each size's host manufacturing emissions (Scope 3)
HOURS_PER_YEAR = 24 * 365
DEFAULT_PUE = 1.185
DEFAULT_PUE_SOURCE = "Azure PUE, Cloud Carbon Footprint coefficients, June 2022"
J_PER_KWH = 3.6e6
LBS_PER_KG = 2.20462


# What an estimate's band is: the relative error a TDP-share CPU model and a per-GiB RAM model
# carry. Comparisons of software power models with wall-plug meters (Jay et al., "An experimental
# comparison of software-based power meters: focus on CPU and GPU", CCGrid 2023; FIELD_NOTES)
# report errors of tens of percent; greentune states +-50 % on every estimated part.
ESTIMATE_BAND = 0.5
ESTIMATE_BAND_SOURCE = (
    "+-50 % on estimated parts (TDP-share CPU and per-GiB RAM models), the order "
    "of the errors wall-meter comparisons report (Jay et al., CCGrid 2023)"
)


def energy_band_j(
    parts: dict[str, tuple[float | None, str | None]],
) -> tuple[float | None, float | None]:
    """(low, high) joules of a sum whose estimated parts carry `ESTIMATE_BAND`; measured parts
    (counter, power integral) are taken as they are, partial ones as lower bounds."""
    low = high = 0.0
    seen = False
    for value, source in parts.values():
        if value is None:
            continue
        seen = True
        if source == "estimated":
            low, high = low + value * (1 - ESTIMATE_BAND), high + value * (1 + ESTIMATE_BAND)
        else:
            low, high = low + value, high + value
    return (low, high) if seen else (None, None)


class FootprintError(ValueError):
    """An unknown region or VM size, a missing price, or an unreadable intensity file."""


def grid_intensity(region: str) -> tuple[float, str]:
    """(gCO2e/kWh, "source, date") of an Azure region's grid, e.g. (379.1, "..., 2022-06")."""
    row = _grid_row(region)
    return float(row["intensity_g_per_kwh"]), _intensity_source(row)


def co2_kg(energy_j: float | None, g_per_kwh: float, pue: float = DEFAULT_PUE) -> float | None:
    """kg CO2e of `energy_j` joules drawn at the IT equipment, scaled by the datacenter's PUE."""
    if energy_j is None:
        return None
    return energy_j / J_PER_KWH * pue * g_per_kwh / 1000.0


def kg_to_lbs(kg: float | None) -> float | None:
    return None if kg is None else kg * LBS_PER_KG


def vm_price(
    vm_size: str, spot: bool = False, region: str | None = None, override_usd_per_hour: float = 0.0
) -> float | None:
    """USD/hour of one VM of `vm_size` in `region` (the table's region when None); None for a
    local machine (`vm_size` empty). `override_usd_per_hour` > 0 is the user's own price.

    Prices are keyed by (size, region): a size the table prices only elsewhere raises, naming
    the fix, rather than passing one region's price for another's."""
    row = _vm_row(vm_size)
    if row is None:
        return None
    if override_usd_per_hour > 0:
        return float(override_usd_per_hour)
    if region is not None and row["region"] != region.strip().lower():
        raise FootprintError(
            f"energy.vm_size={vm_size!r} in energy.region={region!r}: {PRICE_FILE} prices it "
            "only in "
            f"{row['region']}; add a row for {region} with its source and date, or set "
            "energy.price_usd_per_hour"
        )
    price = row["spot_usd_per_hour" if spot else "price_usd_per_hour"]
    if not price:
        raise FootprintError(
            f"energy.spot=True: {PRICE_FILE} has no spot price for {row['vm_size']} (unknown); "
            "set energy.spot=false, or add the price with its source and date"
        )
    return float(price)


def gpus_per_vm(vm_size: str) -> int | None:
    row = _vm_row(vm_size)
    return None if row is None else int(row["gpus_per_vm"])


def retired_note(vm_size: str) -> str | None:
    """The table's note when a size is retired (it still prices it, with this warning)."""
    row = _vm_row(vm_size)
    return row["note"] if row is not None and "retired" in (row.get("note") or "") else None


def billed_cost_for_nodes(
    held: list[tuple[str, float]],
    spot: bool,
    region: str | None = None,
    overrides: dict[str, float] | None = None,
) -> float | None:
    """What Azure bills for a study: every node's VM for the seconds the study held it (idle too).

    `held` is one `(vm_size, seconds)` per node, so a size may repeat (the head's own size among
    the workers'); a node lost mid-study (a spot eviction) counts until it was lost.
    ``sum(vm_price(size) * seconds) / 3600``. None if any node is a local machine (size ""): a
    local machine has no price, and a partial sum would understate the bill. A size missing from
    the price table, a spot price the table lacks, or a size it prices only in another region,
    raises FootprintError (as `vm_price` does), even beside a local node: a typo must not pass
    as "no price". No nodes at all, or a negative time, raise too. `overrides`: size -> the
    user's USD/hour. The time held is a lower bound of what Azure bills (see `BILLED_NOTE`).
    """
    if not held:
        raise FootprintError("billed cost needs at least one node's vm_size; got none")
    if any(seconds < 0 for _, seconds in held):
        raise FootprintError(f"held={held!r}: a node's time cannot be negative")
    overrides = {_bare_size(k).lower(): v for k, v in (overrides or {}).items()}
    prices = [
        vm_price(size, spot, region, overrides.get(_bare_size(size).lower(), 0.0))
        for size, _ in held
    ]  # every size checked before any None
    if any(p is None for p in prices):
        return None
    return sum(p * seconds for p, (_, seconds) in zip(prices, held, strict=True)) / 3600.0


BILLED_NOTE = (
    "billed = each node's VM price x the time this study held it (from the study's "
    "start or the node joining, to the study's end or the node's loss): a lower bound "
    "of Azure's bill, which also counts provisioning and setup before the study and "
    "idle_timeout_minutes after it"
)


def price_per_worker_hour(
    vm_size: str,
    gpus_per_worker: float,
    spot: bool = False,
    region: str | None = None,
    override_usd_per_hour: float = 0.0,
) -> float | None:
    """A trial worker's attributed price per hour: the VM's price per GPU x the GPUs the worker
    holds (one GPU's share for a CPU-only worker on a GPU VM); None on a local machine."""
    price = vm_price(vm_size, spot, region, override_usd_per_hour)
    gpus = gpus_per_vm(vm_size)
    if price is None or not gpus:
        return None
    return price / gpus * max(1, int(gpus_per_worker))


def footprint_inputs(cfg: EnergyConfig, now_s: float | None = None) -> dict[str, Any]:
    """Every number and source the study converts with, for `metadata.json`; raises on bad input."""
    converter = carbon_intensity(cfg, time.time() if now_s is None else now_s)
    overrides = {
        f"energy.{key}": getattr(cfg, key)
        for key in ("intensity_g_per_kwh", "pue", "cpu_tdp_w")
        if getattr(cfg, key) > 0
    }
    hourly = None
    if cfg.intensity_csv:
        hourly = converter.hourly.describe()
        overrides["energy.intensity_csv"] = cfg.intensity_csv
        intensity, intensity_source = None, hourly["source"] + " (hourly, each report at its hour)"
        intensity_kind = "average"  # Electricity Maps' LCA and direct figures are grid averages
    elif cfg.intensity_g_per_kwh > 0:
        intensity, intensity_source = cfg.intensity_g_per_kwh, "energy.intensity_g_per_kwh"
        intensity_kind = None  # whatever the user's figure is: say so in the study's notes
    else:
        intensity, intensity_source = grid_intensity(cfg.region)
        intensity_kind = _grid_row(cfg.region)["kind"]  # never compare with marginal figures
    row = _vm_row(cfg.vm_size)
    return {
        "region": cfg.region,
        "intensity_g_per_kwh": intensity,
        "intensity_source": intensity_source,
        "intensity_kind": intensity_kind,
        "hourly_intensity": hourly,
        "pue": cfg.pue or DEFAULT_PUE,
        "pue_source": "energy.pue" if cfg.pue else DEFAULT_PUE_SOURCE,
        "vm_size": row["vm_size"] if row else None,
        "spot": cfg.spot,
        "price_usd_per_hour": vm_price(cfg.vm_size, cfg.spot, cfg.region, cfg.price_usd_per_hour),
        "price_basis": "energy.price_usd_per_hour"
        if cfg.price_usd_per_hour
        else ("table" if row else None),
        "head_vm_size": (cfg.head_vm_size or cfg.vm_size) or None,
        "head_price_usd_per_hour": vm_price(
            cfg.head_vm_size or cfg.vm_size,
            cfg.spot,
            cfg.region,
            0.0 if cfg.head_vm_size else cfg.price_usd_per_hour,
        ),
        "retired": retired_note(cfg.vm_size) if cfg.vm_size else None,
        "billed_note": BILLED_NOTE,
        "co2_method": "location-based (grid average of the region or hour; GHG Protocol Scope 2)",
        "market_intensity_g_per_kwh": (
            cfg.market_intensity_g_per_kwh if cfg.market_intensity_g_per_kwh >= 0 else None
        ),
        "gpus_per_vm": int(row["gpus_per_vm"]) if row else None,
        "price_region": row["region"] if row else None,
        "price_source": _price_source(row) if row else None,
        "cost_note": None if row else "local machine: cost not applicable",
        "tables": {
            name: _table_version(name)
            for name in (GRID_FILE, PRICE_FILE, VM_CPU_FILE, EMBODIED_FILE)
        },
        "overrides": overrides,
    }


SCI_FORMULA = "SCI = (E x I + M) / R (ISO/IEC 21031:2024, Software Carbon Intensity)"


def carbon_accounting(
    operational_kg: float | None,
    energy_j: float | None,
    pue: float,
    market_g_per_kwh: float | None,
    held: list[tuple[str, float]],
    held_out_j: float | None,
    held_out_n: int,
    held_out_g_per_kwh: float,
) -> dict[str, Any]:
    """A study's carbon as the standards ask: operational CO2 labelled location-based (GHG
    Protocol Scope 2), a market-based figure where the user gave a factor, embodied emissions of
    the VMs for the time held (Scope 3, reported beside, never silently summed), and the SCI
    score per functional unit: the tuned model (the whole study), and 1,000 summaries of the
    held-out split (its evaluation's energy). `held`: (vm_size, seconds) per node."""
    parts = [embodied_kg(size, seconds) for size, seconds in held]
    known = [kg for kg, _ in parts if kg is not None]
    embodied = sum(known) if known and len(known) == len(parts) else None
    bases = sorted({basis for _, basis in parts})
    market = co2_kg(energy_j, market_g_per_kwh, pue) if market_g_per_kwh is not None else None
    held_total_s = sum(seconds for _, seconds in held) or 1.0
    per_summary_m = (
        (embodied / held_total_s) if embodied is not None else None
    )  # kg per node-second
    summaries = None
    if held_out_j is not None and held_out_n:
        op = co2_kg(held_out_j, held_out_g_per_kwh, pue)
        summaries = {
            "operational_kg": op * 1000 / held_out_n,
            "functional_unit": "1,000 summaries of the "
            "held-out split (its final evaluation's energy, the selected model)",
            "embodied_included": per_summary_m is not None,
        }
    sci_model = None
    if operational_kg is not None:
        sci_model = operational_kg + (embodied or 0.0)
    return {
        "scope2_method": "location-based (the grid's average intensity; GHG Protocol Scope 2)",
        "operational_kg": operational_kg,
        "market_based_kg": market,
        "market_based_factor_g_per_kwh": market_g_per_kwh,
        "embodied_kg": embodied,
        "embodied_basis": bases,
        "sci": {
            "formula": SCI_FORMULA,
            "functional_unit": "one tuned model (this study's whole search)",
            "kg": sci_model,
            "embodied_included": embodied is not None,
            "note": None
            if embodied is not None
            else "M (embodied) not available for every node: operational only, a lower bound",
            "per_1000_summaries": summaries,
        },
    }


@dataclass(frozen=True)
class HourlyIntensity:
    """Hourly grid intensity from an Electricity Maps CSV export.

    Columns used: `Datetime (UTC)` (the hour's start), `Zone Id`, and
    `Carbon Intensity gCO₂eq/kWh (LCA)` or `(direct)`. `basis="lca"` (the default: life-cycle
    emissions of generation, Electricity Maps' headline figure) or `"direct"` (combustion only);
    the choice is kept in `basis`. Hours with an empty cell are absent, and `at` raises for them.
    """

    starts_s: tuple[float, ...]
    g_per_kwh: tuple[float, ...]
    basis: str
    zone: str
    source: str

    @classmethod
    def from_csv(cls, path: str | Path, basis: str = "lca") -> HourlyIntensity:
        suffix = {"lca": "(LCA)", "direct": "(direct)"}.get(basis)
        if suffix is None:
            raise FootprintError(f"basis={basis!r}: use 'lca' or 'direct'")
        path = Path(path)
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            wanted = [c for c in header if c.startswith("Carbon Intensity") and c.endswith(suffix)]
            if "Datetime (UTC)" not in header or len(wanted) != 1:
                raise FootprintError(
                    f"{path}: not an Electricity Maps export; need 'Datetime (UTC)' and one "
                    f"'Carbon Intensity gCO₂eq/kWh {suffix}' column, found {header}"
                )
            column = wanted[0]
            rows = [r for r in reader if (r.get(column) or "").strip()]
        pairs = sorted((_utc_s(r["Datetime (UTC)"]), float(r[column])) for r in rows)
        zones = sorted({r.get("Zone Id") or "" for r in rows})
        return cls(
            starts_s=tuple(t for t, _ in pairs),
            g_per_kwh=tuple(g for _, g in pairs),
            basis=basis,
            zone=",".join(zones),
            source=f"Electricity Maps export {path.name}",
        )

    def describe(self) -> dict[str, Any]:
        """What the study used, for `metadata.json`."""
        first, last = (self.starts_s[0], self.starts_s[-1]) if self.starts_s else (None, None)
        return {
            "source": self.source,
            "zone": self.zone,
            "basis": self.basis,
            "hours": len(self.starts_s),
            "first_hour_s": first,
            "last_hour_s": last,
        }

    def filled_hours(self, start_s: float, end_s: float) -> int:
        """Hours the study spanned that the export lacks: each took the latest hour before it
        (or the first), a filled value, not a measured one."""
        covered = set(self.starts_s)
        first = int(start_s // 3600) * 3600
        return sum(1 for hour in range(first, int(end_s) + 1, 3600) if float(hour) not in covered)

    def at(self, timestamp_s: float, nearest: bool = False) -> float:
        """gCO2e/kWh of the hour holding unix time `timestamp_s`.

        `nearest=True`: a time outside the export (or in an hour it lacks) takes the latest hour
        before it, or the first hour if it precedes them all; otherwise such a time raises.
        """
        i = bisect_right(self.starts_s, timestamp_s) - 1
        if nearest and self.starts_s:
            return self.g_per_kwh[max(i, 0)]
        if i < 0 or timestamp_s >= self.starts_s[i] + 3600:
            when = datetime.fromtimestamp(timestamp_s, timezone.utc).isoformat()
            raise FootprintError(f"{self.source}: no {self.basis} intensity for the hour of {when}")
        return self.g_per_kwh[i]


@dataclass(frozen=True)
class CarbonIntensity:
    """What converts a study's energy to CO2 at a given moment: one figure, or an hourly series.

    Trials and the cluster meter convert each interval's energy at the intensity of the moment it
    was measured (`at`); with a fixed figure that is the same as converting the total.
    """

    g_per_kwh: float  # the fixed figure (region row or override); unused when `hourly` is set
    pue: float
    hourly: HourlyIntensity | None = None

    def at(self, timestamp_s: float) -> float:
        return self.g_per_kwh if self.hourly is None else self.hourly.at(timestamp_s, nearest=True)

    def co2_kg(self, energy_j: float | None, timestamp_s: float) -> float | None:
        return co2_kg(energy_j, self.at(timestamp_s), self.pue)


def carbon_intensity(cfg: EnergyConfig, now_s: float) -> CarbonIntensity:
    """The study's converter; an hourly export must cover the study's start (`now_s`)."""
    pue = cfg.pue or DEFAULT_PUE
    if not cfg.intensity_csv:
        fixed = cfg.intensity_g_per_kwh or grid_intensity(cfg.region)[0]
        return CarbonIntensity(fixed, pue)
    try:
        hourly = HourlyIntensity.from_csv(cfg.intensity_csv, cfg.intensity_basis)
    except OSError as e:
        raise FootprintError(
            f"energy.intensity_csv={cfg.intensity_csv!r}: cannot read it ({e.strerror}); "
            "give an Electricity Maps hourly CSV export"
        ) from e
    except FootprintError as e:
        raise FootprintError(f"energy.intensity_csv={cfg.intensity_csv!r}: {e}") from e
    except (KeyError, ValueError) as e:
        raise FootprintError(
            f"energy.intensity_csv={cfg.intensity_csv!r}: unreadable row ({e}); "
            "give an Electricity Maps hourly CSV export"
        ) from e
    try:
        hourly.at(now_s)
    except FootprintError as e:
        when = datetime.fromtimestamp(now_s, timezone.utc).strftime("%Y-%m-%d %H:00 UTC")
        raise FootprintError(
            f"energy.intensity_csv={cfg.intensity_csv!r}: it has no {cfg.intensity_basis} "
            "intensity for "
            f"{when}, when the study starts; export the hours the study runs in "
            "(or set energy.intensity_g_per_kwh)"
        ) from e
    return CarbonIntensity(float("nan"), pue, hourly)


def _utc_s(text: str) -> float:
    parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


def _price_source(row: dict[str, str]) -> str:
    return f"{row['source']}, {row['region']}, {row['source_date']}"


def _intensity_source(row: dict[str, str]) -> str:
    return f"{row['source']}, {row['source_date']}"


def _grid_row(region: str) -> dict[str, str]:
    rows = {row["region"]: row for row in _table(GRID_FILE)}
    row = rows.get(region.strip().lower())
    if row is None:
        raise FootprintError(
            f"energy.region={region!r}: no grid intensity for it in {GRID_FILE}; known regions: "
            f"{', '.join(sorted(rows))} (or set energy.intensity_g_per_kwh)"
        )
    return row


def _vm_row(vm_size: str) -> dict[str, str] | None:
    size = _bare_size(vm_size)
    if not size:
        return None
    rows = {row["vm_size"].lower(): row for row in _table(PRICE_FILE)}
    row = rows.get(size.lower())
    if row is None:
        known = ", ".join(r["vm_size"] for r in rows.values())
        raise FootprintError(
            f"energy.vm_size={vm_size!r}: no price for it in {PRICE_FILE}; known sizes: {known} "
            "(or leave energy.vm_size empty on a local machine)"
        )
    return row


def vm_cpu_row(vm_size: str) -> dict[str, str] | None:
    """The host CPU of an Azure VM size (`azure_vm_cpu.csv`), or None where the table lacks it."""
    size = _bare_size(vm_size)
    return (
        {r["vm_size"].lower(): r for r in _table(VM_CPU_FILE)}.get(size.lower()) if size else None
    )


def embodied_kg(vm_size: str, held_s: float) -> tuple[float | None, str]:
    """(kg CO2e, basis) of the manufacturing emissions a VM of `vm_size` accounts for over
    `held_s` seconds: the host server's embodied total x the VM's share of its vCPUs, amortised
    linearly over the host's lifespan (Cloud Carbon Footprint's method). (None, why) where the
    table has no dated row for the size: never a guess."""
    size = _bare_size(vm_size)
    if not size:
        return None, "local machine: not applicable"
    row = {r["vm_size"].lower(): r for r in _table(EMBODIED_FILE)}.get(size.lower())
    if row is None:
        return None, f"no dated row for {size} in {EMBODIED_FILE}: not reported"
    share = int(row["vcpus"]) / int(row["host_vcpus"])
    hours = held_s / 3600.0
    kg = float(row["host_kgco2e"]) * share * hours / (float(row["lifespan_years"]) * HOURS_PER_YEAR)
    return kg, (
        f"{row['host_kgco2e']} kg per host x {row['vcpus']}/{row['host_vcpus']} vCPUs over "
        f"{row['lifespan_years']} years ({row['source']}, {row['source_date']})"
    )


def _bare_size(vm_size: str) -> str:
    size = vm_size.strip()
    return size[len("standard_") :] if size.lower().startswith("standard_") else size


@functools.cache
def _table(name: str) -> tuple[dict[str, str], ...]:
    with (DATA_DIR / name).open(newline="", encoding="utf-8") as f:
        return tuple(csv.DictReader(f))


def _table_version(name: str) -> dict[str, Any]:
    rows = _table(name)
    cite = _price_source if name == PRICE_FILE else _intensity_source
    sources = sorted({cite(r) for r in rows})
    digest = hashlib.sha256((DATA_DIR / name).read_bytes()).hexdigest()[:16]
    return {"sha256_16": digest, "rows": len(rows), "sources": sources}
