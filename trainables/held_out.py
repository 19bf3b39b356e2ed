"""The selected model on held-out test data: scored once, when the study has ended.

Selection uses validation ROUGE only (the scheduler's metric, at every report); the model it
selects (the best report's checkpoint) is then summarized on the test split, which no decision
ever saw, and scored example by example, so the report can give the test ROUGE with a bootstrap
interval. `evaluate_checkpoint` runs where a trial would (a Ray task with one worker's CPUs and
GPU; on a local study, a `WarmWorker` started with the trials), meters its own energy, and reads
the test split here and nowhere else.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import StudyConfig
from core.measurement import Measurement

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase


@dataclass(frozen=True)
class HeldOutEvaluation:
    split: str
    predictions: list[str]
    references: list[str]
    scores: dict[str, list[float]]  # ROUGE type -> per-example F-measure
    loss: float  # mean token-level loss on the split
    seconds: float
    energy: Measurement
    export_error: str | None = None  # why the model could not be saved for Hugging Face
    details: dict[str, Any] | None = None  # trainables.describe.split_details of the split

    @property
    def n(self) -> int:
        return len(self.predictions)


def export_model(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, cfg: StudyConfig, location: str
) -> None:
    """The model as Hugging Face users take it: `save_pretrained`'s weights, config, tokenizer
    and a generation config set to the study's decoding (so `generate()` summarizes as the
    evaluation did), at `location` (a folder or a URI)."""
    from trainables.session import quiet_worker_logs

    quiet_worker_logs()
    import tempfile

    from core import storage

    generation = model.generation_config
    generation.num_beams = cfg.eval.num_beams
    generation.max_new_tokens = cfg.eval.max_new_tokens
    generation.length_penalty = cfg.eval.length_penalty
    generation.min_new_tokens = cfg.eval.min_new_tokens or None
    generation.no_repeat_ngram_size = cfg.eval.no_repeat_ngram_size or None
    with tempfile.TemporaryDirectory() as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        storage.replace_dir(Path(tmp), location)


def prewarm(cfg: StudyConfig) -> None:
    """Load what `evaluate_checkpoint` and `trainables.describe` use: torch, transformers,
    rouge-score with its stemmer, and the study's tokenizer with its encoded training and
    validation splits (`prepared_data`, cached per process). The test split is not read."""
    import torch  # noqa: F401

    from trainables import describe  # noqa: F401
    from trainables.evaluation import rouge_per_example
    from trainables.models import build_model  # noqa: F401
    from trainables.train_loop import prepared_data

    rouge_per_example(["warm"], ["warm"])
    prepared_data(cfg.model, cfg.data)


class WarmWorker:
    """A Ray actor a local study starts at its first trial report (zero CPUs reserved;
    `study.warm_worker`) to do the work that follows the trials: the held-out evaluation and the
    study's description. It drops to the lowest CPU priority (nice 19) before loading anything,
    so its loads take only what the trials leave idle, then runs whatever it is given in a
    process that has them already."""

    def __init__(self, cfg: StudyConfig) -> None:
        os.nice(19)  # this thread and those it starts after (torch's); a niceness is never lowered
        prewarm(cfg)

    def run(self, fn: Any, *args: Any) -> Any:
        return fn(*args)


def evaluate_checkpoint(
    cfg: StudyConfig,
    checkpoint_location: str,
    split: str,
    n: int,
    threads: int = 1,
    export_to: str | None = None,
) -> HeldOutEvaluation:
    """Summarize `n` examples of `split` with the model saved at `checkpoint_location`; with
    `export_to`, also save that model there for Hugging Face (`export_model`)."""
    import ray.train
    import torch

    from meter.energy import EnergyMeter
    from meter.gpu import cuda_device_uuid
    from trainables.datasets import load_split
    from trainables.describe import split_details
    from trainables.engine import load_model_weights
    from trainables.evaluation import rouge_per_example
    from trainables.models import build_model
    from trainables.train_loop import encode_split, prepared_data, summarize

    torch.set_num_threads(max(1, threads))
    device = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    meter = EnergyMeter(
        gpu_uuids=[cuda_device_uuid(0)] if device.type == "cuda" else (),
        cpu_tdp_w=cfg.energy.cpu_tdp_w,
        vm_size=cfg.energy.vm_size,
        sync=torch.cuda.synchronize if device.type == "cuda" else None,
    )
    started = time.perf_counter()
    meter.begin_window("held_out")
    tokenizer = prepared_data(cfg.model, cfg.data).tokenizer  # the one the model was trained with
    pairs = load_split(cfg.data, split, n, cfg.data.seed)
    encoded = encode_split(cfg.model, cfg.data, tokenizer, pairs)
    model = build_model(cfg.model, tokenizer)
    with ray.train.Checkpoint(checkpoint_location).as_directory() as directory:
        load_model_weights(model, Path(directory))
    model.to(device)
    predictions, loss_sum = summarize(
        model, tokenizer, encoded, list(range(len(encoded))), cfg, device, {}
    )
    scores = rouge_per_example(predictions, encoded.target_texts)
    energy = meter.end_window("held_out")
    meter.close()
    export_error = None
    if export_to is not None:  # after the metered window: saving is not the evaluation's cost
        try:
            export_model(model, tokenizer, cfg, export_to)
        except (OSError, ValueError, RuntimeError) as e:  # the scores stand without it
            export_error = f"{type(e).__name__}: {str(e)[:300]}"
    return HeldOutEvaluation(
        split,
        predictions,
        list(encoded.target_texts),
        scores,
        loss_sum / max(len(encoded), 1),
        time.perf_counter() - started,
        energy,
        export_error,
        {"split": split, **split_details(pairs, tokenizer, cfg.data.max_source_tokens)},
    )
