"""The search space as data: loading, the grid, and every invalid space rejected without Ray."""

import dataclasses
import random

import pytest

from core.config import ConfigError, TrainConfig
from search_spaces import load_space, parse_space

TRAIN_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def space(**param):
    spec = {
        "domain": {"type": "uniform", "low": 0.0, "high": 1.0},
        "grid": [0.5],
        "mutate": "perturb",
    }
    spec.update(param)
    return {"parameters": {"weight_decay": spec}}


def test_default_space_grid_is_the_product_of_points():
    s = load_space("default")
    s.validate_for(TRAIN_FIELDS)
    grid = s.grid()
    assert len(grid) == 4 * 2 * 1 * 1 * 1
    assert {g["lr"] for g in grid} == {3e-4, 1e-3, 3e-3, 1e-2}
    assert {g["label_smoothing"] for g in grid} == {0.1}
    assert {g["batch_size"] for g in grid} == {8, 32}


def test_sampling_stays_in_domain_and_is_seeded():
    s = load_space("default")
    a = [s.sample(random.Random(7)) for _ in range(3)]
    b = [s.sample(random.Random(7)) for _ in range(3)]
    assert a == b
    for cfg in a:
        assert all(s.param(k).contains(v) for k, v in cfg.items())


def test_clip_keeps_mutations_inside_the_domain():
    s = load_space("default")
    assert s.param("lr").clip(0.5) == pytest.approx(3e-2)
    assert s.param("lr").clip(1e-9) == pytest.approx(1e-4)
    assert s.param("batch_size").clip(20) == 16


@pytest.mark.parametrize(
    "change, needle",
    [
        ({"grid": []}, "give at least one grid point"),
        ({"domain": {"type": "uniform", "low": 1.0, "high": 0.0}}, "low=1.0 > high=0.0"),
        ({"grid": [2.0]}, "grid point 2.0 lies outside the domain"),
        ({"mutate": [0.5, 3.0]}, "mutation value 3.0 lies outside the domain"),
        ({"mutate": "shuffle"}, "mutate='shuffle'"),
        ({"domain": {"type": "normal"}}, "give {type: one of"),
        (
            {"domain": {"type": "loguniform", "low": 0.0, "high": 1.0}},
            "loguniform low=0.0: must be > 0",
        ),
        ({"domain": {"type": "choice", "values": []}}, "domain.values is empty"),
        ({"extra": 1}, "unknown key(s) ['extra']"),
    ],
)
def test_invalid_spaces_are_rejected(change, needle):
    with pytest.raises(ConfigError) as err:
        parse_space(space(**change), name="t")
    assert needle in str(err.value)
    assert "weight_decay" in str(err.value)  # names the parameter


def test_points_to_evaluate_are_full_points_inside_the_domain():
    ok = parse_space({**space(), "points_to_evaluate": [{"weight_decay": 0.2}]}, name="t")
    assert ok.points_to_evaluate == ({"weight_decay": 0.2},)
    with pytest.raises(
        ConfigError, match=r"points_to_evaluate\[0\]: weight_decay=3.0 lies outside"
    ):
        parse_space({**space(), "points_to_evaluate": [{"weight_decay": 3.0}]}, name="t")
    with pytest.raises(ConfigError, match="give a value for each of weight_decay"):
        parse_space({**space(), "points_to_evaluate": [{"lr": 0.1}]}, name="t")


def test_unknown_parameter_and_missing_space():
    s = parse_space(
        {
            "parameters": {
                "dropout": {"domain": {"type": "uniform", "low": 0, "high": 1}, "grid": [0.1]}
            }
        },
        name="t",
    )
    with pytest.raises(ConfigError, match="parameter 'dropout' is not a train setting"):
        s.validate_for(TRAIN_FIELDS)
    with pytest.raises(ConfigError, match="search.space='nope': no such space"):
        load_space("nope")
    with pytest.raises(ConfigError, match="non-empty `parameters:`"):
        parse_space({"parameters": {}})
