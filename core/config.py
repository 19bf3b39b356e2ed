"""A study's configuration: one frozen dataclass per concern, validated on load.

Resolution order: the embedded defaults (this file) -> a YAML file (`--config`) -> `--set key=value`
overrides. Unknown keys, wrong types and out-of-range values raise `ConfigError`, whose message
names the field, the value and the fix, before anything touches Ray.

    >>> cfg = resolve_config(overrides=["train.epochs=2", "data.n_train=64"])
    >>> cfg.train.epochs
    2
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A bad value in a study's configuration; the message says field, value and fix."""


# --------------------------------------------------------------------------------------------
# The concerns


@dataclass(frozen=True)
class ModelConfig:
    # A preset (`tiny-bart`, `tiny-t5`, ... built from a config, random init, local tokenizer),
    # a Hugging Face hub name (`facebook/bart-base`) or a local directory.
    name: str = "tiny-bart"
    # Vocabulary of the locally trained tokenizer (presets only).
    tokenizer_vocab_size: int = 1024
    # A hub model's branch, tag or commit ("" = its main branch); pins what a study fine-tuned.
    revision: str = ""

    def validate(self) -> None:
        _require(
            bool(self.name.strip()),
            "model.name",
            self.name,
            "name a preset, a hub model or a folder",
        )
        _require(
            self.tokenizer_vocab_size >= 256,
            "model.tokenizer_vocab_size",
            self.tokenizer_vocab_size,
            "use at least 256",
        )


@dataclass(frozen=True)
class DataConfig:
    # `builtin` (generated, see trainables/synthetic.py), a hub dataset (`cnn_dailymail`, `xsum`,
    # `samsum`, `reddit_tifu`), or a local file (.jsonl/.json/.csv/.parquet).
    dataset: str = "builtin"
    # Column names for local files or other hub datasets; empty = the dataset's known columns.
    source_column: str = ""
    target_column: str = ""
    # A hub dataset's configuration (cnn_dailymail: 3.0.0) and branch, tag or commit; "" = the
    # known dataset's configuration (or none) and the main branch.
    dataset_config: str = ""
    revision: str = ""
    train_split: str = "train"
    validation_split: str = "validation"
    # Held out: read once, when the study has ended, to score the selected model (0 = skip).
    test_split: str = "test"
    # The embedded default (see README): validation large enough that selection noise (about
    # +-0.02 ROUGE-L, 95 %) stays below the gaps between good and bad settings; test large enough
    # for a 95 % bootstrap interval of about +-0.01 ROUGE-L on the built-in task.
    n_train: int = 800
    n_validation: int = 160
    n_test: int = 1000
    max_source_tokens: int = 160
    max_target_tokens: int = 48
    # Batches of similar length (shuffled in chunks), to save padding.
    sortish: bool = True
    seed: int = 0

    def validate(self) -> None:
        _require(
            bool(self.dataset.strip()),
            "data.dataset",
            self.dataset,
            "use builtin, cnn_dailymail, xsum, samsum, reddit_tifu or a file path",
        )
        for key in ("n_train", "n_validation", "max_source_tokens", "max_target_tokens"):
            _require(getattr(self, key) > 0, f"data.{key}", getattr(self, key), "must be > 0")
        _require(
            self.n_test >= 0, "data.n_test", self.n_test, "must be >= 0 (0 = no test evaluation)"
        )
        splits = {
            "data.train_split": self.train_split,
            "data.validation_split": self.validation_split,
        }
        if self.n_test:
            splits["data.test_split"] = self.test_split
        for key, value in splits.items():
            others = [k for k, v in splits.items() if v == value and k != key]
            _require(
                not others,
                key,
                value,
                f"the same split as {', '.join(others)}; every split "
                "must be its own (held-out data must never be trained or selected on)",
            )


@dataclass(frozen=True)
class TrainConfig:
    """Everything a trial trains with. Search-space parameters override these per trial."""

    epochs: int = 2  # the epoch budget of one full trial (ASHA's max_t, PBT's horizon)
    evals_per_epoch: int = 2  # reports per epoch (each report = eval + checkpoint)
    lr: float = 1e-3
    weight_decay: float = 0.0
    batch_size: int = 16
    warmup_ratio: float = 0.05
    label_smoothing: float = 0.0
    optimizer: str = "adamw"  # adamw | adafactor
    lr_schedule: str = "linear"  # linear | cosine | constant
    grad_accum_steps: int = 1
    max_grad_norm: float = 1.0  # 0 disables clipping
    precision: str = "fp32"  # fp32 | fp16 | bf16
    zero_stage: int = 0  # 0 = plain DDP; 1, 2, 3 = DeepSpeed ZeRO
    offload_optimizer: bool = False
    offload_params: bool = False  # ZeRO-3 only
    freeze: str = "none"  # none | embeddings | encoder | layers:N
    # Recompute activations in the backward pass (less activation memory, ~1/3 more compute).
    gradient_checkpointing: bool = False
    early_stopping_patience: int = 0  # reports without improvement; 0 = off

    def validate(self) -> None:
        _require(self.epochs >= 1, "train.epochs", self.epochs, "must be >= 1")
        _require(
            self.evals_per_epoch >= 1, "train.evals_per_epoch", self.evals_per_epoch, "must be >= 1"
        )
        _require(self.lr > 0, "train.lr", self.lr, "must be > 0")
        _require(self.weight_decay >= 0, "train.weight_decay", self.weight_decay, "must be >= 0")
        _require(self.batch_size >= 1, "train.batch_size", self.batch_size, "must be >= 1")
        _require(
            0 <= self.warmup_ratio < 1, "train.warmup_ratio", self.warmup_ratio, "must be in [0, 1)"
        )
        _require(
            0 <= self.label_smoothing < 1,
            "train.label_smoothing",
            self.label_smoothing,
            "must be in [0, 1)",
        )
        _one_of("train.optimizer", self.optimizer, ("adamw", "adafactor"))
        _one_of("train.lr_schedule", self.lr_schedule, ("linear", "cosine", "constant"))
        _require(
            self.grad_accum_steps >= 1,
            "train.grad_accum_steps",
            self.grad_accum_steps,
            "must be >= 1",
        )
        _require(
            self.max_grad_norm >= 0,
            "train.max_grad_norm",
            self.max_grad_norm,
            "must be >= 0 (0 = off)",
        )
        _one_of("train.precision", self.precision, ("fp32", "fp16", "bf16"))
        _one_of("train.zero_stage", self.zero_stage, (0, 1, 2, 3))
        _require(
            not self.offload_optimizer or self.zero_stage > 0,
            "train.offload_optimizer",
            self.offload_optimizer,
            "optimizer offload needs train.zero_stage=1, 2 or 3",
        )
        _require(
            not self.offload_params or self.zero_stage == 3,
            "train.offload_params",
            self.offload_params,
            "parameter offload needs train.zero_stage=3",
        )
        valid_freeze = self.freeze in ("none", "embeddings", "encoder") or (
            self.freeze.startswith("layers:") and self.freeze[7:].isdigit()
        )
        _require(
            valid_freeze, "train.freeze", self.freeze, "use none, embeddings, encoder or layers:N"
        )
        _require(
            self.early_stopping_patience >= 0,
            "train.early_stopping_patience",
            self.early_stopping_patience,
            "must be >= 0 (0 = off)",
        )


@dataclass(frozen=True)
class EvalConfig:
    num_beams: int = 1
    max_new_tokens: int = 48
    length_penalty: float = 1.0
    min_new_tokens: int = 0  # 0 = no minimum
    no_repeat_ngram_size: int = 0  # 0 = off
    batch_size: int = 32
    # Score every trial's final model on data.n_test examples of the test split, outside its
    # metered window (the experiments study: each variation's test ROUGE). Off for tuning
    # strategies, which score only the selected model. A trial a scheduler stops is not scored.
    test_every_trial: bool = False

    def validate(self) -> None:
        _require(self.num_beams >= 1, "eval.num_beams", self.num_beams, "must be >= 1")
        _require(
            self.max_new_tokens >= 1, "eval.max_new_tokens", self.max_new_tokens, "must be >= 1"
        )
        _require(self.batch_size >= 1, "eval.batch_size", self.batch_size, "must be >= 1")
        _require(
            0 <= self.min_new_tokens <= self.max_new_tokens,
            "eval.min_new_tokens",
            self.min_new_tokens,
            f"must be in [0, eval.max_new_tokens={self.max_new_tokens}]",
        )
        _require(
            self.no_repeat_ngram_size >= 0,
            "eval.no_repeat_ngram_size",
            self.no_repeat_ngram_size,
            "must be >= 0 (0 = off)",
        )


@dataclass(frozen=True)
class ResourcesConfig:
    workers_per_trial: int = 1
    # One CPU: two trials at a time on a 2-core machine (each worker uses one torch thread;
    # faster there than four half-CPU trials, which contend). On a GPU cluster give several CPUs
    # and a GPU per worker.
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    # Trials that run at once; 0 = as many as the cluster's resources hold.
    max_concurrent_trials: int = 0
    # Torch intra-op threads per worker; 0 = leave torch's default.
    torch_threads: int = 1
    # CPUs given to a local Ray (`--address local`); 0 = all of this machine's.
    local_cpus: int = 0

    def validate(self) -> None:
        _require(
            self.workers_per_trial >= 1,
            "resources.workers_per_trial",
            self.workers_per_trial,
            "must be >= 1",
        )
        _require(
            self.cpus_per_worker > 0,
            "resources.cpus_per_worker",
            self.cpus_per_worker,
            "must be > 0",
        )
        _require(
            self.gpus_per_worker >= 0 and float(self.gpus_per_worker).is_integer(),
            "resources.gpus_per_worker",
            self.gpus_per_worker,
            "must be 0 or a whole number of GPUs: NVML counts energy per physical GPU, so "
            "workers sharing one would each read its whole counter (counted twice); give "
            "each worker whole GPUs, or a MIG slice through CUDA_VISIBLE_DEVICES",
        )
        _require(
            self.max_concurrent_trials >= 0,
            "resources.max_concurrent_trials",
            self.max_concurrent_trials,
            "must be >= 0 (0 = as many as fit)",
        )
        _require(
            self.torch_threads >= 0, "resources.torch_threads", self.torch_threads, "must be >= 0"
        )
        _require(
            self.local_cpus >= 0, "resources.local_cpus", self.local_cpus, "must be >= 0 (0 = all)"
        )


@dataclass(frozen=True)
class SearchConfig:
    # A space in search_spaces/ by name (`default`) or a YAML file path.
    space: str = "default"
    # The experiments study's plan: `experiments` (search_spaces/experiments.yaml) or a path.
    experiments: str = "experiments"
    metric: str = "rougeL"
    mode: str = "max"
    asha_grace_period: int = 1  # reports
    asha_reduction_factor: int = 3
    pbt_perturbation_interval: int = 1  # reports
    pbt_population: int = 0  # 0 = budget / epochs (trial-epochs budgets) or the grid's points
    pbt_quantile_fraction: float = 0.25
    pbt_resample_probability: float = 0.25
    # Optuna's random trials before its model proposes (TPE, GP); 0 = Optuna's own 10
    sampler_startup_trials: int = 0

    def validate(self) -> None:
        _one_of("search.metric", self.metric, REPORTED_METRICS)
        _one_of("search.mode", self.mode, ("max", "min"))
        _require(
            self.asha_grace_period >= 1,
            "search.asha_grace_period",
            self.asha_grace_period,
            "must be >= 1",
        )
        _require(
            self.asha_reduction_factor >= 2,
            "search.asha_reduction_factor",
            self.asha_reduction_factor,
            "must be >= 2",
        )
        _require(
            self.pbt_perturbation_interval >= 1,
            "search.pbt_perturbation_interval",
            self.pbt_perturbation_interval,
            "must be >= 1",
        )
        _require(
            self.pbt_population >= 0,
            "search.pbt_population",
            self.pbt_population,
            "must be >= 2 (or 0 = from the budget)",
        )
        _require(
            0 < self.pbt_quantile_fraction <= 0.5,
            "search.pbt_quantile_fraction",
            self.pbt_quantile_fraction,
            "must be in (0, 0.5]",
        )
        _require(
            0 <= self.pbt_resample_probability <= 1,
            "search.pbt_resample_probability",
            self.pbt_resample_probability,
            "must be in [0, 1]",
        )
        _require(
            self.sampler_startup_trials >= 0,
            "search.sampler_startup_trials",
            self.sampler_startup_trials,
            "must be >= 1 (or 0 = Optuna's own 10)",
        )


BUDGET_UNITS = ("trial_epochs", "device_hours", "energy_kwh", "co2_kg", "cost_usd")
# What a trial reports that a strategy can select on (core.schema's quality columns)
REPORTED_METRICS = ("rougeL", "rouge1", "rouge2", "rougeLsum", "val_loss", "train_loss")
NAME_MAX = 100  # a study's name becomes a folder name


@dataclass(frozen=True)
class BudgetConfig:
    """The study budget: set one of these (its key names the unit); none set = trial_epochs of
    one pass over the grid. Every strategy spends it: samplers start trials until it is spent,
    running trials stop when it runs out (study.budget)."""

    trial_epochs: float = 0  # epochs trained, summed over trials
    device_hours: float = 0  # worker-hours (GPU-hours on a GPU cluster), summed over trials
    energy_kwh: float = 0  # energy x PUE (the facility's draw)
    co2_kg: float = 0
    cost_usd: float = 0  # billed: every node's VM for the time the study held it
    # What energy, CO2 and dollars count: the whole cluster from study start (the cluster
    # meter: idle, start-up and drivers included), or only the trials' own meters.
    scope: str = "cluster"

    def validate(self) -> None:
        for key in BUDGET_UNITS:
            _require(
                getattr(self, key) >= 0 and math.isfinite(getattr(self, key)),
                f"budget.{key}",
                getattr(self, key),
                "must be a finite number >= 0 (0 = not this unit)",
            )
        set_keys = [k for k in BUDGET_UNITS if getattr(self, k) > 0]
        _require(
            len(set_keys) <= 1,
            f"budget.{set_keys[-1] if set_keys else ''}",
            getattr(self, set_keys[-1]) if set_keys else 0,
            f"set one budget, not {len(set_keys)} ({', '.join('budget.' + k for k in set_keys)}); "
            "its key names the unit every strategy spends",
        )
        _one_of("budget.scope", self.scope, ("cluster", "trials"))

    @property
    def unit(self) -> str:
        """The unit of the study budget (trial_epochs when none is set)."""
        return next((k for k in BUDGET_UNITS if getattr(self, k) > 0), "trial_epochs")

    @property
    def amount(self) -> float:
        """The budget in its unit; 0 = the default (one pass over the grid, in trial-epochs)."""
        return getattr(self, self.unit)


@dataclass(frozen=True)
class EnergyConfig:
    # Azure region whose grid intensity converts energy to CO2 (core/data/grid_intensity.csv).
    region: str = "eastus"
    # Fixed intensity in gCO2e/kWh; 0 = use the region's row.
    intensity_g_per_kwh: float = 0
    # Hourly intensity: an Electricity Maps CSV export (hourly); each report's energy is converted
    # at the intensity of its hour. Empty = the fixed figure above or the region's row.
    intensity_csv: str = ""
    # Which of the export's columns: "lca" (life-cycle, Electricity Maps' headline) or "direct".
    intensity_basis: str = "lca"
    # Power usage effectiveness of the datacenter; 0 = the table's default for the provider.
    pue: float = 0
    # CPU package power used by the estimate when RAPL is unreadable; 0 = CodeCarbon's table/guess.
    cpu_tdp_w: float = 0
    # VM size of the worker nodes (cost, and the CPU estimate's host share); empty = a local
    # machine (no price: cost not applicable).
    vm_size: str = ""
    # VM size of the head node (it runs the trial drivers and the study); empty = energy.vm_size.
    head_vm_size: str = ""
    # USD per hour of one energy.vm_size VM, overriding the price table (0 = the table's price).
    price_usd_per_hour: float = 0
    spot: bool = False
    # A market-based factor (gCO2e/kWh: your supplier's or certificates' figure) for a second,
    # market-based CO2 figure beside the location-based one; 0 = location-based only.
    market_intensity_g_per_kwh: float = -1

    def validate(self) -> None:
        _require(
            self.price_usd_per_hour >= 0,
            "energy.price_usd_per_hour",
            self.price_usd_per_hour,
            "must be >= 0 (0 = the price table's)",
        )
        _require(
            self.market_intensity_g_per_kwh == -1 or self.market_intensity_g_per_kwh >= 0,
            "energy.market_intensity_g_per_kwh",
            self.market_intensity_g_per_kwh,
            "must be >= 0 gCO2e/kWh (a market-based factor), or unset",
        )
        _require(
            not (self.price_usd_per_hour and not self.vm_size),
            "energy.price_usd_per_hour",
            self.price_usd_per_hour,
            "needs energy.vm_size (the VM size it prices)",
        )
        _require(
            self.intensity_g_per_kwh >= 0,
            "energy.intensity_g_per_kwh",
            self.intensity_g_per_kwh,
            "must be >= 0 (0 = from the region)",
        )
        _require(
            self.intensity_basis in ("lca", "direct"),
            "energy.intensity_basis",
            self.intensity_basis,
            "use 'lca' or 'direct'",
        )
        _require(
            not (self.intensity_csv and self.intensity_g_per_kwh),
            "energy.intensity_csv",
            self.intensity_csv,
            "set either it or energy.intensity_g_per_kwh, not both",
        )
        _require(
            self.pue == 0 or self.pue >= 1, "energy.pue", self.pue, "must be >= 1 (or 0 = default)"
        )
        _require(self.cpu_tdp_w >= 0, "energy.cpu_tdp_w", self.cpu_tdp_w, "must be >= 0")


@dataclass(frozen=True)
class StudyConfig:
    name: str = ""  # empty = `<strategy>-<model>-<dataset>-seed<seed>`
    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    search: SearchConfig = field(default_factory=SearchConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)

    def validate(self) -> None:
        _require(self.seed >= 0, "seed", self.seed, "must be >= 0 (--seed N)")
        _require(
            len(self.name) <= NAME_MAX,
            "name",
            self.name[:40] + "...",
            f"use at most {NAME_MAX} characters",
        )
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value):
                value.validate()

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Building a config from defaults, a file and overrides


def resolve_config(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: dict[str, Any] | None = None,
) -> StudyConfig:
    """Defaults -> `base` (dotted settings: an experiment plan's baseline) -> YAML file ->
    `key=value` overrides, then validate."""
    data: dict[str, Any] = {}
    for key, value in (base or {}).items():
        _set_dotted(data, str(key), value)
    if path is not None:
        _merge(data, load_yaml_file(path, what="--config"))
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--set {item!r}: expected key=value, for example --set train.lr=3e-4"
            )
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as e:
            raise ConfigError(
                f"--set {item!r}: cannot read the value ({str(e).splitlines()[0]}); "
                "quote it or write it as YAML (a number, true/false, a word)"
            ) from e
        _set_dotted(data, key.strip(), value)
    cfg = from_dict(StudyConfig, data)
    cfg.validate()
    return cfg


def load_yaml_file(path: str | Path, what: str) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"{what} {str(p)!r}: cannot read it ({e.strerror}); give a readable YAML file"
        ) from e
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{what} {str(p)!r}: not UTF-8 text (byte {e.start}); save it as UTF-8 YAML"
        ) from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {str(p)!r}: not valid YAML ({e}); fix the syntax") from e
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {str(p)!r}: the top level must be a mapping of sections, got "
            f"{type(data).__name__}"
        )
    return data


def from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    """Build a (nested) frozen dataclass from plain data, rejecting unknown keys and wrong types."""
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'}={data!r}: expected a mapping of keys")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(f"{prefix}{key}: unknown key; known keys here: {known}")
        kwargs[key] = _coerce(hints[key], value, f"{prefix}{key}")
    return cls(**kwargs)


def _coerce(tp: Any, value: Any, name: str) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # a searcher's numpy scalar (BOHB's ConfigSpace gives np.int64)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, prefix=name + ".")
    if isinstance(tp, types.UnionType) or typing.get_origin(tp) is typing.Union:
        tp = next(t for t in typing.get_args(tp) if t is not type(None))
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads `3e-4` (no dot) as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is not None:
            if not math.isfinite(number):
                raise ConfigError(f"{name}={value!r}: expected a finite number")
            return number
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    else:  # pragma: no cover - a field type this module does not know
        raise TypeError(f"unsupported config type {tp} for {name}")
    raise ConfigError(f"{name}={value!r}: expected {tp.__name__}, got {type(value).__name__}")


def explicit_keys(
    path: str | Path | None = None,
    overrides: list[str] | tuple[str, ...] = (),
    base: dict[str, Any] | None = None,
) -> set[str]:
    """The dotted keys a user set (in `base`, the file or the overrides): what presets must not
    change."""
    keys = {str(k) for k in (base or {})}
    keys |= {item.partition("=")[0].strip() for item in overrides}

    def walk(data: dict[str, Any], prefix: str) -> None:
        for key, value in data.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            else:
                keys.add(f"{prefix}{key}")

    if path is not None:
        walk(load_yaml_file(path, what="--config"), "")
    return keys


def apply_settings(cfg: StudyConfig, settings: dict[str, Any], where: str) -> StudyConfig:
    """`cfg` with dotted `settings` (`{"train.zero_stage": 2}`) applied and validated; an error
    names `where` the settings came from (`experiments.variations[zero2]`)."""
    data = cfg.to_dict()
    try:
        for key, value in settings.items():
            _set_dotted(data, str(key), value)
        new = from_dict(StudyConfig, data)
        new.validate()
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from e
    return new


def trial_train_config(cfg: StudyConfig, params: dict[str, Any]) -> TrainConfig:
    """The study's train settings with a trial's hyperparameters applied, validated (the same
    check every search-space value gets before Ray starts)."""
    train = from_dict(TrainConfig, {**dataclasses.asdict(cfg.train), **params}, prefix="train.")
    train.validate()
    return train


def _merge(into: dict[str, Any], data: dict[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {part} is a value, not a section")
    node[leaf] = value


def _require(ok: bool, name: str, value: Any, fix: str) -> None:
    if not ok:
        raise ConfigError(f"{name}={value!r}: {fix}")


def _one_of(name: str, value: Any, allowed: tuple) -> None:
    _require(value in allowed, name, value, "use one of " + ", ".join(map(str, allowed)))
