"""Faithful decoding and lengths per model family and dataset, where the user set none.

For each of `PRESET_KEYS` a study takes, in order: the value the user set (the defaults file of
an experiments plan, `--config` or `--set`); the model checkpoint's own `generation_config`
(decoding keys of a hub model; a fine-tuned summarizer ships its own); the published fine-tuning
recipe for the model family on the dataset (`data/generation_presets.csv`, each row with its
source); greentune's default. `resolve_presets` returns the config and where each value came
from (saved in metadata.json, printed by --dry-run).

    >>> generation_preset("bart", "abisee/cnn_dailymail")["num_beams"]
    4
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

from core.config import StudyConfig, apply_settings

DATA_FILE = Path(__file__).parent / "data" / "generation_presets.csv"
DECODING_KEYS = (
    "eval.num_beams",
    "eval.length_penalty",
    "eval.min_new_tokens",
    "eval.max_new_tokens",
    "eval.no_repeat_ngram_size",
)
PRESET_KEYS = (*DECODING_KEYS, "data.max_source_tokens", "data.max_target_tokens")
FROM_USER, FROM_CHECKPOINT, FROM_DEFAULT = "set", "checkpoint generation_config", "default"


@functools.cache
def _table() -> dict[tuple[str, str], dict[str, Any]]:
    with open(DATA_FILE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    out = {}
    for r in rows:
        values: dict[str, Any] = {"source": r["source"]}
        for key in PRESET_KEYS:
            field = key.split(".", 1)[1]
            values[field] = float(r[field]) if field == "length_penalty" else int(r[field])
        out[(r["family"], r["dataset"])] = values
    return out


def dataset_key(dataset: str) -> str:
    """`abisee/cnn_dailymail` -> `cnn_dailymail`: the table's name for a hub dataset."""
    return dataset.rsplit("/", 1)[-1].lower()


def generation_preset(family: str, dataset: str) -> dict[str, Any] | None:
    """The published recipe for `family` (a transformers model_type) on `dataset`, or None."""
    return _table().get((family, dataset_key(dataset)))


def resolve_presets(
    cfg: StudyConfig, explicit: set[str], family: str, checkpoint: dict[str, Any]
) -> tuple[StudyConfig, dict[str, str]]:
    """`cfg` with every preset key the user left unset filled from the checkpoint's generation
    config or the table; and, per key, where its value came from."""
    preset = generation_preset(family, cfg.data.dataset) or {}
    settings, sources = {}, {}
    for key in PRESET_KEYS:
        field = key.split(".", 1)[1]
        if key in explicit:
            sources[key] = FROM_USER
        elif key in DECODING_KEYS and field in checkpoint:
            settings[key], sources[key] = checkpoint[field], FROM_CHECKPOINT
        elif field in preset and preset[field] != 0:
            settings[key], sources[key] = preset[field], preset["source"]
        else:
            sources[key] = FROM_DEFAULT
    return apply_settings(cfg, settings, "generation preset"), sources
