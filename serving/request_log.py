"""Per-request carbon at serving time: every call metered, logged with its energy, CO2 and latency.

`MeteredSummarizer` wraps any `texts -> summaries` function (a PyTorch model's, an ONNX Runtime
session's, a Triton client's): each call is one window of the same `EnergyMeter` the trials use,
converted to CO2 at the study's intensity of the moment, and appended to a `RequestLog` as one
row (`core.schema.REQUEST_COLUMNS`). The log goes to parquet (`write`) and, where a tracking URI
is given, to an MLflow run as per-request metrics. How each figure was obtained travels in the
row: the meter's `energy_source` (counter, power_integral, estimated) and the intensity's source.

>>> log = RequestLog(runtime="onnxruntime", intensity=carbon_intensity(cfg.energy, time.time()))
>>> summarize = MeteredSummarizer(ort_summarize, EnergyMeter(), log)
>>> summarize(["A long article ..."])  # one request: one row in log.rows
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence, Sized
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import schema
from core.footprint import CarbonIntensity
from core.measurement import Measurement, weakest_source
from meter.energy import EnergyMeter


@dataclass(frozen=True)
class RequestRecord:
    """One served request: `core.schema.REQUEST_COLUMNS`, in that order."""

    runtime: str
    request: int
    summaries: int
    started_at: float  # Unix seconds
    latency_s: float
    energy_j: float | None
    gpu_j: float | None
    cpu_j: float | None
    ram_j: float | None
    energy_source: str | None  # the weakest of the parts' sources
    co2_g: float | None
    intensity_g_per_kwh: float


@dataclass
class RequestLog:
    """The requests one runtime served, in order."""

    runtime: str
    intensity: CarbonIntensity
    rows: list[RequestRecord] = field(default_factory=list)

    def record(self, summaries: int, started_at: float, energy: Measurement) -> RequestRecord:
        co2 = self.intensity.co2_kg(energy.total_j, started_at)
        row = RequestRecord(
            runtime=self.runtime,
            request=len(self.rows),
            summaries=summaries,
            started_at=started_at,
            latency_s=energy.duration_s,
            energy_j=energy.total_j,
            gpu_j=energy.gpu_j,
            cpu_j=energy.cpu_j,
            ram_j=energy.ram_j,
            energy_source=weakest_source((energy.gpu_source, energy.cpu_source, energy.ram_source)),
            co2_g=None if co2 is None else co2 * 1000.0,
            intensity_g_per_kwh=self.intensity.at(started_at),
        )
        self.rows.append(row)
        return row

    def to_records(self) -> list[dict[str, Any]]:
        return [asdict(r) for r in self.rows]

    def to_mlflow(self, tracking_uri: str, run_id: str) -> None:
        """Each request as a step of `inference/<runtime>/*` metrics in an existing MLflow run."""
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri)
        now = int(time.time() * 1000)
        metrics = [
            Metric(f"inference/{self.runtime}/{name}", float(value), now, r.request)
            for r in self.rows
            for name, value in (
                ("latency_s", r.latency_s),
                ("energy_j", r.energy_j),
                ("co2_g", r.co2_g),
            )
            if value is not None
        ]
        for start in range(0, len(metrics), 1000):  # MLflow's batch limit
            client.log_batch(run_id, metrics=metrics[start : start + 1000])


class MeteredSummarizer:
    """`summarize(request)` with every call metered and logged as one request of `len(request)`
    summaries (a list of texts, or a tokenized batch with a length)."""

    def __init__(
        self,
        summarize: Callable[[Any], Any],
        meter: EnergyMeter,
        log: RequestLog,
    ) -> None:
        self.summarize, self.meter, self.log = summarize, meter, log

    def __call__(self, texts: Sized) -> Any:
        name = f"request-{len(self.log.rows)}"
        started_at = time.time()
        self.meter.begin_window(name)
        try:
            summaries = self.summarize(texts)
        finally:
            energy = self.meter.end_window(name)
        self.log.record(len(texts), started_at, energy)
        return summaries


def write_requests(logs: Sequence[RequestLog], path: Path, run_id: str) -> None:
    """Append the logs' rows, tagged with `run_id`, to the parquet file at `path`."""
    import pandas as pd

    frame = pd.DataFrame(
        [{schema.INFER_RUN: run_id, **r} for log in logs for r in log.to_records()],
        columns=[schema.INFER_RUN, *schema.REQUEST_COLUMNS],
    )
    append_parquet(frame, path)


def append_parquet(frame: Any, path: Path) -> None:
    """`frame` added after the rows already at `path`, written to a temporary file and moved into
    place (a reader never sees a half-written file; earlier runs' rows are kept)."""
    import os

    import pandas as pd

    if path.exists():
        frame = pd.concat([pd.read_parquet(path), frame], ignore_index=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)
