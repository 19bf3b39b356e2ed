"""`metadata.json`, typed: what a study was (written at its start) and what it spent (at its end).

One writer and one reader for every module: the study writes it (`study.run`), the analysis and
the model card read it. Every field may be missing from a folder an older greentune wrote or a
study still running (None or empty, never a guess); keys this version does not know are kept in
`extra` and written back, so a resume by an older or newer greentune loses nothing.

    >>> meta = StudyMetadata(study="grid-1", strategy="grid", seed=0)
    >>> StudyMetadata.from_dict(meta.to_dict()) == meta
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from core.schema import METADATA_FILE


class MetadataError(ValueError):
    """metadata.json cannot be read: the message names the file and what is wrong."""


@dataclasses.dataclass
class StudyMetadata:
    """The study folder's `metadata.json`. Sections stay JSON objects, each documented where it
    is made (named in the comment)."""

    # -- written when the study starts (study.run.fresh_study)
    study: str | None = None
    strategy: str | None = None
    seed: int | None = None
    config: dict[str, Any] = dataclasses.field(default_factory=dict)  # StudyConfig.to_dict()
    search_space: dict[str, Any] = dataclasses.field(default_factory=dict)  # name, points, params
    derived: dict[str, Any] = dataclasses.field(default_factory=dict)  # StrategyNumbers.to_dict()
    concurrent_trials: int | None = None
    footprint: dict[str, Any] = dataclasses.field(default_factory=dict)  # footprint_inputs()
    execution_path: str | None = None  # trainables.driver: local | train_worker_group
    baseline: dict[str, Any] | None = None  # lead-k on the validation split (after the trials)
    ray_auth: str | None = None
    ray_resources: dict[str, float] = dataclasses.field(default_factory=dict)
    started_at: float | None = None  # Unix seconds; a resumed study keeps its first start
    ray_init_s: float | None = None
    storage: str | None = None  # where Tune keeps the study (a path or a URI)
    versions: dict[str, str | None] = dataclasses.field(default_factory=dict)  # packages
    git_commit: str | None = None
    hardware: dict[str, Any] = dataclasses.field(default_factory=dict)
    presets: dict[str, str] = dataclasses.field(default_factory=dict)  # core.presets sources
    data_details: dict[str, Any] | None = None  # trainables.describe.data_details
    models: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # .model_details
    experiments: dict[str, Any] | None = None  # the experiments study's plan (study.run)
    # -- written when a run ends (study.run.record_outcome)
    runs: list[dict[str, float]] = dataclasses.field(default_factory=list)  # started/finished_at
    finished_at: float | None = None  # None: running, or killed (then `--resume`)
    wall_s: float | None = None  # the runs' own wall time, summed
    tune_wall_s: float | None = None
    stopped_on_budget: str | None = None
    cluster_energy: dict[str, Any] | None = None  # study.cluster_meter.ClusterMeter.finish
    budget: dict[str, Any] | None = None  # study.run.budget_record
    cost: dict[str, Any] | None = None  # billed and attributed dollars
    carbon: dict[str, Any] | None = None  # core.footprint.carbon_accounting
    selection: dict[str, Any] | None = None  # the selected trial (study.run)
    test: dict[str, Any] | None = None  # its held-out test (study.run.evaluate_selected_model)
    mlflow_run_id: str | None = None  # the study's parent run, where --mlflow logged it
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)  # keys this version lacks

    def section(self, name: str) -> dict[str, Any]:
        """A section as a JSON object: {} where it is missing (or, in a hand-edited file, is
        not an object), so readers need no checks of their own."""
        value = getattr(self, name)
        return value if isinstance(value, dict) else {}

    @property
    def running(self) -> bool:
        """No run has finished (a study in progress, or one that was killed)."""
        return self.finished_at is None

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        return {**data.pop("extra"), **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyMetadata:
        names = {f.name for f in dataclasses.fields(cls)} - {"extra"}
        known = {k: v for k, v in data.items() if k in names}
        return cls(**known, extra={k: v for k, v in data.items() if k not in names})


def metadata_path(study_dir: str | Path) -> Path:
    return Path(study_dir) / METADATA_FILE


def read_metadata(study_dir: str | Path) -> StudyMetadata:
    """The study folder's metadata.json; MetadataError names the file and the fault."""
    return parse_metadata(metadata_path(study_dir).read_bytes(), str(metadata_path(study_dir)))


def parse_metadata(raw: bytes | str, where: str = METADATA_FILE) -> StudyMetadata:
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise MetadataError(f"{where}: unreadable or corrupt JSON ({e})") from e
    if not isinstance(data, dict):
        raise MetadataError(f"{where}: expected a JSON object, got {type(data).__name__}")
    return StudyMetadata.from_dict(data)


def write_metadata(study_dir: str | Path, metadata: StudyMetadata) -> None:
    """Write metadata.json atomically: a reader sees the old file or the new one, never half."""
    path = metadata_path(study_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as f:
        f.write(json.dumps(metadata.to_dict(), indent=2, default=str))
        f.flush()
        os.fsync(f.fileno())  # on disk before the rename makes it the file
    os.replace(tmp, path)
