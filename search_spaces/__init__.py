"""The hyperparameter search space as data: one definition every strategy derives from.

A space is a YAML file (see `default.yaml`): each parameter has a domain, grid points and a PBT
mutation rule. `load_space("default")` finds the file in this package; any other value is a
path. Everything here is plain data and pure functions: no Ray until `tune_domain` is called.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from core.config import ConfigError

if TYPE_CHECKING:
    from ray.tune.search.sample import Domain

DOMAIN_TYPES = ("loguniform", "uniform", "int_uniform", "choice")
MUTATIONS = ("perturb", "resample", "none")


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # one of DOMAIN_TYPES
    low: float | None = None
    high: float | None = None
    values: tuple = ()  # choice only
    grid: tuple = ()
    mutate: str | tuple = "perturb"  # a MUTATIONS entry, or the tuple of values PBT moves among

    def contains(self, value: Any) -> bool:
        if self.kind == "choice":
            return value in self.values
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def sample(self, rng: random.Random) -> Any:
        if self.kind == "choice":
            return rng.choice(self.values)
        if self.kind == "loguniform":
            return math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        if self.kind == "int_uniform":
            return rng.randint(int(self.low), int(self.high))
        return rng.uniform(self.low, self.high)

    def clip(self, value: Any) -> Any:
        """The nearest value inside the domain (PBT's factors may step outside it)."""
        if self.kind == "choice":
            return value if value in self.values else min(self.values, key=lambda v: abs(v - value))
        clipped = min(max(value, self.low), self.high)
        return int(round(clipped)) if self.kind == "int_uniform" else clipped

    def tune_domain(self) -> Domain:
        from ray import tune

        if self.kind == "choice":
            return tune.choice(list(self.values))
        if self.kind == "loguniform":
            return tune.loguniform(self.low, self.high)
        if self.kind == "int_uniform":
            return tune.randint(int(self.low), int(self.high) + 1)
        return tune.uniform(self.low, self.high)


@dataclass(frozen=True)
class SearchSpace:
    name: str
    params: tuple[Param, ...]
    perturbation_factors: tuple[float, ...] = (0.8, 1.25)
    # Configurations random search, ASHA and PBT start with, before sampling (each a full
    # point of the space); grid search ignores them.
    points_to_evaluate: tuple[dict[str, Any], ...] = ()

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.params]

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def grid(self) -> list[dict[str, Any]]:
        """Every grid point: the product of each parameter's points, in file order."""
        names = self.names
        return [
            dict(zip(names, combo)) for combo in itertools.product(*(p.grid for p in self.params))
        ]

    def sample(self, rng: random.Random) -> dict[str, Any]:
        return {p.name: p.sample(rng) for p in self.params}

    def validate_for(self, known_fields: set[str]) -> None:
        """Reject parameters the trainable does not know."""
        for p in self.params:
            if p.name not in known_fields:
                raise ConfigError(
                    f"search space {self.name!r}: parameter {p.name!r} is not a train setting; "
                    f"use one of {', '.join(sorted(known_fields))}"
                )

    def values_to_check(self, p: Param) -> list[Any]:
        """Every value a trial may get for `p`: the domain's ends (or choices), grid points,
        listed mutations and points to evaluate (what a validation must accept)."""
        values = list(p.values) if p.kind == "choice" else [p.low, p.high]
        values += list(p.grid) + (list(p.mutate) if isinstance(p.mutate, tuple) else [])
        values += [point[p.name] for point in self.points_to_evaluate]
        if p.kind == "int_uniform":
            values = [int(v) for v in values]
        return values

    def validate_values(self, check: Any) -> None:
        """Run `check(name, value)` (which raises ConfigError) on every value a trial may get,
        so a bad value fails here, before Ray, not inside a trial."""
        for p in self.params:
            for value in self.values_to_check(p):
                try:
                    check(p.name, value)
                except ConfigError as e:
                    raise ConfigError(
                        f"search space {self.name!r}, parameter {p.name!r}: {e}"
                    ) from e


def load_space(name_or_path: str) -> SearchSpace:
    """A space by package name (`default`) or by YAML path; validated."""
    shipped_path = Path(__file__).parent / f"{name_or_path}.yaml"
    path = (
        shipped_path if "/" not in name_or_path and shipped_path.is_file() else Path(name_or_path)
    )
    if not path.is_file():
        shipped = sorted(p.stem for p in Path(__file__).parent.glob("*.yaml"))
        raise ConfigError(
            f"search.space={name_or_path!r}: no such space; use one of "
            f"{', '.join(shipped)} or a YAML file path"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"search.space={name_or_path!r}: not valid YAML ({e})") from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"search.space={name_or_path!r}: not UTF-8 text (byte {e.start}); save it as UTF-8"
        ) from e
    return parse_space(data, name=name_or_path)


def parse_space(data: dict[str, Any], name: str = "<inline>") -> SearchSpace:
    where = f"search space {name!r}"
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("parameters"), dict)
        or not data["parameters"]
    ):
        raise ConfigError(f"{where}: needs a non-empty `parameters:` mapping")
    unknown = set(data) - {"parameters", "perturbation_factors", "points_to_evaluate"}
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; use parameters, "
            "perturbation_factors, points_to_evaluate"
        )
    factors = tuple(data.get("perturbation_factors", (0.8, 1.25)))
    if not factors or any(not isinstance(f, (int, float)) or f <= 0 for f in factors):
        raise ConfigError(
            f"{where}: perturbation_factors={list(factors)!r}: give positive numbers, e.g. "
            "[0.8, 1.25]"
        )
    params = tuple(
        _parse_param(f"{where}, parameter {k!r}", k, v) for k, v in data["parameters"].items()
    )
    points = data.get("points_to_evaluate") or []
    if not isinstance(points, list):
        raise ConfigError(f"{where}: points_to_evaluate must be a list of points ({{name: value}})")
    for i, point in enumerate(points):
        names = {p.name for p in params}
        if not isinstance(point, dict) or set(point) != names:
            raise ConfigError(
                f"{where}: points_to_evaluate[{i}]={point!r}: give a value for each of "
                f"{', '.join(sorted(names))}"
            )
        for p in params:
            if not p.contains(point[p.name]):
                raise ConfigError(
                    f"{where}: points_to_evaluate[{i}]: {p.name}={point[p.name]!r} lies "
                    f"outside the domain {_describe(p)}"
                )
    return SearchSpace(
        name=name, params=params, perturbation_factors=factors, points_to_evaluate=tuple(points)
    )


def _parse_param(where: str, name: str, spec: Any) -> Param:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a mapping with domain, grid, mutate")
    unknown = set(spec) - {"domain", "grid", "mutate"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; use domain, grid, mutate")
    domain = spec.get("domain")
    if not isinstance(domain, dict) or domain.get("type") not in DOMAIN_TYPES:
        raise ConfigError(
            f"{where}: domain={domain!r}: give {{type: one of {', '.join(DOMAIN_TYPES)}, ...}}"
        )
    kind = domain["type"]
    if kind == "choice":
        values = tuple(domain.get("values") or ())
        if not values:
            raise ConfigError(f"{where}: domain.values is empty; list the choices")
        param = Param(name, kind, values=values)
    else:
        low, high = domain.get("low"), domain.get("high")
        if not all(isinstance(x, (int, float)) for x in (low, high)):
            raise ConfigError(
                f"{where}: domain needs numeric low and high, got low={low!r} high={high!r}"
            )
        if low > high:
            raise ConfigError(f"{where}: domain low={low} > high={high}; swap them")
        if kind == "loguniform" and low <= 0:
            raise ConfigError(f"{where}: loguniform low={low}: must be > 0")
        param = Param(name, kind, low=float(low), high=float(high))

    grid = spec.get("grid")
    if not isinstance(grid, list) or not grid:
        raise ConfigError(
            f"{where}: grid={grid!r}: give at least one grid point, e.g. grid: [{_example(param)}]"
        )
    for point in grid:
        if not param.contains(point):
            raise ConfigError(
                f"{where}: grid point {point!r} lies outside the domain {_describe(param)}; "
                "use points inside it, or widen the domain"
            )

    mutate = spec.get("mutate", "perturb")
    if isinstance(mutate, list):
        if not mutate:
            raise ConfigError(
                f"{where}: mutate=[]: list the values PBT may move among, or use none"
            )
        for value in mutate:
            if not param.contains(value):
                raise ConfigError(
                    f"{where}: mutation value {value!r} lies outside the domain "
                    f"{_describe(param)}; "
                    "use values inside it, or widen the domain"
                )
        mutate = tuple(mutate)
    elif mutate not in MUTATIONS:
        raise ConfigError(
            f"{where}: mutate={mutate!r}: use perturb, resample, none or a list of values"
        )
    return Param(param.name, kind, param.low, param.high, param.values, tuple(grid), mutate)


def _describe(p: Param) -> str:
    return f"{list(p.values)}" if p.kind == "choice" else f"{p.kind}[{p.low}, {p.high}]"


def _example(p: Param) -> Any:
    return p.values[0] if p.kind == "choice" else p.low
