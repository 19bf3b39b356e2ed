"""How the report writes one value: fixed decimals, significant digits, dollars, hours, shares.

Each formatter takes a float (NaN or None: a dash, or `not applicable` for dollars) and returns
text; `spread_like` writes a standard deviation with as many decimals as its mean shows.
"""

from __future__ import annotations

import math
from collections.abc import Callable

NOT_APPLICABLE = "not applicable"


def num(v: float, digits: int = 3) -> str:
    """Fixed decimals (ROUGE, counts)."""
    if v is None or not math.isfinite(float(v)):
        return "–"
    return f"{float(v):,.{digits}f}"


def sig(v: float, n: int = 3) -> str:
    """n significant digits, no exponent: 0.000972, 0.321, 12.3, 1,234 (physical quantities whose
    scale runs from a CPU smoke run to a GPU cluster)."""
    if v is None or not math.isfinite(float(v)):
        return "–"
    v = float(v)
    if v == 0:
        return "0"
    decimals = max(0, n - 1 - math.floor(math.log10(abs(v))))
    return f"{v:,.{decimals}f}"


def usd(v: float) -> str:
    if v is None or not math.isfinite(float(v)):
        return NOT_APPLICABLE
    return f"${v:,.2f}" if abs(v) >= 0.01 or v == 0 else f"${sig(v, 2)}"


def hours(s: float) -> str:
    return "–" if not math.isfinite(s) else f"{sig(s / 3600)} h"


def pct(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v:.0%}"


def count(v: float) -> str:
    return num(v, 0) if math.isfinite(v) and float(v).is_integer() else num(v, 1)


def sig4(v: float) -> str:
    return sig(v, 4)


def rouge(v: float) -> str:
    return num(v, 4)


def to_hours(v: float) -> str:
    return sig(v / 3600, 3)


def spread_like(sd: float, mean_text: str, fmt: Callable[[float], str]) -> str:
    """The spread with as many decimals as its mean shows (0.8032 ± 0.0015, not ± 0.001456)."""
    if fmt in (pct, usd, count):
        return fmt(sd).lstrip("$")
    digits = mean_text.replace(",", "").partition(".")[2]
    return f"{sd / 3600 if fmt is to_hours else sd:,.{len(digits)}f}"


def ratio(v: float) -> str:
    return "–" if not math.isfinite(v) else f"{v:.2f}×"


def interval(lo: float, hi: float, fmt: Callable[[float], str]) -> str:
    return f" [{fmt(lo)} – {fmt(hi)}]" if math.isfinite(lo) and math.isfinite(hi) else ""
