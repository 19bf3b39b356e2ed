"""The experiments study's effects: each variation against its `against`, repeat by repeat.

Per trial: peak RAM of its process (fresh per trial), peak GPU memory (where there is a GPU),
samples/s and tokens/s (mean over its reports), runtime (device-seconds), energy, CO2, cost and
the test ROUGE-L of its final model. Per variation and measure: the mean of the paired changes
(relative, in %; test ROUGE-L in absolute points) with a 95 % Student-t interval over repeats
(`core.stats.t_interval`), and each of the plan's expectations checked against it: `yes` when
the interval lies on the expected side of zero, `no: the opposite` when it lies on the other,
`no: within noise` when it holds zero.

    >>> check(Expectation("speed", "increases"), Change(-3.0, -8.0, 2.0, 3))
    'increases speed: no, -3.0 % ± 5.0, within noise'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core import schema
from core.effects import Expectation
from core.metadata import StudyMetadata
from core.stats import t_interval

# measure -> (column of the per-trial table, label, relative change?)
MEASURES = {
    "ram": ("peak_ram_bytes", "RAM", True),
    "vram": ("peak_gpu_bytes", "GPU memory", True),
    "speed": (schema.SAMPLES_PER_S, "samples/s", True),
    "throughput": (schema.TOKENS_PER_S, "tokens/s", True),
    "runtime": (schema.DEVICE_S, "runtime", True),
    "energy": (schema.ENERGY_TOTAL_J, "energy", True),
    "co2": (schema.CO2_KG, "CO2e", True),
    "cost": (schema.COST_USD, "cost", True),
    "accuracy": (schema.TEST_ROUGEL, "test ROUGE-L", False),
}
# a plan's effect -> the measure that checks it ("memory": GPU memory where there is a GPU)
EFFECT_MEASURE = {
    "gpu_memory": "vram",
    "speed": "speed",
    "throughput": "throughput",
    "runtime": "runtime",
    "energy": "energy",
    "co2": "co2",
    "cost": "cost",
    "accuracy": "accuracy",
}


@dataclass(frozen=True)
class Change:
    """Mean paired change with its 95 % interval over `n` repeats (% or ROUGE-L points)."""

    mean: float
    low: float
    high: float
    n: int
    unit: str = "%"

    @property
    def text(self) -> str:
        if not math.isfinite(self.mean):
            return "–"
        if self.n < 2 or not math.isfinite(self.low):
            return f"{self.mean:+.1f} {self.unit} (1 seed)"
        return f"{self.mean:+.1f} {self.unit} ± {(self.high - self.low) / 2:.1f}"

    @property
    def side(self) -> str:
        """up, down, or noise (the interval holds zero, or there is none)."""
        if self.n < 2 or not math.isfinite(self.low):
            return "noise"
        return "up" if self.low > 0 else "down" if self.high < 0 else "noise"


def trial_measures(reports: pd.DataFrame, trials: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: variation, repeat and every measure of `MEASURES`."""
    per_trial = reports.groupby(schema.TRIAL_ID)
    out = pd.DataFrame(
        {
            schema.TRIAL_ID: trials[schema.TRIAL_ID],
            schema.VARIATION: trials[schema.CONFIG_PREFIX + schema.VARIATION],
            schema.REPEAT: trials[schema.CONFIG_PREFIX + schema.REPEAT].astype(int),
        }
    ).set_index(schema.TRIAL_ID)
    out["peak_ram_bytes"] = per_trial[schema.PEAK_RSS_BYTES].max()
    gpu = (
        per_trial[schema.PEAK_CUDA_ALLOCATED_BYTES].max()
        if schema.PEAK_CUDA_ALLOCATED_BYTES in reports
        else math.nan
    )
    out["peak_gpu_bytes"] = gpu
    for col in (schema.SAMPLES_PER_S, schema.TOKENS_PER_S):
        out[col] = per_trial[col].mean()
    for col in (schema.DEVICE_S, schema.ENERGY_TOTAL_J, schema.CO2_KG, schema.COST_USD):
        out[col] = trials.set_index(schema.TRIAL_ID)[col] if col in trials else math.nan
    test = schema.TEST_ROUGEL
    out[test] = trials.set_index(schema.TRIAL_ID)[test] if test in trials else math.nan
    return out.reset_index()


def paired_change(measures: pd.DataFrame, variation: str, against: str, measure: str) -> Change:
    """The change of `measure` from `against` to `variation`, paired by repeat."""
    column, _, relative = MEASURES[measure]
    table = measures.pivot_table(
        index=schema.REPEAT, columns=schema.VARIATION, values=column, aggfunc="mean"
    )
    if variation not in table or against not in table:
        return Change(math.nan, math.nan, math.nan, 0)
    a, b = table[variation].astype(float), table[against].astype(float)
    if relative:
        diffs = (100.0 * (a - b) / b.where(b != 0)).tolist()
        unit = "%"
    else:
        diffs = (100.0 * (a - b)).tolist()  # ROUGE-L points
        unit = "points"
    mean, low, high, n = t_interval(diffs)
    return Change(mean, low, high, n, unit)


def check(expectation: Expectation, change: Change | None) -> str:
    """The plan's expected effect against the measured change, in words."""
    head = expectation.phrase
    if change is None or not math.isfinite(change.mean):
        return f"{head}: not measurable here"
    side = change.side
    if expectation.direction == "affects":
        verdict = "yes" if side != "noise" else "no"
    else:
        wanted = "down" if expectation.direction == "reduces" else "up"
        verdict = "yes" if side == wanted else "no"
    why = ""
    if verdict == "no":
        why = ", the opposite" if side not in ("noise", "") else ", within noise"
    if change.n < 2:
        why = ", one seed: no interval"
    return f"{head}: {verdict}, {change.text.replace(' (1 seed)', '')}{why}"


def plan_of(metadata: StudyMetadata) -> dict[str, Any]:
    """The experiments section of an experiments study's metadata ({} for another study)."""
    return metadata.section("experiments")


def effects_table(
    measures: pd.DataFrame, plan: dict[str, Any], has_gpu: bool
) -> tuple[pd.DataFrame, dict[str, dict[str, Change]]]:
    """Per variation that ran (the baseline aside): its change in every measure, and the
    expectation checks. Returns the table (text cells) and the changes behind it (for plots)."""
    ran = set(measures[schema.VARIATION])
    rows, changes = [], {}
    for v in plan.get("variations") or []:
        name, against = v["name"], v.get("against", schema.BASELINE_VARIATION)
        if name == schema.BASELINE_VARIATION or name not in ran:
            continue
        measured = {m: paired_change(measures, name, against, m) for m in MEASURES}
        changes[name] = measured
        checks = []
        for e in v.get("expect") or []:
            expectation = Expectation(e["effect"], e["direction"], bool(e.get("situational")))
            measure = EFFECT_MEASURE.get(e["effect"]) or ("vram" if has_gpu else "ram")
            if measure == "vram" and not has_gpu:
                checks.append(f"{expectation.phrase}: not measurable here (no GPU)")
                continue
            checks.append(check(expectation, measured[measure]))
        row = {"variation": name, "against": against}
        for m, (_, label, _) in MEASURES.items():
            if m == "vram" and not has_gpu:
                row[label] = "no GPU"
            else:
                row[label] = measured[m].text
        row["seeds"] = max(c.n for c in measured.values())
        row["the plan expects -> measured"] = "; ".join(checks) or "–"
        rows.append(row)
    return pd.DataFrame(rows), changes


def absolute_table(measures: pd.DataFrame) -> pd.DataFrame:
    """Each variation's own means over its repeats (what the changes are relative to), in the
    units a reader expects: GiB, samples/s, tokens/s, seconds, joules, grams, dollars, ROUGE-L."""
    units = {
        "peak_ram_bytes": ("RAM (GiB)", 1 / 2**30),
        "peak_gpu_bytes": ("GPU memory (GiB)", 1 / 2**30),
        schema.SAMPLES_PER_S: ("samples/s", 1.0),
        schema.TOKENS_PER_S: ("tokens/s", 1.0),
        schema.DEVICE_S: ("runtime (s)", 1.0),
        schema.ENERGY_TOTAL_J: ("energy (J)", 1.0),
        schema.CO2_KG: ("CO2e (g)", 1000.0),
        schema.COST_USD: ("cost ($)", 1.0),
        schema.TEST_ROUGEL: ("test ROUGE-L", 1.0),
    }
    cols = [c for c in units if c in measures and measures[c].notna().any()]
    means = measures.groupby(schema.VARIATION, sort=False)[cols].mean()
    out = pd.DataFrame({"variation": means.index})
    for c in cols:
        label, factor = units[c]
        out[label] = (means[c] * factor).to_numpy()
    return out
