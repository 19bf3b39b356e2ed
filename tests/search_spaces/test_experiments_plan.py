"""The experiments plan as data: the shipped plan, its validation, what is skipped where. No Ray."""

from pathlib import Path

import pytest

from core.config import ConfigError, resolve_config
from core.schema import BASELINE_VARIATION
from search_spaces.experiments import load_plan

PLAN_KNOBS = {  # the study plan's list, each knob as the shipped plan turns it
    "zero1": {"train.zero_stage": 1},
    "zero2": {"train.zero_stage": 2},
    "zero3": {"train.zero_stage": 3},
    "zero2-offload": {"train.zero_stage": 2, "train.offload_optimizer": True},
    "zero3-offload": {
        "train.zero_stage": 3,
        "train.offload_optimizer": True,
        "train.offload_params": True,
    },
    "fp16": {"train.precision": "fp16"},
    "bf16": {"train.precision": "bf16"},
    "bigbird-pegasus": {"model.name": "tiny-bigbird-pegasus"},
    "freeze-embeddings": {"train.freeze": "embeddings"},
    "freeze-encoder": {"train.freeze": "encoder"},
    "sortish": {"data.sortish": True},
    "truncate-96": {"data.max_source_tokens": 96},
    "truncate-64": {"data.max_source_tokens": 64},
    "early-stopping": {"train.early_stopping_patience": 1},
    "gradient-checkpointing": {"train.gradient_checkpointing": True},
}


def test_the_shipped_plan_covers_the_study_plan_and_every_variation_resolves():
    plan = load_plan("experiments")
    assert plan.seeds == 3 and plan.variations[0].name == BASELINE_VARIATION
    for name, knob in PLAN_KNOBS.items():
        assert plan.variation(name).settings == knob
    assert plan.variation("bigbird-pegasus").against == "pegasus"  # sparse vs its dense model
    cfg = resolve_config(base=plan.baseline)
    assert cfg.eval.test_every_trial and not cfg.data.sortish  # the plain recipe
    plan.check(cfg)
    zero3 = plan.trial_config(cfg, "zero3-offload")
    assert (zero3.train.zero_stage, zero3.train.offload_params, zero3.train.lr) == (3, True, 3e-3)
    expects = {e.phrase for e in plan.variation("zero2-offload").expect}
    assert expects == {"reduces gpu memory", "reduces speed"}


def test_gpu_only_variations_are_skipped_with_the_reason_on_a_cpu_cluster():
    plan = load_plan("experiments")
    skipped = plan.skipped(has_gpu=False)
    assert list(skipped) == ["fp16"] and "emulated" in skipped["fp16"]
    assert "fp16" not in plan.runnable(has_gpu=False)
    assert "fp16" in plan.runnable(has_gpu=True) and not plan.skipped(has_gpu=True)


def test_a_comparison_with_a_skipped_variation_is_skipped_too(tmp_path: Path):
    path = tmp_path / "plan.yaml"
    path.write_text(
        "variations:\n"
        "  - {name: fp16, set: {train.precision: fp16}, needs_gpu: tensor cores}\n"
        "  - {name: fp16-frozen, set: {train.freeze: encoder}, against: fp16}\n"
    )
    assert load_plan(str(path)).skipped(has_gpu=False) == {
        "fp16": "needs a GPU: tensor cores",
        "fp16-frozen": "compared with 'fp16', which is skipped",
    }


@pytest.mark.parametrize(
    "body, message",
    [
        ("seeds: 0\nvariations: [{name: a}]\n", "seeds=0: must be a whole number >= 1"),
        ("variations: [{name: a, set: {train.nope: 1}}]\n", "train.nope: unknown key"),
        ("variations: [{name: a, against: b}]\n", "against='b': name another variation"),
        ("variations: [{name: a}, {name: a}]\n", "variation name 'a' twice"),
        (
            "variations: [{name: a, expect: [{effect: joy, direction: reduces}]}]\n",
            "effect='joy': use one of memory",
        ),
        (
            "variations: [{name: a, expect: [{effect: speed, direction: doubles}]}]\n",
            "direction='doubles': use one of reduces, increases, affects",
        ),
        ("variations: [{name: baseline}]\n", "'baseline' is the plan's own baseline"),
        ("variation: []\n", "unknown key 'variation'"),
        ("seeds: 2\n", "no variations"),
    ],
)
def test_a_bad_plan_is_one_line_naming_the_field(tmp_path: Path, body: str, message: str):
    path = tmp_path / "plan.yaml"
    path.write_text(body)
    with pytest.raises(ConfigError) as caught:
        plan = load_plan(str(path))
        plan.check(resolve_config())
    assert message in str(caught.value) and "\n" not in str(caught.value)


def test_a_missing_plan_names_the_setting():
    with pytest.raises(ConfigError, match="search.experiments='nope.yaml': no such plan"):
        load_plan("nope.yaml")
