"""The selected model on held-out test data: scored once, when the study has ended.

Selection uses validation ROUGE only (the scheduler's metric, at every report); the model it
selects (the best report's checkpoint) is then summarized on the test split, which no decision
ever saw, and scored example by example, so the report can give the test ROUGE with a bootstrap
interval. `evaluate_checkpoint` runs where a trial would (a Ray task with one worker's CPUs and
GPU), meters its own energy, and reads the test split here and nowhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from study.config import StudyConfig
from trainables.energy import Measurement


@dataclass(frozen=True)
class HeldOutEvaluation:
    split: str
    predictions: list[str]
    references: list[str]
    scores: dict[str, list[float]]  # ROUGE type -> per-example F-measure
    loss: float  # mean token-level loss on the split
    seconds: float
    energy: Measurement

    @property
    def n(self) -> int:
        return len(self.predictions)


def evaluate_checkpoint(
    cfg: StudyConfig, checkpoint_location: str, split: str, n: int, threads: int = 1
) -> HeldOutEvaluation:
    """Summarize `n` examples of `split` with the model saved at `checkpoint_location`."""
    import ray.train
    import torch

    from trainables import batching
    from trainables.datasets import load_split
    from trainables.energy import EnergyMeter, cuda_device_uuid
    from trainables.engine import load_model_weights
    from trainables.evaluation import rouge_per_example
    from trainables.models import build_model
    from trainables.train_loop import prepared_data, summarize

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
    encoded = batching.encode_pairs(
        pairs, tokenizer, cfg.data.max_source_tokens, cfg.data.max_target_tokens
    )
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
    return HeldOutEvaluation(
        split,
        predictions,
        list(encoded.target_texts),
        scores,
        loss_sum / max(len(encoded), 1),
        time.perf_counter() - started,
        energy,
    )
