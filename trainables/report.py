"""The one contract from a worker to its trial driver: `WorkerReport`, and how workers combine.

Every worker sends one `WorkerReport` per report interval: the work it did in the interval (its
own share: samples, tokens, seconds, energy as a `Measurement`, FLOPs), its peaks, and, on rank 0
only, the quality figures and the trial's position (`RankZero`). The driver combines the workers'
reports into one (`combine_workers`: sums for shares of work, max for peaks and for the slowest
checkpoint save, rank 0 for quality) and adds it to the trial's running totals.

A report crosses a process boundary on the Train path (worker -> controller -> driver), so it
travels as plain data (`to_dict` / `from_dict`); on the local path it is handed over in-process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from core.measurement import Measurement, sum_measurements


@dataclass(frozen=True)
class RankZero:
    """What only rank 0 knows: quality on the validation set and where training stands."""

    quality: dict[str, float]  # val_loss, train_loss and the ROUGE F-measures
    step: int  # optimizer steps of this lineage
    epoch: float  # fractional epochs behind this model (follows PBT clones)
    step_time_s: float
    trainable_params: int
    total_params: int
    padding_fraction: float
    truncated_source_fraction: float
    truncated_target_fraction: float
    early_stopped: bool
    setup_s: float  # the segment's set-up before its first step; 0 after its first report
    node_id: str
    checkpoint_bytes: int | None


@dataclass(frozen=True)
class WorkerReport:
    """One worker's figures for one report interval (its own share of the trial's work)."""

    rank: int
    samples: int
    tokens: int  # non-padding source + target tokens
    train_s: float
    eval_s: float
    device_s: float  # wall time of the interval on this worker's device
    energy: Measurement
    flops: float  # analytic estimate, see trainables.flops
    cpu_s: float  # this process's CPU seconds in the interval
    peak_rss_bytes: int
    checkpoint_save_s: float
    sent_s: float  # unix time the worker handed the report over
    peak_cuda_allocated_bytes: int | None = None
    peak_cuda_reserved_bytes: int | None = None
    gpu_util_pct: float | None = None
    rank_zero: RankZero | None = None
    workers: int = 1  # how many workers' reports this one combines

    @property
    def cpu_util_pct(self) -> float:
        """CPU seconds per wall second, in percent (over 100 with several busy processes)."""
        return 100.0 * self.cpu_s / max(self.device_s / self.workers, 1e-9)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkerReport:
        data = dict(data)
        data["energy"] = Measurement(**data["energy"])
        if data.get("rank_zero") is not None:
            data["rank_zero"] = RankZero(**data["rank_zero"])
        return cls(**data)


def _max(values: list[Any]) -> Any:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def combine_workers(reports: list[WorkerReport]) -> WorkerReport:
    """One report from every worker's: sums for shares of work, max for peaks, rank 0 for quality.

    The energy parts add up over workers (each worker meters its own device, so nothing is
    counted twice); a part's source is the weakest among the workers that measured it.
    """
    if not reports:
        raise ValueError("combine_workers needs at least one worker's report")
    ranked = sorted(reports, key=lambda r: r.rank)
    return WorkerReport(
        rank=ranked[0].rank,
        samples=sum(r.samples for r in ranked),
        tokens=sum(r.tokens for r in ranked),
        train_s=sum(r.train_s for r in ranked),
        eval_s=sum(r.eval_s for r in ranked),
        device_s=sum(r.device_s for r in ranked),
        energy=sum_measurements(r.energy for r in ranked),
        flops=sum(r.flops for r in ranked),
        cpu_s=sum(r.cpu_s for r in ranked),
        peak_rss_bytes=max(r.peak_rss_bytes for r in ranked),
        checkpoint_save_s=max(r.checkpoint_save_s for r in ranked),
        sent_s=max(r.sent_s for r in ranked),
        peak_cuda_allocated_bytes=_max([r.peak_cuda_allocated_bytes for r in ranked]),
        peak_cuda_reserved_bytes=_max([r.peak_cuda_reserved_bytes for r in ranked]),
        gpu_util_pct=_max([r.gpu_util_pct for r in ranked]),
        rank_zero=next((r.rank_zero for r in ranked if r.rank_zero is not None), None),
        workers=sum(r.workers for r in ranked),
    )
