"""Run one hyperparameter study: `python -m study.run <strategy> [options]`.

Resolves and validates everything first (config, search space, strategy numbers, model, data,
resources, storage): bad input ends with one line naming the field, the value and the fix, exit
status 2, before Ray starts. Then starts (or joins) Ray, runs Tune with a progress table, streams
results to parquet and ends with a short summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import secrets
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import schema, storage
from core.config import (
    NAME_MAX,
    ConfigError,
    StudyConfig,
    TrainConfig,
    apply_settings,
    explicit_keys,
    resolve_config,
    trial_train_config,
)
from core.measurement import measured_sum
from core.metadata import (
    MetadataError,
    StudyMetadata,
    parse_metadata,
    read_metadata,
    write_metadata,
)
from core.storage import Mirror, read_text
from core.strategies import CATALOGUE
from search_spaces import SearchSpace, load_space
from search_spaces.experiments import ExperimentPlan, load_plan
from study.strategies import STRATEGIES, StrategyNumbers, derive_numbers

if TYPE_CHECKING:
    from collections.abc import Callable

    import pandas as pd

    from core.footprint import CarbonIntensity
    from study.budget import Budget, BudgetStopper, ClusterSpend
    from study.checkpoints import CheckpointJanitor
    from study.cluster_meter import ClusterMeter
    from study.mlflow_runs import MlflowStudy
    from study.results import ResultsWriter
    from study.warm_worker import WarmWorkerStarter
    from trainables.driver import StudyContext

DEFAULT_STORAGE = "greentune_results"
# Ray Train polls its workers for reports at this interval (default 2 s): every report and the end
# of every segment waits for a poll, so a shorter interval trims each segment's dead time. A worker
# group must start within Train's timeout (default 60 s); several trials starting at once on a
# small machine (each worker process imports torch) can take longer than that.
TRAIN_ENV = {
    "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.5",
    "RAY_TRAIN_WORKER_GROUP_START_TIMEOUT_S": "300",
}
DRIVER_RESOURCE = "trial_driver"  # only the head node offers it: trial drivers run there


def strategies_help() -> str:
    """The strategies as --help lists them (core.strategies.CATALOGUE)."""
    width = max(len(name) for name in CATALOGUE)
    lines = []
    for s in CATALOGUE.values():
        extra = " [pip install 'greentune[strategies]']" if s.packages else ""
        lines.append(f"  {s.name:<{width}}  {s.title}{extra}")
    return "strategies:\n" + "\n".join(lines) + "\n"


EPILOG = """
examples:
  python -m study.run pbt                          # default: local Ray, built-in data, tiny-bart
  python -m study.run asha --set train.epochs=6 --set budget.trial_epochs=36
  python -m study.run grid --config my_study.yaml --name grid-xsum
  python -m study.run pbt --address auto --storage abfss://results@acct.dfs.core.windows.net/studies
  python -m study.run pbt --name my-study --resume  # finish an interrupted study
  python -m study.run experiments                  # the efficiency experiments (experiments.yaml)
  python -m study.run compare --strategies asha,hyperband,bohb,pb2,optuna,optuna-asha,mo-asha
  python -m study.run infer greentune_results/<study>  # serve its best_model/: PyTorch, ONNX

Settings (--set section.key=value) and their defaults live in core/config.py; the search space
in search_spaces/default.yaml.
Results: <storage>/<name>/{metadata.json,reports.parquet,trials.parquet}.
"""


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m study.run",
        description=__doc__.split("\n\n")[0] + "\n\n" + __doc__.split("\n\n")[1],
        epilog=strategies_help() + EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "strategy",
        choices=(*STRATEGIES, "compare", "experiments"),
        metavar="strategy",
        help="a search strategy (listed below); `compare`: run --strategies x --seeds under "
        "the same budget, then write the analysis report; or `experiments`: the efficiency "
        "experiments of search_spaces/experiments.yaml (one knob at a time against a "
        "baseline, over seeds); after a study, `infer <study folder>` serves its best_model/ "
        "(python -m study.run infer --help)",
    )
    p.add_argument(
        "--strategies",
        default="pbt,asha,grid",
        help="with compare: which strategies (comma-separated; default pbt,asha,grid)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="with compare: seeds per strategy, from --seed (default 1)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="YAML file with settings (sections: model, data, "
        "train, eval, resources, search, budget, energy)",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, typed (e.g. --set train.lr=3e-4 --set data.n_train=500); "
        "repeatable; unknown keys are rejected",
    )
    p.add_argument("--name", help="study name (default: <strategy>-<model>-<dataset>-seed<seed>)")
    p.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        metavar="PATH_OR_URI",
        help=f"where study folders go (default: ./{DEFAULT_STORAGE}); shared storage "
        "(abfss://, NFS path) on a multi-node cluster",
    )
    p.add_argument(
        "--address",
        default="local",
        help="'local' starts a Ray instance for this study "
        "(default); 'auto' or HOST:PORT joins a running Ray cluster",
    )
    p.add_argument(
        "--resume", action="store_true", help="continue an interrupted study of this name"
    )
    p.add_argument(
        "--seed", type=int, help="study seed (sampling, data order, model init); default 0"
    )
    p.add_argument(
        "--mlflow",
        metavar="TRACKING_URI",
        help="also log every trial's parameters and "
        "metrics (energy included) to MLflow (a server URL, an AzureML workspace's MLflow "
        "URI, or sqlite:///mlflow.db); needs `pip install mlflow`",
    )
    p.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print the plan, then exit without starting Ray",
    )
    p.add_argument(
        "--verbose",
        action="store_true",
        help="keep Ray Train's own per-report log lines (each checkpoint's path, ...)",
    )
    p.add_argument(
        "--print-config",
        action="store_true",
        help="validate, print the resolved config as YAML (a file --config reads back), exit",
    )
    return p


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything decided before Ray starts."""

    strategy: str
    config: StudyConfig
    numbers: StrategyNumbers
    space: SearchSpace  # loaded and validated once, here
    name: str
    storage: str
    study_dir: Path  # parquet + metadata; for a remote URI a local folder on the head node
    resume: bool
    address: str
    mlflow_uri: str | None = None
    footprint: dict[str, Any] = dataclasses.field(default_factory=dict)  # carbon and price inputs
    verbose: bool = False  # Ray Train's own per-report log lines on the console
    experiments: ExperimentPlan | None = None  # the experiments study's plan
    presets: dict[str, str] = dataclasses.field(default_factory=dict)  # key -> where it came from

    @property
    def remote_dir(self) -> str | None:
        """The study's folder on a URI storage (Tune's state, checkpoints, a copy of the results)"""
        return f"{self.storage}/{self.name}" if "://" in self.storage else None

    @property
    def study_path(self) -> str:
        """Where Tune keeps the study (its state, the trial folders): storage/name."""
        return f"{self.storage}/{self.name}"

    @property
    def mirror(self) -> Mirror:
        return Mirror(self.study_dir, self.remote_dir)


def plan_study(args: argparse.Namespace) -> Plan:
    """Resolve and validate everything; raises ConfigError on bad input. No Ray, no writes.

    Warnings raised while checking (a data file without a split column, say) are printed only
    once every check has passed, so bad input ends with its one error line alone."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plan = _plan_study(args)
    for w in caught:
        if issubclass(w.category, (UserWarning, RuntimeWarning)):
            print(f"warning: {w.message}", file=sys.stderr)
    return plan


def _plan_study(args: argparse.Namespace) -> Plan:
    overrides = list(args.overrides)
    if args.seed is not None:
        overrides.append(f"seed={args.seed}")
    cfg = resolve_config(args.config, overrides)
    experiments = None
    if args.strategy == "experiments":  # the plan's baseline under the user's file and --set
        experiments = load_plan(cfg.search.experiments)
        cfg = resolve_config(args.config, overrides, base=experiments.baseline)
    cfg, presets, experiments = faithful_presets(cfg, args, overrides, experiments)
    space = load_space(cfg.search.space)
    space.validate_for({f.name for f in dataclasses.fields(TrainConfig)})
    # every value a trial may get passes the same validation as train.* (not inside a trial)
    space.validate_values(lambda name, value: trial_train_config(cfg, {name: value}))
    numbers = derive_numbers(args.strategy, space, cfg)
    if experiments is not None:  # every variation's model and data, before Ray
        for variation in numbers.experiment_variations or ():
            check_inputs(experiments.trial_config(cfg, variation))
    else:
        check_inputs(cfg)
    footprint = resolve_footprint(cfg)
    name = args.name or cfg.name or default_name(args.strategy, cfg)
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or name.startswith(
        "."
    ):
        raise ConfigError(f"--name {name[:60]!r}: use letters, digits, '-', '_' and '.' only")
    if len(name) > NAME_MAX:
        raise ConfigError(
            f"--name {name[:40]!r}...: {len(name)} characters; use at most {NAME_MAX}"
        )
    if footprint.get("retired"):
        print(
            f"note: energy.vm_size={cfg.energy.vm_size!r} is {footprint['retired']}: priced "
            "from the "
            "table, but Azure may no longer offer it",
            file=sys.stderr,
        )
    storage, study_dir = resolve_storage(
        args.storage, name, args.resume, create=not (args.dry_run or args.print_config)
    )
    if args.resume:
        check_resume_matches(read_study_metadata(study_dir, storage, name), args.strategy, cfg)
    if args.address != "local" and "://" not in storage:
        print(
            f"note: storage {storage} is a local path; a multi-node study needs it shared (NFS) "
            f"or a URI (abfss://...)",
            file=sys.stderr,
        )
    if args.mlflow:
        check_mlflow_uri(args.mlflow)
    plan = Plan(
        args.strategy,
        cfg,
        numbers,
        space,
        name,
        storage,
        study_dir,
        args.resume,
        args.address,
        args.mlflow,
        footprint,
        verbose=args.verbose,
        experiments=experiments,
        presets=presets,
    )
    if args.address == "local":  # the machine's size is known now: check it before Ray
        check_resources(cfg, local_resources(cfg))
    return plan


MLFLOW_SCHEMES = (
    "http",
    "https",
    "file",
    "sqlite",
    "postgresql",
    "mysql",
    "mssql",
    "databricks",
    "azureml",
    "uc",
)


def check_mlflow_uri(uri: str) -> None:
    """MLflow installed, and a tracking URI of a kind it opens (a server, a database, a folder)."""
    try:
        import mlflow  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"--mlflow {uri!r}: mlflow is not installed; pip install mlflow") from e
    scheme = uri.split("://", 1)[0].split("+", 1)[0].lower() if "://" in uri else "file"
    if scheme not in MLFLOW_SCHEMES:
        raise ConfigError(
            f"--mlflow {uri!r}: MLflow cannot track to a {scheme!r} URI; use a server "
            "(http(s)://...), sqlite:///mlflow.db, a folder, or an AzureML workspace URI"
        )


def read_study_metadata(study_dir: Path, storage: str, name: str) -> StudyMetadata:
    """A study's metadata.json: the head's copy, or (a URI study resumed on a new head) the
    URI's. Reads only."""
    local = study_dir / schema.METADATA_FILE
    text = (
        local.read_text()
        if local.exists()
        else read_text(f"{storage}/{name}/{schema.METADATA_FILE}")
    )
    if text is None:
        raise ConfigError(f"--resume: {name!r} has no {schema.METADATA_FILE}; drop --resume")
    try:
        return parse_metadata(text, f"--resume: {name}/{schema.METADATA_FILE}")
    except MetadataError as e:
        raise ConfigError(f"{e}; start a new study with another --name") from e


def check_resume_matches(meta: StudyMetadata, strategy: str, cfg: StudyConfig) -> None:
    """--resume continues the same study: its strategy and every setting as metadata.json has
    them (only the study's name may be implied differently)."""
    if meta.strategy != strategy:
        raise ConfigError(
            f"--resume: {meta.study} is a {meta.strategy} study, not {strategy}; "
            f"resume it as {meta.strategy}, or start a new study with another --name"
        )
    saved, given = meta.config, cfg.to_dict()
    for section, values in given.items():
        if section == "name":
            continue
        old = saved.get(section)
        if isinstance(values, dict) and isinstance(old, dict):
            for key, value in values.items():
                if key in old and old[key] != value:
                    raise ConfigError(
                        f"--resume: {section}.{key}={value!r}, but the study ran with "
                        f"{old[key]!r}; resume with the same settings (drop the --set), "
                        "or start a new study with another --name"
                    )
        elif old is not None and old != values:
            raise ConfigError(
                f"--resume: {section}={values!r}, but the study ran with {old!r}; "
                "resume with the same settings"
            )


def resolve_footprint(cfg: StudyConfig) -> dict[str, Any]:
    """Carbon and price inputs from the dated tables (unknown region or VM size: exit 2)."""
    from core.footprint import FootprintError, footprint_inputs

    try:
        return footprint_inputs(cfg.energy, time.time())
    except FootprintError as e:
        raise ConfigError(str(e)) from e


def default_name(strategy: str, cfg: StudyConfig) -> str:
    dataset = Path(cfg.data.dataset).stem if "." in cfg.data.dataset else cfg.data.dataset
    return f"{strategy}-{cfg.model.name.replace('/', '_')}-{dataset}-seed{cfg.seed}"


def check_inputs(cfg: StudyConfig) -> None:
    """Model, data and resources checks that need no Ray (and no network for the defaults)."""
    from trainables.datasets import check_split_exists, load_split
    from trainables.models import check_model_name

    positions = check_model_name(cfg.model)
    for key, value in (
        ("data.max_source_tokens", cfg.data.max_source_tokens),
        ("data.max_target_tokens", cfg.data.max_target_tokens),
        ("eval.max_new_tokens", cfg.eval.max_new_tokens),
    ):
        if value > positions:
            raise ConfigError(
                f"{key}={value}: longer than {cfg.model.name}'s {positions} positions; "
                f"use at most {positions}"
            )
    train = cfg.train
    if train.precision == "fp16" and cfg.resources.gpus_per_worker == 0:
        raise ConfigError(
            "train.precision='fp16': needs a GPU (resources.gpus_per_worker > 0); "
            "use bf16 or fp32 on CPU"
        )
    if train.zero_stage:
        from trainables.session import quiet_worker_logs

        quiet_worker_logs()  # DeepSpeed's "Setting accelerator to CPU" on a CPU machine
        try:
            import deepspeed  # noqa: F401
        except Exception as e:  # noqa: BLE001 - any import failure means ZeRO cannot start
            raise ConfigError(
                f"train.zero_stage={train.zero_stage}: DeepSpeed cannot start here "
                f"({type(e).__name__}: {e}); pip install deepspeed, or use zero_stage=0"
            ) from e
    for split, n in (
        (cfg.data.train_split, cfg.data.n_train),
        (cfg.data.validation_split, cfg.data.n_validation),
    ):
        load_split(cfg.data, split, min(n, 8), cfg.data.seed)
    if cfg.data.n_test:  # held out: its existence is checked, its examples are not read
        check_split_exists(cfg.data, cfg.data.test_split)


def faithful_presets(
    cfg: StudyConfig,
    args: argparse.Namespace,
    overrides: list[str],
    experiments: ExperimentPlan | None,
) -> tuple[StudyConfig, dict[str, str], ExperimentPlan | None]:
    """Decoding and lengths the user left unset, from the checkpoint's own generation config or
    the published recipe for the model family on the dataset (core.presets); a dataset
    published as one split gets its known cut. An experiments variation that swaps the model or
    the dataset gets its own family's presets (added to its settings, so the plan in
    metadata.json shows them)."""
    from core.presets import PRESET_KEYS, resolve_presets
    from trainables.datasets import dataset_spec
    from trainables.models import check_model_name, checkpoint_decoding, model_family

    explicit = explicit_keys(args.config, overrides, experiments.baseline if experiments else None)
    split_keys = ("data.train_split", "data.validation_split", "data.test_split")

    def resolve(c: StudyConfig, keys: set[str]) -> tuple[StudyConfig, dict[str, str]]:
        check_model_name(c.model)  # an unreachable or unknown model: its one-line error first
        spec = dataset_spec(c.data.dataset)
        if spec is not None and spec.splits:  # published as one split: the known 80/10/10 cut
            cut = {k: v for k, v in zip(split_keys, spec.splits) if k not in keys}
            c = apply_settings(c, cut, f"data.dataset={c.data.dataset!r}'s splits")
        return resolve_presets(c, keys, model_family(c.model), checkpoint_decoding(c.model))

    resolved, sources = resolve(cfg, explicit)
    if experiments is None:
        return resolved, sources, None

    def value(c: StudyConfig, key: str) -> Any:
        section, field = key.split(".", 1)
        return getattr(getattr(c, section), field)

    variations = []
    for v in experiments.variations:
        if not {"model.name", "data.dataset"} & set(v.settings):
            variations.append(v)
            continue
        own, _ = resolve(experiments.trial_config(cfg, v.name), explicit | set(v.settings))
        extra = {
            k: value(own, k)
            for k in (*PRESET_KEYS, *split_keys)
            if k not in v.settings and value(own, k) != value(resolved, k)
        }
        variations.append(dataclasses.replace(v, settings={**v.settings, **extra}))
    return resolved, sources, dataclasses.replace(experiments, variations=tuple(variations))


def study_configs(plan: Plan) -> list[StudyConfig]:
    """The configs the study's trials train with: one, or one per variation that runs."""
    if plan.experiments is None:
        return [plan.config]
    return [
        plan.experiments.trial_config(plan.config, v)
        for v in plan.numbers.experiment_variations or ()
    ]


def describe_study(
    plan: Plan, metadata: StudyMetadata, warm: WarmWorkerStarter | None = None
) -> None:
    """The dataset and model details and the lead-k baseline into `metadata`, counted in a Ray
    worker when the trials have ended (so the study process imports neither torch, transformers
    nor rouge-score, and the first trial waits for none of it); a failure warns and leaves them
    out: they describe the study, they decide nothing."""

    from study.warm_worker import run_after_trials
    from trainables.describe import describe

    try:
        described, _ = run_after_trials(
            warm, {"num_cpus": 1, "max_retries": 0}, describe, study_configs(plan)
        )
    except Exception as e:  # noqa: BLE001 - any failure: the study's figures stand without them
        print(
            f"warning: dataset and model details and the lead baseline not recorded ({e!r:.300})",
            file=sys.stderr,
        )
        return
    metadata.data_details, metadata.models = described.data_details, described.models
    metadata.baseline = described.baseline


def experiments_record(plan: Plan) -> dict[str, Any] | None:
    """The plan as the analysis reads it: variations, what each expects, what was skipped."""
    e = plan.experiments
    if e is None:
        return None
    return {
        "plan": e.source,
        "seeds": e.seeds,
        "baseline": e.baseline,
        "variations": [dataclasses.asdict(v) for v in e.variations],
        "runnable": list(plan.numbers.experiment_variations or ()),
        "skipped": plan.numbers.experiment_skipped or {},
    }


def resolve_storage(storage: str, name: str, resume: bool, create: bool = True) -> tuple[str, Path]:
    """Absolute storage location and the study's folder; checks it can be written and what it
    holds. `create=False` (--dry-run) checks without creating or writing anything."""
    if not storage.strip():
        raise ConfigError(
            "--storage '': empty; give a folder (default ./greentune_results) or a URI"
        )
    if "://" in storage:
        import pyarrow
        import pyarrow.fs

        try:
            pyarrow.fs.FileSystem.from_uri(storage)
        except pyarrow.ArrowInvalid as e:
            raise ConfigError(
                f"--storage {storage!r}: {e}; use a path, or abfss://, s3://, gs:// or file://"
            ) from e
        except OSError as e:
            raise ConfigError(f"--storage {storage!r}: cannot reach it ({str(e)[:160]})") from e
        # Tune state and checkpoints go to the URI; parquet and metadata to a local folder here.
        root, remote = Path(DEFAULT_STORAGE).resolve(), storage.rstrip("/")
    else:
        root = Path(storage).expanduser().resolve()
        remote = None
    existing = next(p for p in (root, *root.parents) if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK):
        raise ConfigError(
            f"--storage {storage!r}: cannot write there ({existing} is not a writable "
            "folder); choose a writable folder"
        )
    if create:  # probe where the folders will be made; leaves nothing behind
        try:
            probe = existing / f".write-test-{os.getpid()}"
            probe.write_text("ok")
            probe.unlink()
        except OSError as e:
            raise ConfigError(
                f"--storage {storage!r}: cannot write there ({e.strerror}); "
                f"choose a writable folder"
            ) from e
    study_dir = root / name
    exists = (study_dir / schema.METADATA_FILE).exists()
    # a URI study lives on the URI: a new head (the old one went with `ray down`) resumes it
    remote_exists = remote is not None and _uri_holds_study(storage, f"{remote}/{name}")
    if resume and not (exists or remote_exists):
        raise ConfigError(
            f"--resume: no study named {name!r} under {remote or root}; check --name and "
            f"--storage, or drop --resume to start it"
        )
    if not resume and remote_exists:
        raise ConfigError(
            f"--name {name!r}: {remote}/{name} already holds a study; pass --resume to "
            f"continue it, or choose another --name"
        )
    if not resume and study_dir.exists() and any(study_dir.iterdir()):
        raise ConfigError(
            f"--name {name!r}: {study_dir} already holds a study; pass --resume to "
            f"continue it, or choose another --name"
        )
    return remote or str(root), study_dir


def _uri_holds_study(storage: str, remote_dir: str) -> bool:
    try:
        return read_text(f"{remote_dir}/{schema.METADATA_FILE}") is not None
    except OSError as e:
        raise ConfigError(f"--storage {storage!r}: cannot read it ({str(e)[:160]})") from e


def train_env(plan: Plan) -> dict[str, str]:
    """The environment every Ray worker of the study gets."""
    from trainables.session import VERBOSE_ENV

    return {**TRAIN_ENV, VERBOSE_ENV: "1" if plan.verbose else "0"}


def local_resources(cfg: StudyConfig) -> dict[str, float]:
    """What a local Ray on this machine offers: resources.local_cpus (or every CPU), its GPUs,
    and the trial-driver slots of a head node."""
    import torch

    cpus = cfg.resources.local_cpus or os.cpu_count() or 1
    return {"CPU": cpus, "GPU": torch.cuda.device_count(), DRIVER_RESOURCE: 10_000}


def start_ray(plan: Plan) -> dict[str, float]:
    """Start (or join) Ray for the plan; a Ray already started here (compare) is reused."""
    import ray

    cfg = plan.config
    if ray.is_initialized():
        resources = ray.cluster_resources()
        check_resources(cfg, resources)
        return resources
    if plan.address == "local":
        local = local_resources(cfg)
        check_resources(cfg, local)
        cpus = int(local["CPU"])
        # A local Ray listens on every interface (GCS, raylet, agents; FIELD_NOTES): token auth
        # with this study's own token, not a stray ~/.ray/auth_token, keeps others out. Workers
        # inherit it from this process's environment. An explicit RAY_AUTH_MODE is respected.
        if "RAY_AUTH_MODE" not in os.environ:
            # Ray 2.60 turns token auth on by default for a fresh local cluster (it re-reads its
            # config then); the token it loads is this one, from the environment.
            os.environ["RAY_AUTH_TOKEN"] = secrets.token_hex(32)
            os.environ.pop("RAY_AUTH_TOKEN_PATH", None)
            # Ray's notice that token auth is on by default suggests the opt-out, the one
            # setting that opens the cluster to anyone: not shown
            logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
                logging.ERROR
            )
        ray.init(
            address="local",
            num_cpus=cpus,
            runtime_env={"env_vars": train_env(plan)},
            num_gpus=None,
            resources={DRIVER_RESOURCE: 10_000},
            include_dashboard=True,
            log_to_driver=True,
            configure_logging=True,
            logging_level="WARNING",
        )
    else:
        os.environ.setdefault("RAY_AUTH_MODE", "token")
        context = ray.init(
            address=plan.address, runtime_env={"env_vars": train_env(plan)}, logging_level="WARNING"
        )
        if not context.dashboard_url:
            # Train V2 frees a stopped trial's placement group through a cleaner that asks the
            # state API (served by the dashboard) whether the run's controller is still alive.
            # Without it every PBT exploit or ASHA stop leaks the trial's CPUs/GPUs and the
            # study stalls with placement groups pending (seen on a two-node test cluster).
            ray.shutdown()
            raise ConfigError(
                f"--address {plan.address}: the cluster runs no Ray dashboard, which Ray "
                "Train needs to free a stopped trial's resources; start the head with it "
                "(ray start --head --include-dashboard=true; cluster.yaml does)"
            )
    resources = ray.cluster_resources()
    check_resources(cfg, resources)
    return resources


def check_resources(cfg: StudyConfig, resources: dict[str, float]) -> None:
    r = cfg.resources
    need_cpu, need_gpu = (
        r.workers_per_trial * r.cpus_per_worker,
        r.workers_per_trial * r.gpus_per_worker,
    )
    if need_cpu > resources.get("CPU", 0):
        raise ConfigError(
            f"resources.workers_per_trial={r.workers_per_trial} x cpus_per_worker="
            f"{r.cpus_per_worker} needs {need_cpu} CPUs; the cluster has "
            f"{resources.get('CPU', 0):g}. Lower them or add nodes"
        )
    if need_gpu > resources.get("GPU", 0):
        raise ConfigError(
            f"resources.gpus_per_worker={r.gpus_per_worker} x {r.workers_per_trial} workers "
            f"needs {need_gpu} GPUs; the cluster has {resources.get('GPU', 0):g}. "
            f"Use 0 on a CPU machine or join a GPU cluster (--address auto)"
        )
    if resources.get(DRIVER_RESOURCE, 0) < 1:
        raise ConfigError(
            f"--address: the cluster offers no '{DRIVER_RESOURCE}' resource for trial "
            f"drivers; start the head with --resources='{{\"{DRIVER_RESOURCE}\": 64}}' "
            f"(cluster.yaml does)"
        )


def trial_resources(cfg: StudyConfig) -> dict[str, float]:
    """What one Tune trial asks Ray for. A local-path trial trains in its own process, so it asks
    for its worker's CPUs and GPUs; a Train-path driver only coordinates, on the head node (the
    only one offering `trial_driver`), while its worker group asks for the devices."""
    from trainables.driver import LOCAL_PATH, execution_path

    r = cfg.resources
    if execution_path(cfg) == LOCAL_PATH:
        return {
            "CPU": r.cpus_per_worker,
            **({"GPU": r.gpus_per_worker} if r.gpus_per_worker else {}),
        }
    return {"CPU": 0, DRIVER_RESOURCE: 1}


def concurrent_trials(cfg: StudyConfig, resources: dict[str, float]) -> int:
    """How many trials the cluster holds at once (or the configured number)."""
    r = cfg.resources
    if r.max_concurrent_trials:
        return r.max_concurrent_trials
    fits = [resources.get("CPU", 0) // (r.workers_per_trial * r.cpus_per_worker)]
    if r.gpus_per_worker:
        fits.append(resources.get("GPU", 0) // (r.workers_per_trial * r.gpus_per_worker))
    return max(1, int(min(fits)))


LOCK_FILE = ".greentune.lock"


def lock_holder_gone(text: str) -> bool:
    """Whether a lock's holder ("pid N on HOST") is a process of this machine that no longer
    runs (a study killed with SIGKILL, or the machine rebooted). Another machine's: unknown."""
    parts = text.split()
    if len(parts) != 4 or parts[0] != "pid" or parts[2] != "on" or not parts[1].isdigit():
        return False
    if parts[3] != os.uname().nodename:
        return False
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def take_lock(plan: Plan) -> Path:
    """The study folder's lock, or ConfigError naming its holder. A lock whose holder is gone
    from this machine is taken over (noted), so a killed study can be resumed."""
    lock = plan.study_dir / LOCK_FILE
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = lock.read_text().strip() if lock.exists() else ""
            if lock_holder_gone(holder):
                print(f"note: {lock} was left by {holder}, which is gone; taking it over")
                lock.unlink(missing_ok=True)
                continue
            raise ConfigError(
                f"--name {plan.name!r}: another greentune process is writing {plan.study_dir} "
                f"({holder or 'pid unknown'}); wait for it, or delete {lock} "
                "if that process is gone"
            ) from None
        os.write(fd, f"pid {os.getpid()} on {os.uname().nodename}".encode())
        os.close(fd)
        return lock
    raise ConfigError(f"--name {plan.name!r}: could not take {lock}; try again")


def run(plan: Plan, keep_ray: bool = False) -> dict[str, Any]:
    """Run one study, holding its folder's lock; a fresh study that fails before its
    metadata.json exists leaves no folder behind (a re-run starts clean)."""
    fresh = not plan.study_dir.exists()
    plan.study_dir.mkdir(parents=True, exist_ok=True)
    lock = take_lock(plan)
    try:
        return _run(plan, keep_ray)
    except BaseException:
        if fresh and not (plan.study_dir / schema.METADATA_FILE).exists():
            shutil.rmtree(plan.study_dir, ignore_errors=True)
        raise
    finally:
        lock.unlink(missing_ok=True)


def study_writer(plan: Plan, started_at: float, mirror: Mirror) -> ResultsWriter:
    """The study's ResultsWriter (a fresh start or a resume: the same, over the folder's tables)."""
    from study.results import ResultsWriter

    cfg = plan.config
    return ResultsWriter(
        plan.study_dir,
        plan.name,
        plan.strategy,
        cfg.seed,
        started_at,
        cfg.search.metric,
        cfg.search.mode,
        plan.numbers.reports_per_trial,
        mirror=mirror,
    )


@dataclasses.dataclass
class TuneRun:
    """What one run of Tune needs, built fresh or restored by `--resume`."""

    tuner: Any
    writer: ResultsWriter
    stopper: BudgetStopper
    metadata: StudyMetadata  # as it stands before this run; record_outcome completes it
    mlflow: MlflowStudy | None = None  # --mlflow: the study's parent run and its trials' runs
    warm: WarmWorkerStarter | None = None  # a local study's worker for what follows the trials

    @property
    def started_at(self) -> float:
        """When the study's first run started (a resumed study keeps it)."""
        assert self.metadata.started_at is not None, "every study records its start"
        return self.metadata.started_at


def study_callbacks(
    plan: Plan, started_at: float, scheduler: Any, ctx: StudyContext
) -> tuple[ResultsWriter, CheckpointJanitor, BudgetStopper]:
    """The study's own Tune callbacks and stopper, over the folder's tables: the parquet writer,
    the checkpoint janitor and the budget stopper (a fresh start and a resume build the same)."""
    from study.budget import BudgetStopper
    from study.checkpoints import CheckpointJanitor

    writer = study_writer(plan, started_at, plan.mirror)
    stopper = BudgetStopper(plan.numbers.budget, ctx.carbon.pue)
    writer.budget_stopper, writer.scheduler = stopper, scheduler
    janitor = CheckpointJanitor(ctx.train_runs_path, writer.selected, scheduler)
    return writer, janitor, stopper


def warm_worker_starter(plan: Plan) -> WarmWorkerStarter | None:
    """A local study's `WarmWorkerStarter`; None on a cluster (study/warm_worker.py)."""
    from study.warm_worker import WarmWorkerStarter

    return WarmWorkerStarter(plan.config) if plan.address == "local" else None


def mlflow_runs(plan: Plan, parent_run_id: str | None) -> MlflowStudy | None:
    """--mlflow: the study's MLflow runs (a resumed study's own parent run reopened)."""
    if not plan.mlflow_uri:
        return None
    from study.mlflow_runs import MlflowStudy

    cfg = plan.config
    tags = {
        "strategy": plan.strategy,
        "seed": str(cfg.seed),
        "model": cfg.model.name,
        "dataset": cfg.data.dataset,
    }
    runs = MlflowStudy(plan.mlflow_uri, plan.name, plan.name, tags, cfg.to_dict(), parent_run_id)
    runs.start()
    return runs


def resumed_study(plan: Plan, trainable: Any, ctx: StudyContext) -> TuneRun:
    """Tune restored from the study's folder, with the study's callbacks rebuilt from its tables."""
    from ray import tune

    from study.checkpoints import CheckpointJanitor
    from study.mlflow_runs import MlflowStudy
    from study.results import ResultsWriter
    from study.tune_state import replace_study_callbacks, restored_scheduler
    from study.warm_worker import WarmWorkerStarter

    fetched = plan.mirror.pull(schema.RESULT_FILES)  # a new head: the results from the URI
    if fetched:
        print(f"resuming from {plan.remote_dir}: fetched {', '.join(fetched)}")
    metadata = read_metadata(plan.study_dir)
    tuner = tune.Tuner.restore(
        ctx.study_path, trainable, resume_unfinished=True, resume_errored=True
    )
    # The callbacks Tune pickled at the first start hold that run's paths and an empty state:
    # rebuild them for the folder being resumed, from what it holds on disk.
    writer, janitor, stopper = study_callbacks(
        plan, metadata.started_at, restored_scheduler(tuner), ctx
    )
    recovered = writer.recover_from_tune_logs(ctx.study_path)  # Tune's trial folders
    stopper.latest = writer.latest_per_trial()
    mlflow = mlflow_runs(plan, metadata.mlflow_run_id)
    if mlflow is not None:
        metadata.mlflow_run_id = mlflow.parent_run_id
    warm = warm_worker_starter(plan)
    own = [writer, janitor, *([mlflow] if mlflow else []), *([warm] if warm else [])]
    replace_study_callbacks(
        tuner,
        own,
        stopper,
        owned=(ResultsWriter, CheckpointJanitor, MlflowStudy, WarmWorkerStarter),
    )
    print(
        f"resuming {plan.name}: {len(writer.rows)} reports on disk ({recovered} recovered from "
        "Tune's logs)"
    )
    return TuneRun(tuner, writer, stopper, metadata, mlflow, warm)


def fresh_study(
    plan: Plan,
    trainable: Any,
    ctx: StudyContext,
    slots: int,
    ray_resources: dict[str, float],
    started_at: float,
    ray_init_s: float,
) -> TuneRun:
    """A new Tuner for the plan, and the study's metadata.json written once it exists."""
    from ray import tune

    from study.provenance import git_commit, hardware, package_versions
    from study.strategies import build_tune_plan
    from trainables.driver import LOCAL_PATH, execution_path

    cfg, space = plan.config, plan.space
    tune_plan = build_tune_plan(plan.strategy, space, cfg, slots, plan.numbers)
    metadata = StudyMetadata(
        study=plan.name,
        strategy=plan.strategy,
        seed=cfg.seed,
        config=cfg.to_dict(),
        search_space={
            "name": space.name,
            "grid_points": len(space.grid()),
            "parameters": [dataclasses.asdict(p) for p in space.params],
        },
        derived=plan.numbers.to_dict(),
        concurrent_trials=slots,
        footprint=plan.footprint,
        execution_path=execution_path(cfg),
        ray_auth=os.environ.get("RAY_AUTH_MODE", "unset"),
        ray_resources=ray_resources,
        started_at=started_at,
        ray_init_s=ray_init_s,
        storage=plan.study_path,
        versions=package_versions(),
        git_commit=git_commit(),
        hardware=hardware(),
        presets=plan.presets,
        experiments=experiments_record(plan),
    )
    writer, janitor, stopper = study_callbacks(plan, started_at, tune_plan.scheduler, ctx)
    reporter = tune.CLIReporter(
        metric_columns={
            cfg.search.metric: cfg.search.metric,
            "val_loss": "val_loss",
            schema.TRIAL_EPOCHS: "epochs",
            schema.ENERGY_TOTAL_J: "energy_J",
        },
        # the space's names (variation, repeat in experiments); a searcher holding the space
        # (optuna-mo) leaves param_space empty
        parameter_columns=list(tune_plan.param_space) or space.names,
        max_report_frequency=15,
    )
    mlflow = mlflow_runs(plan, None)
    if mlflow is not None:
        metadata.mlflow_run_id = mlflow.parent_run_id
    warm = warm_worker_starter(plan)
    callbacks = [writer, *([mlflow] if mlflow else []), janitor, *([warm] if warm else [])]
    tuner = tune.Tuner(
        trainable,
        param_space=tune_plan.param_space,
        tune_config=tune.TuneConfig(
            metric=cfg.search.metric,
            mode=cfg.search.mode,
            num_samples=tune_plan.num_samples,
            scheduler=tune_plan.scheduler,
            search_alg=tune_plan.search_alg,
            # local path: a trial process (its imports, prepared data) serves the next trial too
            # an experiments study starts each trial in a fresh process: a trial's peak memory
            # is then its own, not what an earlier trial left in a reused process
            reuse_actors=execution_path(cfg) == LOCAL_PATH and plan.experiments is None,
        ),
        run_config=tune.RunConfig(
            name=plan.name,
            storage_path=plan.storage,
            callbacks=callbacks,
            stop=stopper,
            progress_reporter=reporter,
            verbose=1,
            # Tune's checkpoints are small pointers to Train checkpoints: keep them all
            # (an exploit may clone any trial's latest); the janitor bounds the real ones.
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=1),
        ),
    )
    write_metadata(plan.study_dir, metadata)  # only once the Tuner exists: no half-made study
    plan.mirror.push(schema.METADATA_FILE)
    return TuneRun(tuner, writer, stopper, metadata, mlflow, warm)


def _run(plan: Plan, keep_ray: bool = False) -> dict[str, Any]:
    """Start Ray, run Tune (fresh or resumed), meter the cluster, score the selected model on
    held-out data, record it all; returns the closing summary."""
    # The classic progress table lets us choose its columns (target metric, energy).
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    from study.checkpoints import TUNE_STATE_PERIOD_S

    # Tune saves its experiment state (what --resume restores) this often; the checkpoint janitor's
    # restore window is sized from the same constant.
    os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", str(TUNE_STATE_PERIOD_S))
    import ray
    from ray import tune

    from core.footprint import carbon_intensity, price_per_worker_hour
    from study.cluster_meter import ClusterMeter
    from trainables.driver import StudyContext, trial_driver

    cfg, e = plan.config, plan.config.energy
    if not plan.verbose:
        # PB2's Gaussian process (scikit-learn, in this driver) warns at nearly every fit on a
        # few noisy points that a kernel parameter sits at its bound: nothing a user can act on
        warnings.filterwarnings("ignore", module=r"sklearn\.gaussian_process")
        # Tune's CSV and JSON loggers look for a restored trial's own progress files, which a
        # PBT member cloned before its first report never wrote: "Remote file not found"
        logging.getLogger("ray.tune.logger").setLevel(logging.ERROR)
    run_started = time.time()
    resources = start_ray(plan)
    ray_init_s = time.time() - run_started
    slots = concurrent_trials(cfg, resources)
    carbon = carbon_intensity(cfg.energy, run_started)
    ctx = StudyContext(
        config=cfg,
        strategy=plan.strategy,
        study_name=plan.name,
        study_path=plan.study_path,
        carbon=carbon,
        price_usd_per_device_hour=price_per_worker_hour(
            e.vm_size, cfg.resources.gpus_per_worker, e.spot, e.region, e.price_usd_per_hour
        ),
        variations=plan.experiments.settings if plan.experiments else None,
    )
    trainable = tune.with_resources(
        tune.with_parameters(trial_driver, ctx=ctx), trial_resources(cfg)
    )
    if plan.resume:
        tuned = resumed_study(plan, trainable, ctx)
    else:
        tuned = fresh_study(plan, trainable, ctx, slots, resources, run_started, ray_init_s)
    print_plan(plan, slots)
    meter = ClusterMeter(
        carbon,
        run_started,
        cfg.energy.cpu_tdp_w,
        snapshot=plan.study_dir / schema.CLUSTER_ENERGY_FILE,
        mirror=plan.mirror,
        previous_runs=previous_cluster_runs(plan.study_dir) if plan.resume else [],
        billing=node_billing(cfg),
        vm_size=cfg.energy.vm_size,
        head_vm_size=cfg.energy.head_vm_size,
        live_tags=ctx.live_tags,
    ).start()
    tuned.stopper.cluster = meter.spend  # energy, CO2 and dollar budgets count the whole cluster
    results = tuned.tuner.fit()
    fit_finished = time.time()
    held_out = evaluate_selected_model(plan, tuned.writer.selected(), ctx, tuned.warm)
    describe_study(plan, tuned.metadata, tuned.warm)
    if tuned.warm is not None:
        tuned.warm.stop()
    finished = time.time()
    record_outcome(
        plan, tuned, meter, carbon, held_out, slots, (run_started, fit_finished, finished)
    )
    if not keep_ray:
        ray.shutdown()
    summary = closing_summary(plan, tuned, results, held_out, finished - tuned.started_at)
    print_summary(summary, cfg.search.metric)
    return summary


def record_outcome(
    plan: Plan,
    tuned: TuneRun,
    meter: ClusterMeter,
    carbon: CarbonIntensity,
    held_out: dict[str, Any] | None,
    slots: int,
    times: tuple[float, float, float],
) -> None:
    """`tuned.metadata` completed with this run's outcome (wall time, budget, whole-cluster
    energy, cost, carbon, the held-out test), written and copied; the model card beside the
    selected model. `times`: this run's start, Tune's end, the held-out evaluation's end."""
    from core.footprint import BILLED_NOTE
    from study.budget import spend_of_trials

    cfg, metadata = plan.config, tuned.metadata
    run_started, fit_finished, finished = times
    latest = tuned.writer.latest_per_trial()
    cluster = meter.finish(measured_sum(r.get(schema.ENERGY_TOTAL_J) for r in latest.values()))
    spend = spend_of_trials(latest, carbon.pue, meter.spend(max_age_s=math.inf))
    attributed = [r.get(schema.COST_USD) for r in latest.values()]
    metadata.runs = [*metadata.runs, {"started_at": run_started, "finished_at": finished}]
    # wall time: each run's own (a resumed study adds its runs, not the gap between them)
    metadata.wall_s = sum(r["finished_at"] - r["started_at"] for r in metadata.runs)
    metadata.finished_at, metadata.tune_wall_s = finished, fit_finished - run_started
    metadata.stopped_on_budget = tuned.stopper.reason
    metadata.cluster_energy = cluster
    metadata.budget = budget_record(plan.numbers.budget, spend, tuned.stopper.reason, slots)
    metadata.cost = {
        # billed: every node's VM at its own size, for the time this run held it, idle included
        "billed_usd": cluster["billed_usd"],
        "attributed_usd": sum(attributed)
        if all(a is not None for a in attributed) and attributed
        else None,
        "vm_size": cfg.energy.vm_size or None,
        "head_vm_size": (cfg.energy.head_vm_size or cfg.energy.vm_size) or None,
        "nodes": len(cluster["nodes"]),
        "note": plan.footprint.get("cost_note") or BILLED_NOTE,
    }
    if held_out is not None:
        metadata.selection, metadata.test = held_out["selection"], held_out["test"]
    metadata.carbon = study_carbon(cfg, carbon, cluster, metadata.test, run_started, finished)
    write_metadata(plan.study_dir, metadata)
    plan.mirror.push(*schema.RESULT_FILES)
    if (metadata.selection or {}).get("model"):
        from study.model_card import model_card

        storage.write_text(
            storage.join(metadata.selection["model"], schema.MODEL_CARD_FILE),
            model_card(metadata),
        )
    if tuned.mlflow is not None:
        try:
            tuned.mlflow.finish(metadata, plan.study_dir)
        except Exception as e:  # noqa: BLE001 - the study's own files are written; say it
            warnings.warn(
                f"MLflow: could not finish the study's run {tuned.mlflow.parent_run_id} "
                f"({type(e).__name__}: {str(e)[:160]}); the study folder holds every result",
                RuntimeWarning,
                stacklevel=2,
            )


def closing_summary(
    plan: Plan, tuned: TuneRun, results: Any, held_out: dict[str, Any] | None, wall_s: float
) -> dict[str, Any]:
    """What the CLI prints and returns at the end: where the results are, the selected trial,
    the held-out test of this run."""
    metric, metadata = plan.config.search.metric, tuned.metadata
    best = tuned.writer.selected()
    cluster = metadata.cluster_energy or {}
    return {
        "study_dir": plan.study_path,  # Tune's state and the trial folders
        "results": where_results_live(plan),
        "tables_dir": str(plan.study_dir),  # where analysis.report reads them on this machine
        "trials": len(results),
        "errors": results.num_errors,
        "wall_s": wall_s,
        "stopped_on_budget": tuned.stopper.reason,
        "halted": tuned.stopper.halted,
        "best_" + metric: best.get(metric) if best else None,
        "best_trial": best.get(schema.TRIAL_ID) if best else None,
        "best_config": {
            k[len(schema.CONFIG_PREFIX) :]: v
            for k, v in (best or {}).items()
            if k.startswith(schema.CONFIG_PREFIX)
        },
        "budget": metadata.budget,
        "stopped_by_budget": sum(
            1
            for st in tuned.writer.statuses.values()
            if st.get("stop_reason") == schema.STOP_BUDGET
        ),
        "test": (held_out or {}).get("test"),
        "model": ((held_out or {}).get("selection") or {}).get("model"),
        "cluster_energy_j": cluster["energy_j"],
        "co2_kg": metadata.section("carbon").get("operational_kg"),
        "billed_usd": metadata.section("cost").get("billed_usd"),
        "attributed_usd": metadata.section("cost").get("attributed_usd"),
        "overhead_energy_j": cluster["overhead_energy_j"],
    }


def study_carbon(
    cfg: StudyConfig,
    carbon: CarbonIntensity,
    cluster: dict[str, Any],
    test: dict[str, Any] | None,
    started: float,
    finished: float,
) -> dict[str, Any]:
    """metadata.json `carbon`: location- and market-based CO2, embodied, SCI, filled hours."""
    from core.footprint import carbon_accounting

    runs = [cluster, *(cluster.get("previous_runs") or [])]
    co2 = [r["co2_kg"] for r in runs if r.get("co2_kg") is not None]
    energy = [r["energy_j"] for r in runs if r.get("energy_j") is not None]
    held = [(n.get("vm_size") or "", n["held_s"]) for n in cluster["nodes"]]
    held_out_j = (
        ((test or {}).get("energy") or {}).get("total_j") if (test or {}).get("evaluated") else None
    )
    e = cfg.energy
    out = carbon_accounting(
        sum(co2) if co2 else None,
        sum(energy) if energy else None,
        carbon.pue,
        e.market_intensity_g_per_kwh if e.market_intensity_g_per_kwh >= 0 else None,
        held,
        held_out_j,
        (test or {}).get("n", 0),
        carbon.at(finished),
    )
    if carbon.hourly is not None:
        out["filled_hours"] = carbon.hourly.filled_hours(started, finished)
    return out


def node_billing(cfg: StudyConfig) -> Callable[[list[tuple[str, float]]], float | None] | None:
    """Dollars billed for [(vm_size, seconds held), ...], each node at its own size's price in the
    study's region (energy.price_usd_per_hour overriding energy.vm_size's); None locally."""
    from core.footprint import billed_cost_for_nodes

    e = cfg.energy
    if not e.vm_size and not e.head_vm_size:
        return None
    overrides = {e.vm_size: e.price_usd_per_hour} if e.price_usd_per_hour else {}
    return lambda held: billed_cost_for_nodes(held, e.spot, e.region, overrides)


def budget_record(
    budget: Budget, spend: ClusterSpend, reason: str | None, slots: int
) -> dict[str, Any]:
    """What metadata.json keeps of the budget: unit and amount, what was spent, the overshoot."""
    from study.budget import spent_in

    value = spent_in(budget, spend)
    return {
        "unit": budget.unit,
        "amount": budget.amount,
        "scope": budget.scope,
        "spent": value,
        "overshoot": (value - budget.amount) if value is not None else None,
        "stopped": reason,
        "slots": slots,
        "spend": spend.to_dict(),
        "rule": "samplers start trials until the budget is spent; running trials stop when it "
        "runs out; the overshoot is bounded by one report interval per running slot",
    }


def selected_config(plan: Plan, selected: dict[str, Any] | None) -> StudyConfig:
    """The config the selected trial trained with: the study's, or its variation's (an
    experiments study's best trial may be another model than the baseline's)."""
    variation = (selected or {}).get(schema.CONFIG_PREFIX + schema.VARIATION)
    if plan.experiments is None or variation is None:
        return plan.config
    return plan.experiments.trial_config(plan.config, variation)


def evaluate_selected_model(
    plan: Plan,
    selected: dict[str, Any] | None,
    ctx: StudyContext,
    warm: WarmWorkerStarter | None = None,
) -> dict[str, Any] | None:
    """Score the selected model (the best validation report's checkpoint) once on the test split,
    in the local study's warm worker or a Ray task with one worker's resources; write the
    per-example scores to `test_scores.parquet` and return the `selection` and `test` entries
    of metadata.json."""
    import ray

    from core.stats import bootstrap_ci
    from study.results import write_parquet_atomic
    from study.warm_worker import run_after_trials
    from trainables.held_out import evaluate_checkpoint

    cfg = selected_config(plan, selected)
    if selected is None or not cfg.data.n_test:
        why = (
            "data.n_test=0"
            if selected is not None
            else "no report with a checkpoint and a finite metric"
        )
        return {"selection": None, "test": {"evaluated": False, "why": why}}
    location = storage.join(ctx.train_runs_path, selected[schema.CHECKPOINT_PATH])
    model_location = storage.join(ctx.study_path, schema.BEST_MODEL_DIR)
    r = cfg.resources
    # One trial's CPUs; a local study has finished its trials, so it takes the whole machine.
    cpus = (
        ray.cluster_resources().get("CPU", 1)
        if plan.address == "local"
        else r.cpus_per_worker * r.workers_per_trial
    )
    print(
        f"scoring the selected model (trial {selected[schema.TRIAL_ID]}, report "
        f"{selected[schema.ITERATION]}, validation {cfg.search.metric} "
        f"{selected[cfg.search.metric]:.4f}) "
        f"on {cfg.data.n_test} held-out {cfg.data.test_split!r} examples"
    )
    result, ran_in = run_after_trials(
        warm,
        {"num_cpus": cpus, "num_gpus": 1 if r.gpus_per_worker else 0, "max_retries": 1},
        evaluate_checkpoint,
        cfg,
        location,
        cfg.data.test_split,
        cfg.data.n_test,
        max(1, int(cpus)) if not r.torch_threads else r.torch_threads,
        model_location,
    )
    if result.export_error:
        print(
            f"warning: the selected model could not be saved to {model_location} "
            f"({result.export_error}); its scores are kept",
            file=sys.stderr,
        )
    identity = {
        schema.STUDY: plan.name,
        schema.STRATEGY: plan.strategy,
        schema.SEED: cfg.seed,
        schema.TRIAL_ID: selected[schema.TRIAL_ID],
    }
    table = pd_frame(
        {
            **identity,
            schema.EXAMPLE: list(range(result.n)),
            **result.scores,
            schema.PREDICTION: result.predictions,
            schema.REFERENCE: result.references,
        }
    )
    write_parquet_atomic(table, plan.study_dir / schema.TEST_SCORES_FILE)
    test: dict[str, Any] = {
        "evaluated": True,
        "split": result.split,
        "n": result.n,
        "loss": result.loss,
        "seconds": result.seconds,
        "energy": result.energy.to_dict(),
        "interval": "95 % percentile bootstrap over examples (4000 resamples)",
        "ran_in": ran_in,  # study.warm_worker: warm_worker (a local study) or task
    }
    for key, values in result.scores.items():
        test[key] = sum(values) / len(values)
        test[f"{key}_ci95"] = list(bootstrap_ci(values))
    test["split_details"] = result.details  # the dataset-details row of the test split
    selection = {
        "trial_id": selected[schema.TRIAL_ID],
        "iteration": selected[schema.ITERATION],
        "checkpoint": selected[schema.CHECKPOINT_PATH],
        "metric": cfg.search.metric,
        "model_name": cfg.model.name,  # an experiments study's variation may swap the model
        "validation_score": selected[cfg.search.metric],
        "config": {
            k[len(schema.CONFIG_PREFIX) :]: v
            for k, v in selected.items()
            if k.startswith(schema.CONFIG_PREFIX)
        },
        "rule": "the best validation report of any trial (ties: the earliest); the test "
        "split is read once, here, and by nothing that made a decision",
        # save_pretrained's files (the model card is added at the end); None if saving failed
        "model": model_location if result.export_error is None else None,
        "model_error": result.export_error,
        # the selected trial's own training up to that report (a PBT clone: since its exploit)
        "trial_energy_j": selected.get(schema.ENERGY_TOTAL_J),
        "trial_co2_kg": selected.get(schema.CO2_KG),
        "trial_energy_sources": {
            "gpu": selected.get(schema.ENERGY_GPU_SOURCE),
            "cpu": selected.get(schema.ENERGY_CPU_SOURCE),
            "ram": selected.get(schema.ENERGY_RAM_SOURCE),
        },
    }
    return {"selection": selection, "test": test}


def pd_frame(columns: dict[str, Any]) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns)


def previous_cluster_runs(study_dir: Path) -> list[dict[str, Any]]:
    """The cluster meter's readings of this study's earlier runs (an interrupted run's last poll)"""
    path = study_dir / schema.CLUSTER_ENERGY_FILE
    if not path.exists():
        return []
    last = json.loads(path.read_text())
    return [*last.pop("previous_runs", []), last]


def describe_trials(n: StrategyNumbers) -> str:
    """How many trials, in words: a fixed count, or as many as the budget buys."""
    if n.num_trials is not None:
        return f"{n.num_trials} trials"
    expected = f", about {n.expected_trials:.0f} as modelled" if n.expected_trials else ""
    return f"trials until the budget is spent{expected}"


def print_plan(plan: Plan, slots: int | None) -> None:
    n = plan.numbers
    at_once = f"{slots} at a time" if slots else "as many at a time as the cluster holds"
    print(
        f"study {plan.name}: strategy {plan.strategy}, {describe_trials(n)}, "
        f"budget {n.budget.label}, {at_once}"
    )
    print(f"  derived: {json.dumps(n.to_dict())}")
    filled = {k: v for k, v in plan.presets.items() if v not in ("set", "default")}
    if filled:  # decoding and lengths taken from the checkpoint or a published recipe
        print(f"  presets: {json.dumps(filled)}")
    print(f"  results: {where_results_live(plan)}")


def config_yaml(cfg: StudyConfig) -> str:
    """The resolved config as YAML, sections in their dataclass order: `--config` reads it back
    to the same config."""
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=False)


def planned_concurrency(plan: Plan) -> int | None:
    """Trials at once: the configured number, or what this machine holds for a local study;
    None for a cluster not yet joined (its size is known once Ray is up)."""
    if plan.config.resources.max_concurrent_trials or plan.address != "local":
        return plan.config.resources.max_concurrent_trials or None
    return concurrent_trials(plan.config, local_resources(plan.config))


def where_results_live(plan: Plan) -> str:
    """Where the metadata and tables are, in words (with a URI storage: both copies)."""
    if plan.remote_dir is None:
        return str(plan.study_dir)
    return (
        f"{plan.remote_dir} (metadata, tables, checkpoints and Tune's state; the metadata and "
        f"tables are written first in {plan.study_dir} on this machine and copied there after "
        "every write)"
    )


def print_summary(summary: dict[str, Any], metric: str) -> None:
    best = summary.get("best_" + metric)
    print("\n=== study finished ===")
    print(f"  folder:     {summary['results']}")
    print(f"  trials:     {summary['trials']} ({summary['errors']} errors)")
    print(f"  wall time:  {summary['wall_s']:.0f} s")
    budget = summary.get("budget") or {}
    if budget.get("spent") is not None:
        print(
            f"  budget:     spent {budget['spent']:.4g} of {budget['amount']:.4g} {budget['unit']}"
            f" ({budget['overshoot']:+.3g})"
            + (
                f" - {summary['stopped_by_budget']} running trial(s) stopped when it ran out"
                if summary.get("stopped_by_budget")
                else ""
            )
        )
    if summary.get("cluster_energy_j") is not None:
        trials = summary["cluster_energy_j"] - (summary["overhead_energy_j"] or 0.0)
        print(
            f"  energy:     {summary['cluster_energy_j']:.0f} J whole cluster (estimated where no "
            f"counter), {trials:.0f} J in trials, {summary['overhead_energy_j'] or 0:.0f} J "
            "overhead"
        )
    if summary.get("co2_kg") is not None:
        print(f"  CO2e:       {summary['co2_kg'] * 1000:.3g} g whole cluster (location-based)")
    billed, attributed = summary.get("billed_usd"), summary.get("attributed_usd")
    if billed is None and attributed is None:
        print("  cost:       not applicable (no VM price: set energy.vm_size on a cloud VM)")
    else:
        parts = [f"${billed:.2f} billed" if billed is not None else "billed: not priced"]
        if attributed is not None:
            parts.append(f"${attributed:.2f} attributed to the trials")
        print(f"  cost:       {', '.join(parts)}")
    if best is not None:
        print(
            f"  selected:   validation {metric} {best:.4f} (trial {summary['best_trial']}), "
            f"config {json.dumps(summary['best_config'])}"
        )
    test = summary.get("test") or {}
    if test.get("evaluated"):
        low, high = test["rougeL_ci95"]
        print(
            f"  test:       ROUGE-L {test['rougeL']:.4f} (95 % CI {low:.4f}-{high:.4f}) on "
            f"{test['n']} held-out {test['split']!r} examples"
        )
    if summary.get("model"):
        print(f"  model:      {summary['model']} (from_pretrained; model card with its CO2)")
    print(f"  next:       python -m analysis.report {summary['tables_dir']}")


def plan_comparison(args: argparse.Namespace) -> list[Plan]:
    """One plan per strategy x seed, all under the same config and budget (validated up front)."""
    strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    unknown = [s for s in strategies if s not in STRATEGIES]
    if unknown or not strategies:
        raise ConfigError(
            f"--strategies {args.strategies!r}: use a comma-separated subset of "
            f"{', '.join(STRATEGIES)}"
        )
    if args.seeds < 1:
        raise ConfigError(f"--seeds {args.seeds}: must be >= 1")
    if args.name or args.resume:
        raise ConfigError(
            "compare names its studies <strategy>-<model>-<dataset>-seed<seed>; drop "
            "--name/--resume (resume a single study with its own name instead)"
        )
    first = args.seed or 0
    return [
        plan_study(argparse.Namespace(**{**vars(args), "strategy": strategy, "seed": seed}))
        for seed in range(first, first + args.seeds)
        for strategy in strategies
    ]


def compare(plans: list[Plan], dry_run: bool) -> int:
    group = f"compare-{default_name('x', plans[0].config).split('-', 1)[1].rsplit('-seed', 1)[0]}"
    out = Path(DEFAULT_STORAGE if "://" in plans[0].storage else plans[0].storage) / group
    runs = [
        {"strategy": p.strategy, "seed": p.config.seed, "study": p.name, **p.numbers.to_dict()}
        for p in plans
    ]
    print(
        f"compare: {len(plans)} studies under the same budget "
        f"({plans[0].numbers.budget.label} each); report -> {out}"
    )
    for p in plans:
        print(f"  {p.name}: {describe_trials(p.numbers)}")
    if dry_run:
        return 0
    if (out / "compare.json").exists():
        raise ConfigError(
            f"compare: {out / 'compare.json'} already exists (an earlier comparison); "
            "use another --storage, or move that comparison away"
        )
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps({"runs": runs}, indent=2, default=str))
    # One Ray instance for every study of the comparison (its start-up is paid once); each study
    # still meters the whole cluster from its own start to its own end.
    try:
        for plan in plans:
            run(plan, keep_ray=True)
    finally:
        import ray

        ray.shutdown()
    from analysis.report import main as report_main

    return report_main([str(p.study_dir) for p in plans] + ["--out", str(out)])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["infer"]:  # after the search: serve the selected model (study/infer.py)
        from study.infer import main as infer_main

        return infer_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.strategy == "compare":
        try:
            return compare(plan_comparison(args), args.dry_run)
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    try:
        plan = plan_study(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.print_config:
        print(config_yaml(plan.config), end="")
        return 0
    if args.dry_run:
        print_plan(plan, planned_concurrency(plan))
        print(f"  config: {json.dumps(plan.config.to_dict())}")
        return 0
    try:
        summary = run(plan)
    except ConfigError as e:  # resource checks that need the cluster's size
        print(f"error: {e}", file=sys.stderr)
        return 2
    if summary["errors"]:
        print(
            f"error: {summary['errors']} trial(s) ended in ERROR; their error.txt files are in "
            f"the trial folders under {summary['study_dir']}"
            + (f" (the study stopped: {summary['halted']})" if summary.get("halted") else ""),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
