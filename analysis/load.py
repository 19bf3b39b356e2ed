"""Read study folders (see `core.schema`) into `Study` objects, checking they can be compared.

    >>> studies = load_studies(["results/pbt-tiny-bart-builtin-seed0", "results/grid-...-seed0"])
    >>> studies[0].strategy, studies[0].running, len(studies[0].reports)
    ('pbt', False, 48)

Every problem raises `StudyLoadError` (a `ValueError`) whose message names the folder or file and
what to do about it. A study whose `finished_at` is still null loads as it stands (partial) and is
marked `running=True`; it may have no `trials.parquet` yet, in which case its trial table is derived
from its reports.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.metadata import MetadataError, StudyMetadata, parse_metadata
from core.schema import (
    CONFIG_PREFIX,
    INFERENCE_FILE,
    METADATA_FILE,
    N_REPORTS,
    REPORT_ID,
    REPORTS_FILE,
    SEED,
    STATUS,
    STOP_REASON,
    STRATEGY,
    STUDY,
    STUDY_ELAPSED_S,
    TEST_SCORES_FILE,
    TIMESTAMP_S,
    TRIAL_ID,
    TRIALS_FILE,
)


class StudyLoadError(ValueError):
    """A study folder that cannot be read, or studies that cannot be compared."""


@dataclass(frozen=True, eq=False)
class Study:
    """One study (one strategy, one seed) as read from its folder."""

    name: str
    strategy: str
    seed: int
    metadata: StudyMetadata
    reports: pd.DataFrame  # one row per trial report, sorted by study_elapsed_s
    trials: pd.DataFrame  # one row per trial
    running: bool  # finished_at is null: the figures are partial
    path: Path | None = None
    test_scores: pd.DataFrame | None = None  # the selected model on the held-out split, per example
    inference: pd.DataFrame | None = (
        None  # `study.run infer`'s rows (core.schema.INFERENCE_COLUMNS)
    )

    @property
    def config(self) -> dict[str, Any]:
        return self.metadata.section("config")

    @property
    def dataset(self) -> str | None:
        return (self.config.get("data") or {}).get("dataset")

    @property
    def model(self) -> str | None:
        return (self.config.get("model") or {}).get("name")

    @property
    def metric(self) -> str:
        return (self.config.get("search") or {}).get("metric", "rougeL")

    @property
    def mode(self) -> str:
        return (self.config.get("search") or {}).get("mode", "max")

    @property
    def footprint(self) -> dict[str, Any]:
        return self.metadata.section("footprint")

    @property
    def wall_s(self) -> float:
        """Wall time in seconds: finished_at - started_at, or the last report while running."""
        started, finished = self.metadata.started_at, self.metadata.finished_at
        if started is not None and finished is not None:
            return float(finished) - float(started)
        if len(self.reports):
            return float(self.reports[STUDY_ELAPSED_S].max())
        return float("nan")


def load_study(path: str | Path) -> Study:
    """Read one study folder: `metadata.json`, `reports.parquet` and `trials.parquet`."""
    folder = Path(path)
    if not folder.is_dir():
        raise StudyLoadError(
            f"{folder}: not a folder; pass a study folder (one that holds {METADATA_FILE})"
        )
    meta_path = folder / METADATA_FILE
    if not meta_path.is_file():
        raise StudyLoadError(
            f"{folder}: not a study folder (no {METADATA_FILE}); pass the folder a study wrote"
        )
    try:
        metadata = parse_metadata(meta_path.read_bytes(), str(meta_path))
    except OSError as e:
        raise StudyLoadError(f"{meta_path}: unreadable ({e})") from e
    except MetadataError as e:
        raise StudyLoadError(str(e)) from e
    for key in ("strategy", "seed"):
        if getattr(metadata, key) is None:
            raise StudyLoadError(f"{meta_path}: missing {key!r}; is this a greentune study?")
    running = metadata.finished_at is None
    name = str(metadata.study or folder.name)

    reports = _read_parquet(folder / REPORTS_FILE)
    for col in (TRIAL_ID, STUDY_ELAPSED_S):
        if col not in reports.columns:
            raise StudyLoadError(
                f"{folder / REPORTS_FILE}: no {col!r} column; not a greentune reports table"
            )
    reports = _with_identity(reports, name, metadata)
    reports = _with_cluster_spend(reports, metadata)
    order = [STUDY_ELAPSED_S] + ([REPORT_ID] if REPORT_ID in reports.columns else [])
    reports = reports.sort_values(order, kind="stable").reset_index(drop=True)

    trials_path = folder / TRIALS_FILE
    if trials_path.exists() or not running:
        trials = _read_parquet(trials_path)
        if TRIAL_ID not in trials.columns:
            raise StudyLoadError(
                f"{trials_path}: no {TRIAL_ID!r} column; not a greentune trials table"
            )
        trials = _with_identity(trials, name, metadata)
    else:  # a running study that has not written its trial table yet
        trials = _trials_from_reports(reports)
    if running:
        trials = _mark_unreported_running(trials, reports)

    test_path = folder / TEST_SCORES_FILE
    test_scores = _read_parquet(test_path) if test_path.is_file() else None
    inference_path = folder / INFERENCE_FILE
    inference = _read_parquet(inference_path) if inference_path.is_file() else None

    return Study(
        name=name,
        strategy=str(metadata.strategy),
        seed=int(metadata.seed),
        metadata=metadata,
        reports=reports,
        trials=trials.reset_index(drop=True),
        running=running,
        path=folder,
        test_scores=test_scores,
        inference=inference,
    )


# What must be equal for studies to be compared: (field, where it lives in metadata.json)
COMPARISON_FIELDS = (
    "model.name",
    "data.dataset",
    "data.n_train",
    "data.n_validation",
    "data.n_test",
    "data.max_source_tokens",
    "data.max_target_tokens",
    "data.train_split",
    "data.validation_split",
    "data.test_split",
    "data.seed",
    "train.epochs",
    "train.evals_per_epoch",
    "search.metric",
    "search.mode",
    "search_space",
    "budget",
)


def comparison_value(study: Study, field: str) -> Any:
    """The value of a comparison field in a study's metadata (None where it does not say)."""
    meta = study.metadata
    if field == "search_space":
        space = meta.section("search_space")
        return json.dumps({"parameters": space.get("parameters")}, sort_keys=True, default=str)
    if field == "budget":
        derived = meta.section("derived")
        unit = derived.get("budget_unit", "trial_epochs")
        amount = derived.get("budget_amount", derived.get("budget_trial_epochs"))
        return (
            f"{unit}={amount:g} ({derived.get('budget_scope', 'cluster')})"
            if amount is not None
            else None
        )
    section, _, key = field.partition(".")
    return (study.config.get(section) or {}).get(key)


@dataclass(frozen=True)
class Mismatch:
    field: str
    values: dict[str, Any]  # study name -> value

    def describe(self) -> str:
        def short(v: Any) -> str:
            text = str(v)
            return text if len(text) <= 60 else text[:57] + "..."

        return (
            f"{self.field} (" + "; ".join(f"{k}: {short(v)}" for k, v in self.values.items()) + ")"
        )


def mismatches(studies: list[Study]) -> list[Mismatch]:
    """The comparison fields in which the studies differ."""
    out = []
    for field in COMPARISON_FIELDS:
        values = {s.name: comparison_value(s, field) for s in studies}
        if len({json.dumps(v, sort_keys=True, default=str) for v in values.values()}) > 1:
            out.append(Mismatch(field, values))
    return out


def load_studies(paths: Iterable[str | Path], allow_mismatch: bool = False) -> list[Study]:
    """Load several studies and check they can be compared: same model, dataset, data sizes,
    epochs, search space, budget and metric (`COMPARISON_FIELDS`). A difference raises
    StudyLoadError naming the first differing field, unless `allow_mismatch` (then
    `mismatches(studies)` says what differs, and the report states it)."""
    paths = list(paths)
    if not paths:
        raise StudyLoadError("no study folders given; pass at least one")
    studies = [load_study(p) for p in paths]
    seen: dict[str, Study] = {}
    for s in studies:
        if s.name in seen:
            raise StudyLoadError(
                f"{s.path}: study {s.name!r} is also at {seen[s.name].path}; pass each study once"
            )
        seen[s.name] = s
    found = mismatches(studies)
    if found and not allow_mismatch:
        raise StudyLoadError(
            f"studies differ in {found[0].describe()}; a comparison needs the same setup: compare "
            "studies that share it, or pass --allow-mismatch (the report then says what differs)"
        )
    return studies


# --------------------------------------------------------------------------------------------


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise StudyLoadError(f"{path}: missing; the study folder is incomplete")
    try:
        return pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise StudyLoadError(
            f"{path}: corrupt or unreadable parquet ({type(e).__name__}: {e})"
        ) from e


def _with_identity(df: pd.DataFrame, name: str, metadata: StudyMetadata) -> pd.DataFrame:
    """Fill the study/strategy/seed columns from the metadata where the table lacks them."""
    df = df.copy()
    for col, value in (
        (STUDY, name),
        (STRATEGY, str(metadata.strategy)),
        (SEED, int(metadata.seed)),
    ):
        if col not in df.columns:
            df[col] = value
    return df


# Whole-cluster running totals at each report, from the cluster meter's series (metadata.json)
CLUSTER_ENERGY_J = "cluster_energy_j"
CLUSTER_CO2_KG = "cluster_co2_kg"
CLUSTER_BILLED_USD = "cluster_billed_usd"


def _with_cluster_spend(reports: pd.DataFrame, metadata: StudyMetadata) -> pd.DataFrame:
    """Add the whole cluster's energy, CO2 and billed dollars spent by each report's moment,
    interpolated linearly between the cluster meter's polls (NaN where the study has no series:
    before its first poll, or an older study). Earlier runs of a resumed study are added."""
    reports = reports.copy()
    ce = metadata.section("cluster_energy")
    series = (ce.get("series") or {}).get("rows") or []
    offsets = [0.0, 0.0, 0.0]
    for run in ce.get("previous_runs") or []:
        for i, key in enumerate(("energy_j", "co2_kg", "billed_usd")):
            if isinstance(run.get(key), (int, float)):
                offsets[i] += run[key]
    for i, column in enumerate((CLUSTER_ENERGY_J, CLUSTER_CO2_KG, CLUSTER_BILLED_USD)):
        points = [(row[0], row[i + 1]) for row in series if row[i + 1] is not None]
        if len(points) < 2 or TIMESTAMP_S not in reports.columns:
            reports[column] = float("nan")
            continue
        times, values = zip(*points)
        t = reports[TIMESTAMP_S].astype(float).to_numpy()
        interpolated = np.interp(t, times, values, left=np.nan, right=values[-1])
        reports[column] = interpolated + offsets[i]
    return reports


def _trials_from_reports(reports: pd.DataFrame) -> pd.DataFrame:
    first = reports.groupby(TRIAL_ID, sort=False).head(1)
    config_cols = [c for c in reports.columns if c.startswith(CONFIG_PREFIX)]
    trials = first[[STUDY, STRATEGY, SEED, TRIAL_ID, *config_cols]].copy()
    trials[STATUS] = "RUNNING"
    trials[STOP_REASON] = None
    trials[N_REPORTS] = trials[TRIAL_ID].map(reports.groupby(TRIAL_ID).size())
    return trials


def _mark_unreported_running(trials: pd.DataFrame, reports: pd.DataFrame) -> pd.DataFrame:
    """Trials that reported but have no status yet count as running."""
    trials = trials.copy()
    if STATUS not in trials.columns:
        trials[STATUS] = "RUNNING"
    if STOP_REASON not in trials.columns:
        trials[STOP_REASON] = None
    missing = set(reports[TRIAL_ID]) - set(trials[TRIAL_ID])
    if missing:
        extra = _trials_from_reports(reports[reports[TRIAL_ID].isin(missing)])
        trials = pd.concat([trials, extra], ignore_index=True)
    return trials
