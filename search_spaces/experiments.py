"""The efficiency experiments as data: a baseline and variations, one knob at a time.

A plan is a YAML file (`experiments.yaml` in this package is the study plan's list; any other
value of `search.experiments` is a path). Each variation turns one knob on top of the baseline
and says which effects the plan expects of it; `python -m study.run experiments` runs every
variation `seeds` times in one Tune study (trial parameters `core.schema.VARIATION` and
`REPEAT`), and the
report checks each expectation against the measured change (`analysis.effects`). Plain data and
pure functions: nothing here starts Ray or imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import ConfigError, StudyConfig, apply_settings, load_yaml_file
from core.effects import Expectation
from core.schema import BASELINE_VARIATION


@dataclass(frozen=True)
class Variation:
    name: str
    settings: dict[str, Any] = field(default_factory=dict)  # dotted keys on top of the baseline
    against: str = BASELINE_VARIATION
    expect: tuple[Expectation, ...] = ()
    needs_gpu: str = ""  # why it cannot be measured without a GPU ("" = runs anywhere)


@dataclass(frozen=True)
class ExperimentPlan:
    seeds: int
    baseline: dict[str, Any]  # dotted settings the study starts from
    variations: tuple[Variation, ...]  # the baseline first, as a variation with no settings
    source: str = ""

    def variation(self, name: str) -> Variation:
        for v in self.variations:
            if v.name == name:
                return v
        raise KeyError(name)

    def trial_config(self, cfg: StudyConfig, name: str) -> StudyConfig:
        """The study's config with variation `name`'s knob turned."""
        v = self.variation(name)
        return apply_settings(cfg, v.settings, f"experiments variation {name!r}")

    @property
    def settings(self) -> dict[str, dict[str, Any]]:
        """Each variation's dotted settings: what a trial driver applies to the study config."""
        return {v.name: dict(v.settings) for v in self.variations}

    def skipped(self, has_gpu: bool) -> dict[str, str]:
        """Variations that cannot run on this cluster, each with the reason (a variation whose
        `against` is skipped is skipped too: it would have nothing to be compared with)."""
        reasons: dict[str, str] = {}
        for v in self.variations:
            if v.needs_gpu and not has_gpu:
                reasons[v.name] = f"needs a GPU: {v.needs_gpu}"
        for v in self.variations:
            if v.name not in reasons and v.against in reasons:
                reasons[v.name] = f"compared with {v.against!r}, which is skipped"
        return reasons

    def runnable(self, has_gpu: bool) -> tuple[str, ...]:
        skipped = self.skipped(has_gpu)
        return tuple(v.name for v in self.variations if v.name not in skipped)

    def check(self, cfg: StudyConfig) -> None:
        """Every variation resolves to a valid config (raises ConfigError naming it)."""
        for v in self.variations:
            self.trial_config(cfg, v.name)


def load_plan(name_or_path: str) -> ExperimentPlan:
    """`experiments` (this package's plan) or a YAML file path; errors name the key and fix."""
    here = Path(__file__).parent / f"{name_or_path}.yaml"
    path = here if here.exists() else Path(name_or_path)
    where = f"search.experiments={name_or_path!r}"
    if not path.exists():
        raise ConfigError(
            f"{where}: no such plan; use 'experiments' (search_spaces/experiments.yaml) or a "
            "YAML file path"
        )
    data = load_yaml_file(path, what="search.experiments")
    unknown = set(data) - {"seeds", "baseline", "variations"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {sorted(unknown)[0]!r}; a plan has seeds, baseline, variations"
        )
    seeds = data.get("seeds", 3)
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        raise ConfigError(f"{where}: seeds={seeds!r}: must be a whole number >= 1")
    baseline = data.get("baseline") or {}
    if not isinstance(baseline, dict):
        raise ConfigError(f"{where}: baseline={baseline!r}: must map dotted keys to values")
    variations = [Variation(BASELINE_VARIATION)]
    for i, raw in enumerate(data.get("variations") or []):
        variations.append(_variation(raw, f"{where}: variations[{i}]"))
    names = [v.name for v in variations]
    for v in variations[1:]:
        if names.count(v.name) > 1:
            raise ConfigError(f"{where}: variation name {v.name!r} twice; give each its own")
        if v.against not in names or v.against == v.name:
            raise ConfigError(
                f"{where}: variation {v.name!r} against={v.against!r}: name another "
                f"variation or {BASELINE_VARIATION!r}"
            )
    if len(variations) < 2:
        raise ConfigError(f"{where}: no variations; list at least one under `variations`")
    return ExperimentPlan(seeds, dict(baseline), tuple(variations), str(path))


def _variation(raw: Any, where: str) -> Variation:
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or not raw["name"]:
        raise ConfigError(f"{where}: needs a name (and set, expect, against, needs_gpu)")
    where = f"{where} ({raw['name']})"
    unknown = set(raw) - {"name", "set", "against", "expect", "needs_gpu"}
    if unknown:
        raise ConfigError(f"{where}: unknown key {sorted(unknown)[0]!r}")
    if raw["name"] == BASELINE_VARIATION:
        raise ConfigError(f"{where}: {BASELINE_VARIATION!r} is the plan's own baseline; rename it")
    settings = raw.get("set") or {}
    if not isinstance(settings, dict):
        raise ConfigError(f"{where}: set={settings!r}: must map dotted keys to values")
    expect = []
    for item in raw.get("expect") or []:
        if not isinstance(item, dict):
            raise ConfigError(
                f"{where}: expect entry {item!r}: write {{effect: ..., direction: ...}}"
            )
        try:  # core.effects.Expectation checks the effect and the direction
            expect.append(
                Expectation(
                    item.get("effect"), item.get("direction"), bool(item.get("situational"))
                )
            )
        except ValueError as e:
            raise ConfigError(f"{where}: {e}") from e
    return Variation(
        raw["name"],
        dict(settings),
        str(raw.get("against", BASELINE_VARIATION)),
        tuple(expect),
        " ".join(str(raw.get("needs_gpu", "")).split()),
    )
