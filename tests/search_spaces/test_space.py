"""The search space as data: loading, the grid, and every invalid space rejected without Ray."""

import dataclasses
import random

import pytest

from search_spaces import load_space, parse_space
from study.config import ConfigError, TrainConfig

TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def space(**param):
    spec = {"domain": {"type": "uniform", "low": 0.0, "high": 1.0}, "grid": [0.5], "mutate": "perturb"}
    spec.update(param)
    return {"parameters": {"weight_decay": spec}}


def test_default_space_grid_is_the_product_of_points():
    s = load_space("default")
    s.validate_for(TRAIN_FIELDS)
    grid = s.grid()
    assert len(grid) == 4 * 1 * 1 * 1 * 1
    assert {g["lr"] for g in grid} == {1e-4, 1e-3, 1e-2, 1e-1}
    assert {g["label_smoothing"] for g in grid} == {0.1}
    assert all(g["batch_size"] == 16 for g in grid)


def test_sampling_stays_in_domain_and_is_seeded():
    s = load_space("default")
    a = [s.sample(random.Random(7)) for _ in range(3)]
    b = [s.sample(random.Random(7)) for _ in range(3)]
    assert a == b
    for cfg in a:
        assert all(s.param(k).contains(v) for k, v in cfg.items())


def test_clip_keeps_mutations_inside_the_domain():
    s = load_space("default")
    assert s.param("lr").clip(0.5) == pytest.approx(0.1)
    assert s.param("lr").clip(1e-9) == pytest.approx(1e-5)
    assert s.param("batch_size").clip(20) == 16


@pytest.mark.parametrize("change, needle", [
    ({"grid": []}, "give at least one grid point"),
    ({"domain": {"type": "uniform", "low": 1.0, "high": 0.0}}, "low=1.0 > high=0.0"),
    ({"grid": [2.0]}, "grid point 2.0 lies outside the domain"),
    ({"mutate": [0.5, 3.0]}, "mutation value 3.0 lies outside the domain"),
    ({"mutate": "shuffle"}, "mutate='shuffle'"),
    ({"domain": {"type": "normal"}}, "give {type: one of"),
    ({"domain": {"type": "loguniform", "low": 0.0, "high": 1.0}}, "loguniform low=0.0: must be > 0"),
    ({"domain": {"type": "choice", "values": []}}, "domain.values is empty"),
    ({"extra": 1}, "unknown key(s) ['extra']"),
])
def test_invalid_spaces_are_rejected(change, needle):
    with pytest.raises(ConfigError) as err:
        parse_space(space(**change), name="t")
    assert needle in str(err.value)
    assert "weight_decay" in str(err.value)  # names the parameter


def test_unknown_parameter_and_missing_space():
    s = parse_space({"parameters": {"dropout": {"domain": {"type": "uniform", "low": 0, "high": 1},
                                                 "grid": [0.1]}}}, name="t")
    with pytest.raises(ConfigError, match="parameter 'dropout' is not a train setting"):
        s.validate_for(TRAIN_FIELDS)
    with pytest.raises(ConfigError, match="search.space='nope': no such space"):
        load_space("nope")
    with pytest.raises(ConfigError, match="non-empty `parameters:`"):
        parse_space({"parameters": {}})
