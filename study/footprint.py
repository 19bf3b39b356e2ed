"""Energy -> CO2 and compute -> cost, from dated tables whose source travels with every figure.

Tables (in `study/data/`, each row naming its source and date):

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

from study.config import EnergyConfig

DATA_DIR = Path(__file__).parent / "data"
GRID_FILE = "grid_intensity.csv"
PRICE_FILE = "azure_vm_prices.csv"
DEFAULT_PUE = 1.185
DEFAULT_PUE_SOURCE = "Azure PUE, Cloud Carbon Footprint coefficients, June 2022"
J_PER_KWH = 3.6e6
LBS_PER_KG = 2.20462


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


def vm_price(vm_size: str, spot: bool = False) -> float | None:
    """USD/hour of one VM (eastus); None for a local machine (`vm_size` empty)."""
    row = _vm_row(vm_size)
    if row is None:
        return None
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


def billed_cost_usd(node_hours: dict[str, float], spot: bool = False) -> float | None:
    """What Azure bills: hours each VM size was up x its price; None if any node is local ("")."""
    prices = [vm_price(size, spot) for size in node_hours]
    if any(p is None for p in prices):
        return None
    return sum(h * p for h, p in zip(node_hours.values(), prices, strict=True))


def billed_cost_for_nodes(held: list[tuple[str, float]], spot: bool) -> float | None:
    """What Azure bills for a study: every node's VM for the seconds the study held it, idle included.

    `held` is one `(vm_size, seconds)` per node, so a size may repeat; a node lost mid-study (a
    spot eviction) counts until it was lost. ``sum(vm_price(size) * seconds) / 3600``. None if any
    node is a local machine (size ""): a local machine has no price, and a partial sum would
    understate the bill. A size missing from the price table, or a spot price the table lacks,
    raises FootprintError (as `vm_price` does), even beside a local node: a typo must not pass as
    "no price". No nodes at all, or a negative time, raise too.
    """
    if not held:
        raise FootprintError("billed cost needs at least one node's vm_size; got none")
    if any(seconds < 0 for _, seconds in held):
        raise FootprintError(f"held={held!r}: a node's time cannot be negative")
    prices = [vm_price(size, spot) for size, _ in held]  # every size checked before any None
    if any(p is None for p in prices):
        return None
    return sum(p * seconds for p, (_, seconds) in zip(prices, held)) / 3600.0


def attributed_cost_usd(device_s: float, vm_size: str, spot: bool = False) -> float | None:
    """A trial's share: device-hours x the VM's price per GPU; None on a local machine."""
    price = vm_price(vm_size, spot)
    if price is None:
        return None
    return device_s / 3600.0 * price / gpus_per_vm(vm_size)


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
        "price_usd_per_hour": vm_price(cfg.vm_size, cfg.spot),
        "gpus_per_vm": int(row["gpus_per_vm"]) if row else None,
        "price_region": row["region"] if row else None,
        "price_source": _price_source(row) if row else None,
        "cost_note": None if row else "local machine: cost not applicable",
        "tables": {name: _table_version(name) for name in (GRID_FILE, PRICE_FILE)},
        "overrides": overrides,
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
        raise FootprintError(f"energy.intensity_csv={cfg.intensity_csv!r}: cannot read it ({e.strerror}); "
                             "give an Electricity Maps hourly CSV export") from e
    except FootprintError as e:
        raise FootprintError(f"energy.intensity_csv={cfg.intensity_csv!r}: {e}") from e
    except (KeyError, ValueError) as e:
        raise FootprintError(f"energy.intensity_csv={cfg.intensity_csv!r}: unreadable row ({e}); "
                             "give an Electricity Maps hourly CSV export") from e
    try:
        hourly.at(now_s)
    except FootprintError as e:
        when = datetime.fromtimestamp(now_s, timezone.utc).strftime("%Y-%m-%d %H:00 UTC")
        raise FootprintError(
            f"energy.intensity_csv={cfg.intensity_csv!r}: it has no {cfg.intensity_basis} intensity for "
            f"{when}, when the study starts; export the hours the study runs in "
            "(or set energy.intensity_g_per_kwh)") from e
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
    size = vm_size.strip()
    if not size:
        return None
    if size.lower().startswith("standard_"):
        size = size[len("standard_") :]
    rows = {row["vm_size"].lower(): row for row in _table(PRICE_FILE)}
    row = rows.get(size.lower())
    if row is None:
        known = ", ".join(r["vm_size"] for r in rows.values())
        raise FootprintError(
            f"energy.vm_size={vm_size!r}: no price for it in {PRICE_FILE}; known sizes: {known} "
            "(or leave energy.vm_size empty on a local machine)"
        )
    return row


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
