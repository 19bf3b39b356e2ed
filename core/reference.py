"""Reference facts the report cites beside what a study measured, each row with its source:
models' pre-training corpora (`data/pretraining.csv`, from the papers) and the full sizes of
the known datasets (`data/dataset_sizes.csv`, from their cards and papers).

    >>> pretraining("facebook/bart-base")[1]
    'Lewis et al. 2020, BART, section 5.1'
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Any

DATA_DIR = Path(__file__).parent / "data"


@functools.cache
def _rows(name: str) -> tuple[dict[str, str], ...]:
    with open(DATA_DIR / name, newline="", encoding="utf-8") as f:
        return tuple(csv.DictReader(f))


def pretraining(model: str) -> tuple[str, str] | None:
    """(pre-training corpus, source) of a model by hub name or preset (the longest matching
    prefix in the table), or None for a model the table does not know."""
    matches = [r for r in _rows("pretraining.csv") if model.startswith(r["model"])]
    if not matches:
        return None
    row = max(matches, key=lambda r: len(r["model"]))
    return row["pretraining"], row["source"]


def dataset_sizes(dataset: str) -> dict[str, Any] | None:
    """Full train/validation/test sizes of a known dataset (hub name with or without owner),
    with `source`; None for one the table does not know (a local file, the built-in data)."""
    short = dataset.rsplit("/", 1)[-1].lower()
    for r in _rows("dataset_sizes.csv"):
        if r["dataset"] == short:
            return {
                **{k: int(r[k]) if r[k] else None for k in ("train", "validation", "test")},
                "source": r["source"],
            }
    return None
