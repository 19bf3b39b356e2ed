"""Live per-trial energy, power, CO2 and cost as Ray metrics (Prometheus / Grafana).

Ray exports each gauge as `ray_<name>{trial_id=..., strategy=...}` through the dashboard's
metrics agent (needs `ray[default]`). The gauges are created on first use, in the process that
publishes (a Tune driver or a Train worker), never at import.

    >>> publish("a1b2_00003", "asha", energy_j=5.4e5, power_w=310.0, co2_kg=0.067, cost_usd=None)
"""

from __future__ import annotations

from typing import Any

TAG_KEYS = ("trial_id", "strategy")
GAUGES = {
    "trial_energy_joules": "Energy the trial used so far, J (GPU + CPU + RAM, all workers)",
    "trial_power_watts": "Mean power of the trial over its last report interval, W",
    "trial_co2_kg": "CO2e of the trial so far, kg (energy x PUE x grid intensity)",
    "trial_cost_usd": "Attributed cost of the trial so far, USD (device-hours x price per GPU)",
}
_gauges: dict[str, Any] = {}  # this process's gauges, by name


def publish(
    trial_id: str,
    strategy: str,
    energy_j: float | None,
    power_w: float | None,
    co2_kg: float | None,
    cost_usd: float | None,
) -> None:
    """Set the four gauges for one trial; a None value leaves its gauge as it was."""
    import ray
    from ray.util.metrics import Gauge

    if not ray.is_initialized():
        raise RuntimeError("live_metrics.publish needs Ray: call it in a Ray driver or worker")
    if not _gauges:
        _gauges.update({name: Gauge(name, text, TAG_KEYS) for name, text in GAUGES.items()})
    tags = {"trial_id": trial_id, "strategy": strategy}
    values = (energy_j, power_w, co2_kg, cost_usd)
    for name, value in zip(GAUGES, values, strict=True):
        if value is not None:
            _gauges[name].set(float(value), tags=tags)
