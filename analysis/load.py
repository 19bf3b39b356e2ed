"""Read study folders (see `study.schema`) into `Study` objects, checking they can be compared.

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

import pandas as pd

from study.schema import (
    CONFIG_PREFIX,
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
    metadata: dict[str, Any]
    reports: pd.DataFrame  # one row per trial report, sorted by study_elapsed_s
    trials: pd.DataFrame  # one row per trial
    running: bool  # finished_at is null: the figures are partial
    path: Path | None = None

    @property
    def config(self) -> dict[str, Any]:
        return self.metadata.get("config") or {}

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
        return self.metadata.get("footprint") or {}

    @property
    def wall_s(self) -> float:
        """Study wall time in seconds: finished_at - started_at, or the last report while running."""
        started, finished = self.metadata.get("started_at"), self.metadata.get("finished_at")
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
        metadata = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise StudyLoadError(f"{meta_path}: unreadable or corrupt JSON ({e})") from e
    if not isinstance(metadata, dict):
        raise StudyLoadError(f"{meta_path}: expected a JSON object, got {type(metadata).__name__}")
    for key in ("strategy", "seed"):
        if metadata.get(key) is None:
            raise StudyLoadError(f"{meta_path}: missing {key!r}; is this a greentune study?")
    running = metadata.get("finished_at") is None
    name = str(metadata.get("study") or folder.name)

    reports = _read_parquet(folder / REPORTS_FILE)
    for col in (TRIAL_ID, STUDY_ELAPSED_S):
        if col not in reports.columns:
            raise StudyLoadError(
                f"{folder / REPORTS_FILE}: no {col!r} column; not a greentune reports table"
            )
    reports = _with_identity(reports, name, metadata)
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

    return Study(
        name=name,
        strategy=str(metadata["strategy"]),
        seed=int(metadata["seed"]),
        metadata=metadata,
        reports=reports,
        trials=trials.reset_index(drop=True),
        running=running,
        path=folder,
    )


def load_studies(paths: Iterable[str | Path]) -> list[Study]:
    """Load several studies and check they measure the same thing (dataset, metric and mode)."""
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
    for attr, what in (
        ("dataset", "datasets"),
        ("metric", "search metrics"),
        ("mode", "search modes"),
    ):
        values = {getattr(s, attr) for s in studies}
        if len(values) > 1:
            detail = "; ".join(f"{s.path}: {getattr(s, attr)}" for s in studies)
            raise StudyLoadError(f"studies with different {what} cannot be compared ({detail})")
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


def _with_identity(df: pd.DataFrame, name: str, metadata: dict[str, Any]) -> pd.DataFrame:
    """Fill the study/strategy/seed columns from the metadata where the table lacks them."""
    df = df.copy()
    for col, value in (
        (STUDY, name),
        (STRATEGY, str(metadata["strategy"])),
        (SEED, int(metadata["seed"])),
    ):
        if col not in df.columns:
            df[col] = value
    return df


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
