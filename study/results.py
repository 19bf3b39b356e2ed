"""Tidy parquet as trials report: `reports.parquet` (a row per report), `trials.parquet` (a trial).

`ResultsWriter` is a Tune callback in the study process. Each report becomes a row at once; the
tables are rewritten atomically (temp file, then rename) at most every `flush_interval_s`, and at
the end, so a killed study keeps what it reported. On `--resume` the writer starts from the rows
already on disk and adds any row it finds in Tune's per-trial `result.json` that is missing
(what the last second before a kill did not flush), so every report appears once.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from ray.tune import Callback

from core import schema
from core.storage import Mirror

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

ERRORS_IN_A_ROW = 3  # the study stops after this many trials in a row end in ERROR

# Tune's own bookkeeping keys we keep, renamed; every other key of a result is ours already.
_DROP = {
    "config",
    "date",
    "hostname",
    "node_ip",
    "pid",
    "time_this_iter_s",
    "time_since_restore",
    "iterations_since_restore",
    "checkpoint_dir_name",
    "should_checkpoint",
    "done",
    "experiment_tag",
    "time_total_s",
    "timestamp",
    "trial_id",
    "training_iteration",
    schema.REPORT_TIME_S,
}


def report_row(
    result: dict[str, Any], trial_id: str, study: str, strategy: str, seed: int, started_at: float
) -> dict[str, Any]:
    """One tidy row from a Tune result dict."""
    timestamp = result.get(schema.REPORT_TIME_S) or result.get("timestamp") or time.time()
    row = {
        schema.STUDY: study,
        schema.STRATEGY: strategy,
        schema.SEED: seed,
        schema.TRIAL_ID: trial_id,
        schema.ITERATION: result.get("training_iteration"),
        schema.REPORT_ID: f"{trial_id}:{timestamp:.6f}",
        schema.TIMESTAMP_S: timestamp,
        schema.STUDY_ELAPSED_S: timestamp - started_at,
    }
    row.update({k: v for k, v in result.items() if k not in _DROP and not isinstance(v, dict)})
    for key, value in (result.get("config") or {}).items():
        row[schema.CONFIG_PREFIX + key] = value
    return row


def select_model(reports: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    """The report whose checkpoint is the study's selected model: the best validation `metric`
    over every report that saved a checkpoint; ties go to the earliest report."""
    scored = [
        r
        for r in reports
        if isinstance(r.get(metric), (int, float))
        and math.isfinite(r[metric])
        and r.get(schema.CHECKPOINT_PATH)
    ]
    if not scored:
        return None
    sign = 1.0 if mode == "max" else -1.0
    return min(scored, key=lambda r: (-sign * r[metric], r[schema.TIMESTAMP_S]))


def supersedes(new: dict[str, Any], old: dict[str, Any]) -> bool:
    """Whether `new` replaces `old`: after a restart from its own checkpoint at iteration k (a
    crash, `--resume`), a trial trains iterations k+1, ... again; the reports it made of them
    before the restart describe lost work (their energy stays in the whole-cluster figure), so
    each iteration is kept once: the later one."""
    trial = new.get(schema.TRIAL_ID)
    if new.get(schema.RESTORED_FROM) != trial or old.get(schema.TRIAL_ID) != trial:
        return False
    from_iteration = new.get(schema.RESTORED_FROM_ITERATION)
    if from_iteration is None or from_iteration != from_iteration:  # NaN: not a restart
        return False
    return old.get(schema.ITERATION, 0) > from_iteration and old.get(schema.SEGMENT, 0) < new.get(
        schema.SEGMENT, 0
    )


def trial_rows(
    reports: pd.DataFrame, statuses: dict[str, dict[str, Any]], metric: str, mode: str
) -> pd.DataFrame:
    """One row per trial: config, status, stop reason, counts, best and final figures."""
    rows = []
    for trial_id, group in reports.sort_values(schema.TIMESTAMP_S).groupby(
        schema.TRIAL_ID, sort=False
    ):
        last = group.iloc[-1]
        info = statuses.get(trial_id, {})
        row = {k: last[k] for k in (schema.STUDY, schema.STRATEGY, schema.SEED, schema.TRIAL_ID)}
        row.update({k: last[k] for k in group.columns if k.startswith(schema.CONFIG_PREFIX)})
        row[schema.STATUS] = info.get("status", "RUNNING")
        row[schema.STOP_REASON] = info.get("stop_reason") or _stop_reason(row[schema.STATUS], last)
        row[schema.N_REPORTS] = len(group)
        for col in (*schema.ROUGE_COLUMNS, schema.VAL_LOSS):
            if col in group:
                best = (
                    group[col].max()
                    if (mode == "max") == (col != schema.VAL_LOSS)
                    else group[col].min()
                )
                row[schema.BEST_PREFIX + col] = best
                row[schema.FINAL_PREFIX + col] = last[col]
        for col in (
            schema.ENERGY_GPU_J,
            schema.ENERGY_CPU_J,
            schema.ENERGY_RAM_J,
            schema.ENERGY_TOTAL_J,
            schema.ENERGY_GPU_SOURCE,
            schema.ENERGY_CPU_SOURCE,
            schema.ENERGY_RAM_SOURCE,
            schema.DEVICE_S,
            schema.CO2_KG,
            schema.COST_USD,
            schema.TRIAL_EPOCHS,
            schema.TRIAL_TRAIN_S,
            schema.TRIAL_EVAL_S,
            schema.SEGMENT,
            *schema.TEST_ROUGE,  # eval.test_every_trial: the trial's final model on test data
            schema.TEST_N,
        ):
            if col in group:
                row[col] = last[col]
        scored = group[metric].astype(float).dropna() if metric in group else pd.Series(dtype=float)
        if len(scored):  # a trial whose metric is all NaN (diverged) has no best report
            best_idx = scored.idxmax() if mode == "max" else scored.idxmin()
            row["best_" + schema.TIMESTAMP_S] = group.loc[best_idx, schema.TIMESTAMP_S]
        else:
            row["best_" + schema.TIMESTAMP_S] = float("nan")
        row["first_" + schema.TIMESTAMP_S] = group[schema.TIMESTAMP_S].min()
        rows.append(row)
    reported = {r[schema.TRIAL_ID] for r in rows}
    for trial_id, info in statuses.items():  # a trial that ended before its first report
        if trial_id not in reported and info.get("identity"):
            rows.append(
                {
                    **info["identity"],
                    schema.TRIAL_ID: trial_id,
                    schema.STATUS: info["status"],
                    schema.STOP_REASON: info.get("stop_reason") or "",
                    schema.N_REPORTS: 0,
                    **{schema.CONFIG_PREFIX + k: v for k, v in (info.get("config") or {}).items()},
                }
            )
    return typed(pd.DataFrame(rows))


def typed(df: pd.DataFrame) -> pd.DataFrame:
    """The declared column types: a numeric column that is all missing is float NaN, not Arrow
    null (so a sum stays NaN, never 0), and each report time also as a UTC datetime."""
    df = df.copy()
    for col in df.columns:
        if col not in schema.STRING_COLUMNS and df[col].dtype == object and df[col].isna().all():
            df[col] = df[col].astype(float)
    if schema.TIMESTAMP_S in df.columns:
        df[schema.TIMESTAMP_UTC] = pd.to_datetime(df[schema.TIMESTAMP_S], unit="s", utc=True)
    return df


def _stop_reason(status: str, last: pd.Series) -> str:
    if status == "ERROR":
        return schema.STOP_ERROR
    if bool(last.get(schema.EARLY_STOPPED, False)):
        return schema.STOP_EARLY
    return schema.STOP_COMPLETED if status == "TERMINATED" else ""


def write_parquet_atomic(df: pd.DataFrame, path: Path) -> None:
    """Write to a temporary name, then rename: a reader sees the old table or the new one; a
    failed write leaves no temporary file behind."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class ResultsWriter(Callback):
    """Streams Tune results into the study folder's parquet tables."""

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "scheduler": None}  # Tune pickles callbacks; reattached on resume

    def __init__(
        self,
        study_dir: Path,
        study: str,
        strategy: str,
        seed: int,
        started_at: float,
        metric: str,
        mode: str,
        max_reports: int,
        flush_interval_s: float = 1.0,
        mirror: Mirror | None = None,
    ):
        self.study_dir = Path(study_dir)
        self.mirror = mirror  # a URI study: every table copied to the URI once written
        self.study, self.strategy, self.seed = study, strategy, seed
        self.started_at, self.metric, self.mode = started_at, metric, mode
        self.max_reports = max_reports
        self.flush_interval_s = flush_interval_s
        self.budget_stopper = None  # a study.budget.BudgetStopper, to name budget stops
        self.scheduler = (
            None  # with greentune's PBT: its exploit decisions go to pbt_decisions.parquet
        )
        self.errors_in_a_row = 0  # trials ended in ERROR since the last one that did not
        self.rows: list[dict[str, Any]] = []
        self.statuses: dict[str, dict[str, Any]] = {}
        self._seen: set[str] = set()
        self._dirty, self._last_flush = False, 0.0
        self._selected, self._selected_for = None, None
        existing = self.study_dir / schema.REPORTS_FILE
        if existing.exists():
            self._extend(pd.read_parquet(existing).to_dict("records"))
            trials = self.study_dir / schema.TRIALS_FILE
            if trials.exists():
                for rec in pd.read_parquet(trials).to_dict("records"):
                    self.statuses[rec[schema.TRIAL_ID]] = {
                        "status": rec[schema.STATUS],
                        "stop_reason": rec[schema.STOP_REASON],
                    }

    def _extend(self, rows: list[dict[str, Any]]) -> None:
        for row in rows:
            if row[schema.REPORT_ID] not in self._seen:
                self._seen.add(row[schema.REPORT_ID])
                if row.get(schema.RESTORED_FROM) == row.get(schema.TRIAL_ID):  # a restart: rare
                    self.rows = [r for r in self.rows if not supersedes(row, r)]
                self.rows.append(row)
                self._dirty = True

    def recover_from_tune_logs(self, tune_dir: str | None = None) -> int:
        """Add rows present in Tune's per-trial result.json but missing here (after a kill).
        `tune_dir` is where Tune keeps the trial folders: a URI storage's study folder, read
        through pyarrow.fs (default: the study folder here)."""
        import pyarrow.fs

        from core import storage

        location = tune_dir if tune_dir is not None else str(self.study_dir)
        fs, root = storage.filesystem(location)
        before = len(self.rows)
        entries = fs.get_file_info(pyarrow.fs.FileSelector(root, allow_not_found=True))
        for name in sorted(e.base_name for e in entries if e.type == pyarrow.fs.FileType.Directory):
            text = storage.read_text(storage.join(location, name, "result.json"))
            if not text:
                continue
            params_text = storage.read_text(storage.join(location, name, "params.json"))
            params = json.loads(params_text) if params_text else {}
            for line in text.splitlines():
                if line.strip():
                    result = json.loads(line)
                    result.setdefault("config", params)
                    self._extend(
                        [
                            report_row(
                                result,
                                result["trial_id"],
                                self.study,
                                self.strategy,
                                self.seed,
                                self.started_at,
                            )
                        ]
                    )
        self.flush()
        return len(self.rows) - before

    # ---- Tune callback hooks
    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        self._extend(
            [
                report_row(
                    result, trial.trial_id, self.study, self.strategy, self.seed, self.started_at
                )
            ]
        )
        self.statuses[trial.trial_id] = {"status": "RUNNING"}
        if time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.statuses[trial.trial_id] = {
            "status": "TERMINATED",
            "stop_reason": self._stop_reason(trial),
        }
        self.errors_in_a_row = 0
        self._dirty = True
        self.flush()

    def _stop_reason(self, trial: Trial) -> str:
        """Why a terminated trial ended: its own early stopping, the study budget, the scheduler
        (ASHA), or it completed its epoch budget."""
        last = trial.last_result or {}
        if last.get(schema.EARLY_STOPPED):
            return schema.STOP_EARLY
        if last.get("training_iteration", 0) >= self.max_reports:
            return schema.STOP_COMPLETED
        stopped_on_budget = getattr(self.budget_stopper, "reason", None)
        return schema.STOP_BUDGET if stopped_on_budget else schema.STOP_SCHEDULER

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.statuses[trial.trial_id] = {
            "status": "ERROR",
            "stop_reason": schema.STOP_ERROR,
            "config": dict(trial.config),
            "identity": {
                schema.STUDY: self.study,
                schema.STRATEGY: self.strategy,
                schema.SEED: self.seed,
            },
        }
        # A sampler starts trials until the budget is spent, and an errored trial spends little:
        # trials that keep failing (a setting every trial trips on) would loop without end.
        self.errors_in_a_row += 1
        if self.errors_in_a_row >= ERRORS_IN_A_ROW and self.budget_stopper is not None:
            self.budget_stopper.halt(
                f"{self.errors_in_a_row} trials in a row ended in ERROR; see their error.txt"
            )
        self._dirty = True
        self.flush()

    def on_step_end(self, iteration: int, trials: list[Trial], **info: Any) -> None:
        if self._dirty and time.monotonic() - self._last_flush >= self.flush_interval_s:
            self.flush()

    def on_experiment_end(self, trials: list[Trial], **info: Any) -> None:
        for trial in trials:
            if (
                trial.trial_id not in self.statuses
                or self.statuses[trial.trial_id]["status"] == "RUNNING"
            ):
                reason = self._stop_reason(trial) if trial.status == "TERMINATED" else None
                self.statuses[trial.trial_id] = {"status": trial.status, "stop_reason": reason}
        self._dirty = True
        self.flush()

    def flush(self) -> None:
        """Rewrite the tables. A failed write (a full disk) warns and keeps every row in memory;
        the next flush tries again, and the files on disk stay as they were (never half-written)."""
        self._last_flush = time.monotonic()
        if not self._dirty or not (self.rows or self.statuses):
            return
        reports = (
            pd.DataFrame(self.rows)
            if self.rows
            else pd.DataFrame(
                columns=[
                    schema.STUDY,
                    schema.STRATEGY,
                    schema.SEED,
                    schema.TRIAL_ID,
                    schema.TIMESTAMP_S,
                ]
            )
        )
        try:
            write_parquet_atomic(typed(reports), self.study_dir / schema.REPORTS_FILE)
            write_parquet_atomic(
                trial_rows(reports, self.statuses, self.metric, self.mode),
                self.study_dir / schema.TRIALS_FILE,
            )
            decisions = getattr(self.scheduler, "decisions", None)
            if decisions:
                name = getattr(self.scheduler, "decisions_file", schema.PBT_DECISIONS_FILE)
                write_parquet_atomic(pd.DataFrame(decisions), self.study_dir / name)
        except OSError as e:
            warnings.warn(
                f"could not write the study's tables ({e.strerror or e}); {len(self.rows)} "
                "reports kept in memory, writing again at the next report",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        self._dirty = False
        if self.mirror is not None:
            self.mirror.push(schema.REPORTS_FILE, schema.TRIALS_FILE, schema.PBT_DECISIONS_FILE)

    def latest_per_trial(self) -> dict[str, dict[str, Any]]:
        """Each trial's latest report (its running totals)."""
        latest: dict[str, dict[str, Any]] = {}
        for row in sorted(self.rows, key=lambda r: r[schema.TIMESTAMP_S]):
            latest[row[schema.TRIAL_ID]] = row
        return latest

    def selected(self) -> dict[str, Any] | None:
        """The report whose checkpoint is the study's selected model so far (`select_model`):
        what the checkpoint janitor keeps and what the held-out evaluation scores."""
        key = (len(self.rows), id(self.rows[-1]) if self.rows else None)
        if self._selected_for != key:
            self._selected, self._selected_for = (
                select_model(self.rows, self.metric, self.mode),
                key,
            )
        return self._selected
