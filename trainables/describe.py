"""What a study trained on and with, counted from what it loaded: the plan's dataset-details and
model-details tables and the lead-k baseline on the validation split (written into metadata.json
when the trials have ended, read by the analysis).

`describe` runs in a Ray worker when the study has ended (the held-out evaluation's worker, which
has torch, transformers and rouge-score loaded already), so the study process never imports them
and none of it delays the first trial (the baseline alone took 1.8 s at the start of a default
study, 1.4 s of it importing rouge-score).

Words are whitespace-separated tokens of the raw text (`str.split`); BPE tokens are the study's
tokenizer's ids without truncation (so a mean above `data.max_source_tokens` says how much the
truncation cuts). Parameters are counted on the model's real class, built on PyTorch's meta
device for a hub model (no weights downloaded or allocated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.config import DataConfig, ModelConfig, StudyConfig


def split_details(
    pairs: list[tuple[str, str]], tokenizer: Any, max_source_tokens: int
) -> dict[str, float | int]:
    """Samples and mean lengths of one split (words and BPE tokens, source and target)."""
    n = max(len(pairs), 1)
    sources = tokenizer([s for s, _ in pairs], truncation=False)["input_ids"] if pairs else []
    targets = (
        tokenizer(text_target=[t for _, t in pairs], truncation=False)["input_ids"] if pairs else []
    )
    return {
        "samples": len(pairs),
        "source_words": sum(len(s.split()) for s, _ in pairs) / n,
        "target_words": sum(len(t.split()) for _, t in pairs) / n,
        "source_tokens": sum(map(len, sources)) / n,
        "target_tokens": sum(map(len, targets)) / n,
        "source_truncated_fraction": sum(len(ids) > max_source_tokens for ids in sources) / n,
    }


def data_details(cfg: StudyConfig) -> dict[str, Any]:
    """The training and validation splits: samples and mean lengths. The test split is counted
    when it is read, once, by the held-out evaluation (`trainables.held_out`: metadata.json
    `test`)."""
    from trainables.datasets import load_split
    from trainables.train_loop import prepared_data

    data = cfg.data
    tokenizer = prepared_data(cfg.model, data).tokenizer
    splits = {}
    for role, split, n in (
        ("train", data.train_split, data.n_train),
        ("validation", data.validation_split, data.n_validation),
    ):
        if n:
            pairs = load_split(data, split, n, data.seed)
            splits[role] = {
                "split": split,
                **split_details(pairs, tokenizer, data.max_source_tokens),
            }
    return {
        "dataset": data.dataset,
        "dataset_config": data.dataset_config,
        "tokenizer": cfg.model.name,
        "splits": splits,
    }


def model_details(model_cfg: ModelConfig, data_cfg: DataConfig) -> dict[str, Any]:
    """Family and parameter counts (total, encoder, decoder) of the model a study fine-tunes."""
    import torch

    from trainables.models import build_model, is_preset
    from trainables.train_loop import prepared_data

    if is_preset(model_cfg.name):
        model = build_model(model_cfg, prepared_data(model_cfg, data_cfg).tokenizer)
    else:
        from transformers import AutoConfig, AutoModelForSeq2SeqLM

        config = AutoConfig.from_pretrained(model_cfg.name, revision=model_cfg.revision or None)
        with torch.device("meta"):  # shapes only: nothing downloaded beyond config.json
            model = AutoModelForSeq2SeqLM.from_config(config)

    def count(module: torch.nn.Module) -> int:
        return sum(p.numel() for p in module.parameters())

    return {
        "model": model_cfg.name,
        "family": model.config.model_type,
        "parameters": count(model),
        "encoder_parameters": count(model.get_encoder()),
        "decoder_parameters": count(model.get_decoder()),
        "preset": is_preset(model_cfg.name),
    }


def lead_baseline(cfg: StudyConfig) -> dict[str, Any]:
    """The lead-k extractive baseline on the study's validation set: the floor to beat."""
    from trainables.datasets import dataset_spec, load_split
    from trainables.evaluation import lead_k_baseline

    spec = dataset_spec(cfg.data.dataset)
    k = spec.lead_k if spec else 3
    pairs = load_split(cfg.data, cfg.data.validation_split, cfg.data.n_validation, cfg.data.seed)
    return {"lead_k": k, **lead_k_baseline(pairs, k)}


@dataclass(frozen=True)
class StudyDescription:
    """metadata.json's `data_details`, `models` and `baseline`."""

    data_details: dict[str, Any]
    models: list[dict[str, Any]]
    baseline: dict[str, Any]


def describe(configs: list[StudyConfig]) -> StudyDescription:
    """The data details and lead-k baseline of the study's config (the first) and the details of
    each model its trials fine-tuned, each model once."""
    models: dict[str, dict[str, Any]] = {}
    for cfg in configs:
        if cfg.model.name not in models:
            models[cfg.model.name] = model_details(cfg.model, cfg.data)
    return StudyDescription(
        data_details(configs[0]), list(models.values()), lead_baseline(configs[0])
    )
