"""Live per-trial energy, power, CO2 and cost as Ray metrics (Prometheus / Grafana).

Ray exports each gauge as `ray_<name>{study=..., seed=..., trial_id=..., strategy=...}` through
the dashboard's metrics agent (needs `ray[default]`): the trial gauges from each trial's driver,
the whole-cluster ones (`ray_cluster_*`, no trial_id) from the study process's cluster meter. The
gauges are created on first use, in the process that publishes, never at import.

    >>> tags = LiveTags(study="pbt-seed0", seed=0, strategy="pbt")
    >>> publish(tags, "a1b2_00003", energy_j=5.4e5, power_w=310.0, co2_kg=0.067, cost_usd=None)
    >>> publish_cluster(tags, energy_j=2.1e6, power_w=950.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

TAG_KEYS = ("study", "seed", "trial_id", "strategy")
CLUSTER_TAG_KEYS = ("study", "seed", "strategy")
GAUGES = {
    "trial_energy_joules": "Energy the trial used so far, J (GPU + CPU + RAM, all workers)",
    "trial_power_watts": "Mean power of the trial over its last report interval, W",
    "trial_co2_kg": "CO2e of the trial so far, kg (energy x PUE x grid intensity)",
    "trial_cost_usd": "Attributed cost of the trial so far, USD (device-hours x price per GPU)",
}
CLUSTER_GAUGES = {
    "cluster_energy_joules": "Energy of the whole cluster since the study started, J (every "
    "node's GPUs, CPU and RAM: the trials plus the overhead)",
    "cluster_power_watts": "Mean power of the whole cluster over the meter's last poll, W",
}
_gauges: dict[str, Any] = {}  # this process's gauges, by name


@dataclass(frozen=True)
class LiveTags:
    """What tells one study's gauges from another's (three seeds of one strategy in `compare`)."""

    study: str
    seed: int
    strategy: str

    def labels(self) -> dict[str, str]:
        return {"study": self.study, "seed": str(self.seed), "strategy": self.strategy}


def publish(
    tags: LiveTags,
    trial_id: str,
    energy_j: float | None,
    power_w: float | None,
    co2_kg: float | None,
    cost_usd: float | None,
) -> None:
    """Set the four gauges for one trial; a None value leaves its gauge as it was."""
    values = (energy_j, power_w, co2_kg, cost_usd)
    _set(GAUGES, TAG_KEYS, {**tags.labels(), "trial_id": trial_id}, values)


def publish_cluster(tags: LiveTags, energy_j: float | None, power_w: float | None) -> None:
    """Set the whole-cluster gauges of a study; a None value leaves its gauge as it was."""
    _set(CLUSTER_GAUGES, CLUSTER_TAG_KEYS, tags.labels(), (energy_j, power_w))


def _set(
    gauges: dict[str, str], keys: tuple[str, ...], labels: dict[str, str], values: tuple
) -> None:
    import ray
    from ray.util.metrics import Gauge

    if not ray.is_initialized():
        raise RuntimeError("live_metrics.publish needs Ray: call it in a Ray driver or worker")
    for (name, text), value in zip(gauges.items(), values, strict=True):
        if name not in _gauges:
            _gauges[name] = Gauge(name, text, keys)
        if value is not None:
            _gauges[name].set(float(value), tags=labels)
