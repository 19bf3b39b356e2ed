"""MLflow as its users expect: one parent run per study, one nested run per trial.

The parent run (named after the study) carries the full resolved config as params, tags for
strategy, seed, model, dataset and study, the study's totals as metrics once it ends (the whole
cluster's energy and its overhead, the trials' own energy, CO2, billed cost, the selected model's
test ROUGE) and the study folder's files as artifacts (metadata.json, the parquet tables, the
cluster reading, `best_model/`). Each trial is a nested run (tag `mlflow.parentRunId`) named by
its trial id, with its hyperparameters as params, the figures of every report as metrics (step
= the report's number: quality, throughput, energy, CO2, cost) and how each energy part was
obtained as tags; none of Tune's bookkeeping. A resumed study logs into the same runs.

Works with any tracking URI MLflow opens (a server, `sqlite:///mlflow.db`, an AzureML
workspace's MLflow URI). MLflow is an optional dependency (`pip install -e ".[mlflow]"`).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ray.tune import Callback

from core import schema
from core.measurement import ENERGY_PARTS

if TYPE_CHECKING:
    from ray.tune.experiment import Trial

    from core.metadata import StudyMetadata

# What a trial's run records of each report (Tune's bookkeeping, the config, ids stay out)
TRIAL_METRICS = (
    *schema.ROUGE_COLUMNS,
    schema.VAL_LOSS,
    schema.TRAIN_LOSS,
    schema.TRIAL_EPOCHS,
    schema.SAMPLES_PER_S,
    schema.TOKENS_PER_S,
    schema.DEVICE_S,
    schema.ENERGY_TOTAL_J,
    *(f"energy_{part}_j" for part in ENERGY_PARTS),
    schema.CO2_KG,
    schema.COST_USD,
    schema.PEAK_RSS_BYTES,
)
SOURCE_TAGS = tuple(f"energy_{part}_source" for part in ENERGY_PARTS)
STUDY_FILES = (
    schema.METADATA_FILE,
    schema.REPORTS_FILE,
    schema.TRIALS_FILE,
    schema.TEST_SCORES_FILE,
    schema.CLUSTER_ENERGY_FILE,
)
TRIAL_TAG = "greentune.trial_id"
MAX_PARAM_CHARS = 500  # MLflow's limit on a param's value
BATCH = 100  # params per log_batch call (MLflow's limit)


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """{"train": {"lr": 1e-3}} -> {"train.lr": "0.001"}: the config as MLflow params."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)[:MAX_PARAM_CHARS]
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class MlflowStudy(Callback):
    """The study's parent run and its trials' nested runs, as Tune reports."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str,
        study: str,
        tags: dict[str, str],
        config: dict[str, Any],
        parent_run_id: str | None = None,
    ):
        self.tracking_uri, self.experiment, self.study = tracking_uri, experiment, study
        self.tags, self.config = tags, config
        self.parent_run_id = parent_run_id  # set: a resumed study's own run
        self._client: Any = None
        self._children: dict[str, str] = {}  # trial id -> its run id

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_client": None}  # Tune pickles callbacks; the client reconnects

    @property
    def client(self) -> Any:
        if self._client is None:
            from mlflow.tracking import MlflowClient

            self._client = MlflowClient(tracking_uri=self.tracking_uri)
        return self._client

    def start(self) -> str:
        """Create (or, resumed, reopen) the parent run; returns its id for metadata.json."""
        from mlflow.entities import Param, RunTag

        if self.parent_run_id is not None:
            self.client.update_run(self.parent_run_id, status="RUNNING")
            return self.parent_run_id
        found = self.client.get_experiment_by_name(self.experiment)
        experiment_id = (
            found.experiment_id if found else self.client.create_experiment(self.experiment)
        )
        run = self.client.create_run(
            experiment_id, run_name=self.study, tags={**self.tags, "greentune.study": self.study}
        )
        self.parent_run_id = run.info.run_id
        params = [Param(k, v) for k, v in flatten(self.config).items()]
        for i in range(0, len(params), BATCH):
            self.client.log_batch(self.parent_run_id, params=params[i : i + BATCH])
        self.client.log_batch(self.parent_run_id, tags=[RunTag("greentune.kind", "study")])
        return self.parent_run_id

    def _child(self, trial: Trial) -> str:
        """The trial's nested run: made at its first report, found again after a resume."""
        if trial.trial_id in self._children:
            return self._children[trial.trial_id]
        parent = self.client.get_run(self.parent_run_id)
        found = self.client.search_runs(
            [parent.info.experiment_id],
            filter_string=(
                f"tags.`mlflow.parentRunId` = '{self.parent_run_id}' "
                f"and tags.`{TRIAL_TAG}` = '{trial.trial_id}'"
            ),
        )
        if found:
            run_id = found[0].info.run_id
        else:
            from mlflow.entities import Param

            run = self.client.create_run(
                parent.info.experiment_id,
                run_name=trial.trial_id,
                tags={
                    **self.tags,
                    "mlflow.parentRunId": self.parent_run_id,
                    TRIAL_TAG: trial.trial_id,
                    "greentune.study": self.study,
                },
            )
            run_id = run.info.run_id
            params = [Param(k, v) for k, v in flatten(dict(trial.config)).items()]
            self.client.log_batch(run_id, params=params)
        self._children[trial.trial_id] = run_id
        return run_id

    def on_trial_result(
        self, iteration: int, trials: list[Trial], trial: Trial, result: dict[str, Any], **info: Any
    ) -> None:
        from mlflow.entities import Metric, RunTag

        run_id = self._child(trial)
        step = int(result.get("training_iteration") or 0)
        now_ms = int(time.time() * 1000)
        metrics = [
            Metric(k, float(result[k]), now_ms, step)
            for k in TRIAL_METRICS
            if _finite(result.get(k))
        ]
        tags = [RunTag(k, str(result[k])) for k in SOURCE_TAGS if result.get(k)]
        self.client.log_batch(run_id, metrics=metrics, tags=tags)

    def on_trial_complete(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        if trial.trial_id in self._children:
            self.client.set_terminated(self._children[trial.trial_id], "FINISHED")

    def on_trial_error(
        self, iteration: int, trials: list[Trial], trial: Trial, **info: Any
    ) -> None:
        self.client.set_terminated(self._child(trial), "FAILED")

    def finish(self, metadata: StudyMetadata, study_dir: Path) -> None:
        """The study's totals as the parent's metrics, its files as artifacts; the run ends."""
        from mlflow.entities import Metric

        cluster, carbon = metadata.section("cluster_energy"), metadata.section("carbon")
        test, cost = metadata.section("test"), metadata.section("cost")
        totals = {
            "cluster_energy_j": cluster.get("energy_j"),
            "overhead_energy_j": cluster.get("overhead_energy_j"),
            "trials_energy_j": cluster.get("trials_energy_j"),
            "co2_kg": carbon.get("operational_kg"),
            "embodied_co2_kg": carbon.get("embodied_kg"),
            "billed_usd": cost.get("billed_usd"),
            "wall_s": metadata.wall_s,
            **{f"test_{k}": test.get(k) for k in schema.ROUGE_COLUMNS},
        }
        now_ms = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now_ms, 0) for k, v in totals.items() if _finite(v)]
        self.client.log_batch(self.parent_run_id, metrics=metrics)
        for name in STUDY_FILES:
            if (study_dir / name).is_file():
                self.client.log_artifact(self.parent_run_id, str(study_dir / name))
        model = study_dir / schema.BEST_MODEL_DIR
        if model.is_dir():
            self.client.log_artifacts(self.parent_run_id, str(model), schema.BEST_MODEL_DIR)
        self.client.set_terminated(self.parent_run_id, "FINISHED")
