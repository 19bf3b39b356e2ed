"""The energy measurement type every meter returns, and how measurements add up.

Ground layer: imports only the schema. `meter/` produces `Measurement`s; trainables, the study
and the analysis read and sum them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from core.schema import ENERGY_SOURCES

# Weakest last: the source of a sum is the weakest source among its parts.
SOURCE_RANK = {source: rank for rank, source in enumerate(ENERGY_SOURCES)}
ENERGY_PARTS = ("gpu", "cpu", "ram")  # what every meter reports, each in joules with its source


def measured_sum(values: Iterable[float | None]) -> float | None:
    """Sum of the values that were measured; None if none was (missing is never 0)."""
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def weakest_source(sources: Iterable[str | None]) -> str | None:
    """A sum is only as well measured as its weakest part: the weakest of `sources` (None is
    skipped, an unknown label counts as weakest); None if no source is given."""
    known = [s for s in sources if s is not None]
    return max(known, key=lambda s: SOURCE_RANK.get(s, len(SOURCE_RANK))) if known else None


@dataclass(frozen=True)
class Measurement:
    """Energy of one window (or a sum of windows), in joules; None where nothing was measured.

    `<part>_coverage` is (measured, attempted) device-windows: how many of the device reads this
    figure needed succeeded. A sum whose part was only partly measured (some attempted reads
    failed) carries the source `partial` and its coverage below 1; it is a lower bound.
    """

    duration_s: float
    gpu_j: float | None = None
    cpu_j: float | None = None
    ram_j: float | None = None
    gpu_source: str | None = None  # counter | power_integral | shared_device | estimated | partial
    cpu_source: str | None = None
    ram_source: str | None = None
    gpu_coverage: tuple[int, int] = (0, 0)
    cpu_coverage: tuple[int, int] = (0, 0)
    ram_coverage: tuple[int, int] = (0, 0)

    def __post_init__(self) -> None:
        for part in ENERGY_PARTS:
            value, source = getattr(self, f"{part}_j"), getattr(self, f"{part}_source")
            if (value is None) != (source is None) or (source and source not in SOURCE_RANK):
                raise ValueError(
                    f"{part}_j={value!r} with {part}_source={source!r}: a value needs "
                    f"one of {ENERGY_SOURCES}, and None needs None"
                )
            object.__setattr__(self, f"{part}_coverage", tuple(getattr(self, f"{part}_coverage")))

    @property
    def total_j(self) -> float | None:
        """Sum of the parts that were measured; None if none was."""
        return measured_sum(getattr(self, f"{part}_j") for part in ENERGY_PARTS)

    def coverage(self, part: str) -> float | None:
        """Measured share of the attempted device-windows of `part` (None: none attempted)."""
        measured, attempted = getattr(self, f"{part}_coverage")
        return measured / attempted if attempted else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "total_j": self.total_j}


def sum_measurements(items: Iterable[Measurement]) -> Measurement:
    """Add measurements of several workers and segments part by part.

    `duration_s` adds up to worker-seconds. A part's source is the weakest among the inputs that
    have the part (counter < power_integral < shared_device < estimated < partial); a part whose
    attempted reads did not all succeed becomes `partial` (a lower bound, with its coverage). A
    part nobody attempted (a CPU-only worker adds no GPU energy) is simply absent; a part missing
    in every input stays None.
    """
    items = list(items)
    fields: dict[str, Any] = {"duration_s": sum(m.duration_s for m in items)}
    for part in ENERGY_PARTS:
        coverage = tuple(sum(getattr(m, f"{part}_coverage")[i] for m in items) for i in (0, 1))
        fields[f"{part}_coverage"] = coverage
        have = [m for m in items if getattr(m, f"{part}_j") is not None]
        if have:
            fields[f"{part}_j"] = sum(getattr(m, f"{part}_j") for m in have)
            source = weakest_source(getattr(m, f"{part}_source") for m in have)
            fields[f"{part}_source"] = "partial" if coverage[0] < coverage[1] else source
    return Measurement(**fields)
