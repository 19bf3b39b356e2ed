"""Config resolution and validation: defaults -> YAML -> --set, errors naming field, value, fix."""

import pytest

from core.config import ConfigError, StudyConfig, resolve_config


def test_defaults_are_valid():
    cfg = resolve_config()
    assert cfg == StudyConfig()
    assert cfg.model.name == "tiny-bart" and cfg.data.dataset == "builtin"


def test_overrides_are_typed_and_layered(tmp_path):
    path = tmp_path / "study.yaml"
    path.write_text("train:\n  epochs: 5\n  lr: 0.01\ndata:\n  sortish: false\n")
    cfg = resolve_config(path, ["train.lr=3e-4", "data.n_train=100", "energy.region=westeurope"])
    assert cfg.train.epochs == 5  # from the file
    assert cfg.train.lr == pytest.approx(3e-4) and isinstance(cfg.train.lr, float)  # --set wins
    assert cfg.data.n_train == 100 and isinstance(cfg.data.n_train, int)
    assert cfg.data.sortish is False
    assert cfg.energy.region == "westeurope"


@pytest.mark.parametrize(
    "override, needle",
    [
        ("train.learning_rate=1e-3", "train.learning_rate: unknown key"),
        ("trian.lr=1", "trian: unknown key"),
        ("train.epochs=two", "train.epochs='two': expected int"),
        ("train.epochs=1.5", "train.epochs=1.5: expected int"),
        ("data.sortish=3", "data.sortish=3: expected bool"),
        ("train.lr=-1", "train.lr=-1.0: must be > 0"),
        ("train.precision=fp8", "train.precision='fp8': use one of fp32, fp16, bf16"),
        ("train.zero_stage=4", "train.zero_stage=4: use one of 0, 1, 2, 3"),
        (
            "train.offload_params=true",
            "train.offload_params=True: parameter offload needs train.zero_stage=3",
        ),
        ("data.max_source_tokens=0", "data.max_source_tokens=0: must be > 0"),
        ("train.freeze=layers:x", "train.freeze='layers:x'"),
        ("lr", "expected key=value"),
    ],
)
def test_bad_overrides_name_field_value_and_fix(override, needle):
    with pytest.raises(ConfigError) as err:
        resolve_config(overrides=[override])
    assert needle in str(err.value)


def test_unreadable_and_invalid_config_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read it"):
        resolve_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        resolve_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("3\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve_config(scalar)
