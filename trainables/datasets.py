"""(source, target) pairs for a study: the built-in generator, a hub dataset or a local file.

`load_split(cfg, split, n, seed)` is the one entry point. `cfg.dataset` is read as:

- `builtin`: `trainables.synthetic.generate_dialogues`, with the generator seed
  `synthetic.split_seed(seed, split)` (train, validation and test never share one);
- a path ending in .jsonl/.json/.csv/.parquet: read with pandas; if it has a `split` column only
  the rows whose `split` equals the requested split are kept, otherwise the whole file is used
  (then train and validation overlap: a warning says so);
- any other value: a Hugging Face hub dataset. The names in `KNOWN_DATASETS` bring their hub id,
  config and columns; any other name needs `data.source_column` and `data.target_column`.

Texts get `\\r\\n` (and a lone `\\r`) turned into `\\n` and are stripped; rows with an empty source
or target are dropped. Targets keep their layout (the HF CNN/DM highlights are one sentence per
line, the fairseq layout has them on one line): `rouge_scores` re-lays both sides out with
`summary_lines` before ROUGE-Lsum, which is also re-exported here for callers that need it.
Sub-sampling draws `n` rows without replacement with `random.Random(seed)` and keeps the file
order; fewer rows than `n` are returned as they are.

Every bad input raises `core.config.ConfigError` naming the field, the value and the fix.
"""

from __future__ import annotations

import json
import os
import random
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import ConfigError, DataConfig
from trainables.evaluation import summary_lines
from trainables.synthetic import SPLIT_OFFSETS, generate_dialogues, split_seed

__all__ = [
    "FILE_SUFFIXES",
    "KNOWN_DATASETS",
    "KNOWN_LAYOUTS",
    "DatasetSpec",
    "check_split_exists",
    "dataset_spec",
    "load_split",
    "summary_lines",
]

FILE_SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")
BUILTIN = "builtin"


@dataclass(frozen=True)
class DatasetSpec:
    """What the study knows about a dataset: where it lives, its columns, its lead-k baseline."""

    name: str  # the value of data.dataset
    hub_id: str  # repository passed to `datasets.load_dataset` ("" = not on the hub)
    hub_config: str | None  # the hub config ("3.0.0" for CNN/DM), None = the default one
    source_column: str
    target_column: str
    lead_k: int  # sentences in the lead-k extractive baseline
    why_lead_k: str
    # (train, validation, test) for a dataset published as one split, in `datasets`' slicing
    # syntax; None = its own train/validation/test splits
    splits: tuple[str, str, str] | None = None


# The one table of known datasets. Lead-k follows each dataset's own paper.
KNOWN_DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            "builtin", "", None, "dialogue", "summary", 3,
            "Same unit as SAMSum (chat lines); the synthetic summaries need facts from across "
            "the dialogue, so lead-3 is a floor, not a competitor.",
        ),
        DatasetSpec(
            "cnn_dailymail", "abisee/cnn_dailymail", "3.0.0", "article", "highlights", 3,
            "Lead-3 is the standard CNN/DM baseline (See et al. 2017: 40.42/17.62/36.67); the "
            "highlights average 3-4 sentences.",
        ),
        DatasetSpec(
            "xsum", "EdinburghNLP/xsum", None, "document", "summary", 1,
            "XSum summaries are one sentence; Narayan et al. 2018 report Lead-1 "
            "(16.30/1.60/11.95), and more sentences only lower precision.",
        ),
        DatasetSpec(
            "samsum", "Samsung/samsum", None, "dialogue", "summary", 3,
            "Gliwa et al. 2019 report LEAD-3 as their baseline; an utterance is short (about "
            "8 words), so three of them are about a summary's length. Sentences, not "
            "utterances, are counted here; a multi-sentence line counts more than once.",
        ),
        DatasetSpec(
            "reddit_tifu", "ctr4si/reddit_tifu", "long", "documents", "tldr", 1,
            "A TL;DR is one or two sentences; the post's first sentence is the lead floor. "
            "Published as one train split: greentune splits it 80/10/10 in file order, as "
            "PEGASUS did (Zhang et al. 2020, appendix A).",
            splits=("train[:80%]", "train[80%:90%]", "train[90%:]"),
        ),
    )
}  # fmt: skip

# Column layouts detected in local files, in order of preference: (source, target).
KNOWN_LAYOUTS: tuple[tuple[str, str], ...] = (
    ("article", "highlights"),
    ("document", "summary"),
    ("dialogue", "summary"),
)


def dataset_spec(name: str) -> DatasetSpec | None:
    """The known dataset called `name` (short name or hub id), or None."""
    if name in KNOWN_DATASETS:
        return KNOWN_DATASETS[name]
    return next((s for s in KNOWN_DATASETS.values() if s.hub_id and s.hub_id == name), None)


READ_LOG_ENV = "GREENTUNE_DATA_READS"  # a file: every load_split call is appended to it


def _log_read(split: str, n: int) -> None:
    """Note the read in the file `$GREENTUNE_DATA_READS` names (a test proves from it when the
    held-out split was read); nothing happens when the variable is unset."""
    path = os.environ.get(READ_LOG_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(
                json.dumps({"split": split, "n": n, "time_s": time.time(), "pid": os.getpid()})
                + "\n"
            )


def load_split(cfg: DataConfig, split: str, n: int, seed: int) -> list[tuple[str, str]]:
    """Up to `n` (source, target) pairs of `split` of `cfg.dataset`, sub-sampled with `seed`."""
    _log_read(split, n)
    if n < 1:
        raise ConfigError(f"n={n}: ask for at least one example (data.n_train/n_validation > 0)")
    split_field = _split_field(cfg, split)
    name = cfg.dataset.strip()
    _check_hub_only_fields(cfg, name)
    if name == BUILTIN:
        if split not in SPLIT_OFFSETS:
            raise ConfigError(
                f"{split_field}={split!r}: the builtin dataset has the splits "
                f"{', '.join(SPLIT_OFFSETS)}; use one of them"
            )
        rows = generate_dialogues(n, split_seed(seed, split))
        return [(_clean(r["dialogue"]), _clean(r["summary"])) for r in rows]
    if _looks_like_path(name):
        pairs = _subsample(_load_file(cfg, Path(name).expanduser(), split, split_field), n, seed)
    else:
        pairs = _load_hub(cfg, name, split, split_field, n, seed)
    if not pairs:
        raise ConfigError(
            f"{split_field}={split!r}: no usable rows in data.dataset={name!r} (every row has an "
            "empty source or target); check data.source_column/target_column and the file"
        )
    return pairs


# --------------------------------------------------------------------------------------------
# Local files


def _check_hub_only_fields(cfg: DataConfig, name: str) -> None:
    """data.dataset_config and data.revision name a hub dataset's; elsewhere they are a mistake."""
    if name != BUILTIN and not _looks_like_path(name):
        return
    what = "the built-in dataset" if name == BUILTIN else "a local file"
    for fld in ("dataset_config", "revision"):
        if getattr(cfg, fld):
            raise ConfigError(
                f"data.{fld}={getattr(cfg, fld)!r}: {what} has none (it names a hub "
                f"dataset's); drop data.{fld}"
            )


def _looks_like_path(name: str) -> bool:
    p = Path(name).expanduser()
    return p.suffix.lower() in FILE_SUFFIXES or p.is_file()


def _load_file(cfg: DataConfig, path: Path, split: str, split_field: str) -> list[tuple[str, str]]:
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise ConfigError(
            f"data.dataset={str(path)!r}: unsupported file type {suffix or '(none)'!r}; "
            f"give a {'/'.join(FILE_SUFFIXES)} file"
        )
    if not path.is_file():
        raise ConfigError(
            f"data.dataset={str(path)!r}: no such file; give an existing "
            f"{'/'.join(FILE_SUFFIXES)} file, `builtin`, or a hub name "
            f"({', '.join(n for n in KNOWN_DATASETS if n != BUILTIN)})"
        )
    df = _read_frame(path, suffix)
    columns = [str(c) for c in df.columns]
    if "split" in columns:
        present = sorted({str(v) for v in df["split"].dropna().unique()})
        df = df[df["split"].astype(str) == split]
        if df.empty:
            raise ConfigError(
                f"{split_field}={split!r}: {path.name} has no rows with split == {split!r} "
                f"(splits present: {', '.join(present) or 'none'}); "
                f"set {split_field} to one of them"
            )
    else:
        warnings.warn(
            f"{path.name} has no `split` column: split {split!r} uses the whole file, so train "
            "and validation draw from the same rows",
            UserWarning,
            stacklevel=3,
        )
    source, target = _pick_columns(cfg, columns, f"{path.name}")
    return _pairs(df[source].tolist(), df[target].tolist())


def _read_frame(path: Path, suffix: str) -> Any:
    import pandas as pd

    try:
        if suffix == ".jsonl":
            return pd.read_json(path, lines=True, dtype=False)
        if suffix == ".json":
            try:
                return pd.read_json(path, dtype=False)
            except ValueError:  # JSON lines saved as .json
                return pd.read_json(path, lines=True, dtype=False)
        if suffix == ".csv":
            return pd.read_csv(path, dtype=str, keep_default_na=False)
        return pd.read_parquet(path)
    except (ValueError, OSError, UnicodeDecodeError, ImportError) as e:
        # pandas' parser errors are ValueErrors; pyarrow's ArrowInvalid is one too.
        raise ConfigError(
            f"data.dataset={str(path)!r}: cannot read it as {suffix[1:]} ({type(e).__name__}: "
            f"{str(e)[:200]}); fix the file or give one in another supported format"
        ) from e


def _pick_columns(cfg: DataConfig, columns: Sequence[str], where: str) -> tuple[str, str]:
    """(source, target) column names: from cfg where set, else the first known layout present."""
    available = ", ".join(columns)
    for fld, value in (("source_column", cfg.source_column), ("target_column", cfg.target_column)):
        if value and value not in columns:
            raise ConfigError(
                f"data.{fld}={value!r}: no such column in {where} (available: {available}); "
                f"set data.{fld} to one of them"
            )
    source, target = cfg.source_column, cfg.target_column
    if source and target:
        return source, target
    layout = next(
        (
            (s, t)
            for s, t in KNOWN_LAYOUTS
            if s in columns and t in columns and (not source or s == source)
            and (not target or t == target)
        ),
        None,
    )  # fmt: skip
    if layout is None:
        fld = "source_column" if not source else "target_column"
        known = "; ".join(f"{s}/{t}" for s, t in KNOWN_LAYOUTS)
        raise ConfigError(
            f"data.{fld}={getattr(cfg, fld)!r}: {where} has none of the known column layouts "
            f"({known}); available columns: {available}; set data.source_column and "
            "data.target_column"
        )
    return layout


# --------------------------------------------------------------------------------------------
# Hugging Face hub


def _load_hub(
    cfg: DataConfig, name: str, split: str, split_field: str, n: int, seed: int
) -> list[tuple[str, str]]:
    spec = dataset_spec(name)
    if spec is None and "/" not in name:  # most likely a typo of a known name
        known = ", ".join(KNOWN_DATASETS)
        raise ConfigError(
            f"data.dataset={name!r}: not a known dataset ({known}) nor an existing "
            f"{'/'.join(FILE_SUFFIXES)} file; for another hub dataset give its full id "
            "(owner/name)"
        )
    hub_id, config = _hub_source(cfg, name)
    _require_hub(name, hub_id)
    ds = _hub_dataset(name, hub_id, config, split, split_field, cfg.revision or None)
    columns = list(ds.column_names)
    if spec is None:  # any other hub dataset: the configured columns, or a known layout
        source, target = _pick_columns(cfg, columns, f"hub dataset {hub_id!r}")
    else:
        source = cfg.source_column or spec.source_column
        target = cfg.target_column or spec.target_column
    for fld, value in (("source_column", source), ("target_column", target)):
        if value not in columns:
            raise ConfigError(
                f"data.{fld}={value!r}: no such column in hub dataset {hub_id!r} (available: "
                f"{', '.join(columns)}); set data.{fld} to one of them"
            )
    # Sample row indices before reading any text (CNN/DM's train split is about 1 GB of it);
    # rows with an empty side are dropped afterwards, so a few fewer than n may come back.
    if len(ds) > n:
        ds = ds.select(sorted(random.Random(seed).sample(range(len(ds)), n)))
    return _pairs(ds[source], ds[target])


def _hub_source(cfg: DataConfig, name: str) -> tuple[str, str | None]:
    """(hub id, configuration) of a hub dataset: a known name's, or the name itself; an explicit
    data.dataset_config wins."""
    spec = dataset_spec(name)
    hub_id, config = (spec.hub_id, spec.hub_config) if spec else (name, None)
    return hub_id, cfg.dataset_config or config


def _hub_dataset(
    name: str,
    hub_id: str,
    config: str | None,
    split: str,
    split_field: str,
    revision: str | None = None,
) -> Any:
    """`datasets.load_dataset(hub_id, config, split=split)`, errors turned into ConfigError.

    A repository that still ships a loading script (unsupported since datasets 4) is retried
    from the hub's automatic parquet export (`revision="refs/convert/parquet"`), unless the study
    pinned a revision of its own.
    """
    import datasets

    pinned = {"revision": revision} if revision else {}
    try:
        try:
            return datasets.load_dataset(hub_id, config, split=split, **pinned)
        except RuntimeError as e:
            if "scripts are no longer supported" not in str(e) or revision:
                raise
            return datasets.load_dataset(
                hub_id, config, split=split, revision="refs/convert/parquet"
            )
    except ValueError as e:
        if "split" in str(e).lower() and "unknown" in str(e).lower():
            raise ConfigError(
                f"{split_field}={split!r}: hub dataset {hub_id!r} has no such split ({e}); "
                f"set {split_field} to one of its splits"
            ) from e
        raise _hub_error(name, hub_id, e) from e
    except Exception as e:  # network, offline mode, missing repo, missing config, ...
        raise _hub_error(name, hub_id, e) from e


def _require_hub(name: str, hub_id: str) -> None:
    """An unreachable hub fails in seconds (not after the client's retries), unless cached."""
    from trainables.hub import cached, hub_reachable

    if not hub_reachable() and not cached(hub_id, "README.md", repo_type="dataset"):
        via = f" (hub id {hub_id!r})" if hub_id != name else ""
        raise ConfigError(
            f"data.dataset={name!r}{via}: the Hugging Face hub is unreachable from here and the "
            f"dataset is not in the local cache; use `builtin`, a local {'/'.join(FILE_SUFFIXES)} "
            "file, or run where the hub is reachable"
        )


def _hub_error(name: str, hub_id: str, e: Exception) -> ConfigError:
    via = f" (hub id {hub_id!r})" if hub_id != name else ""
    return ConfigError(
        f"data.dataset={name!r}{via}: could not load it from the Hugging Face hub: the hub is "
        f"unreachable (offline?) or the name is wrong ({type(e).__name__}: {str(e)[:200]}); "
        f"use `builtin`, a local {'/'.join(FILE_SUFFIXES)} file, or check the name and network"
    )


# --------------------------------------------------------------------------------------------
# Shared helpers


def _split_field(cfg: DataConfig, split: str) -> str:
    if split == cfg.train_split:
        return "data.train_split"
    if split == cfg.validation_split:
        return "data.validation_split"
    if split == cfg.test_split:
        return "data.test_split"
    return "split"


def check_split_exists(cfg: DataConfig, split: str) -> None:
    """Raise ConfigError unless `split` exists, without reading any of its examples' text (for
    the held-out split, which nothing may read before the study's final evaluation)."""
    field_name = _split_field(cfg, split)
    name = cfg.dataset.strip()
    if name == BUILTIN:
        if split not in SPLIT_OFFSETS:
            raise ConfigError(
                f"{field_name}={split!r}: the builtin dataset has the splits "
                f"{', '.join(SPLIT_OFFSETS)}; use one of them"
            )
        return
    if _looks_like_path(name):
        path = Path(name).expanduser()
        df = _read_frame(path, path.suffix.lower()) if path.is_file() else None
        if df is None:
            return  # the train split's read names the missing file
        if "split" not in df.columns:
            raise ConfigError(
                f"{field_name}={split!r}: {path.name} has no `split` column, so no "
                f"held-out rows; add one (train/validation/test), or set data.n_test=0 "
                "to skip the test evaluation"
            )
        present = sorted({str(v) for v in df["split"].dropna().unique()})
        if split not in present:
            raise ConfigError(
                f"{field_name}={split!r}: {path.name} has no rows with split == {split!r} "
                f"(splits present: {', '.join(present)}); set {field_name} to one of "
                "them, or data.n_test=0 to skip the test evaluation"
            )
        return
    _check_hub_only_fields(cfg, name)
    hub_id, config = _hub_source(cfg, name)
    _require_hub(name, hub_id)
    import datasets

    pinned = {"revision": cfg.revision} if cfg.revision else {}
    try:
        names = datasets.get_dataset_split_names(hub_id, config, **pinned)
    except Exception as e:  # noqa: BLE001 - network, offline, missing repo: say so in one line
        raise _hub_error(name, hub_id, e) from e
    if split.split("[", 1)[0] not in names:  # `train[:80%]`: a slice of the train split
        raise ConfigError(
            f"{field_name}={split!r}: hub dataset {hub_id!r} has the splits "
            f"{', '.join(names)}; set {field_name} to one of them, or data.n_test=0"
        )


def _clean(text: Any) -> str:
    if text is None or isinstance(text, float):  # None / NaN from pandas
        return ""
    return str(text).replace("\r\n", "\n").replace("\r", "\n").strip()


def _pairs(sources: Sequence[Any], targets: Sequence[Any]) -> list[tuple[str, str]]:
    """Cleaned (source, target) pairs; rows with an empty side are dropped."""
    cleaned = ((_clean(s), _clean(t)) for s, t in zip(sources, targets, strict=True))
    return [(s, t) for s, t in cleaned if s and t]


def _subsample(pairs: list[tuple[str, str]], n: int, seed: int) -> list[tuple[str, str]]:
    """`n` pairs drawn without replacement with `random.Random(seed)`, in their original order."""
    if len(pairs) <= n:
        return pairs
    keep = sorted(random.Random(seed).sample(range(len(pairs)), n))
    return [pairs[i] for i in keep]
