"""load_split: the shared real samples, local files of each format, the hub (faked), errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from core.config import ConfigError, DataConfig
from trainables.datasets import KNOWN_DATASETS, dataset_spec, load_split, summary_lines

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"shared real-data samples not found at {SHARED_DATA} (CI keeps them beside the repo)",
)


def _shared(name: str) -> str:
    return str(SHARED_DATA / name)


def _raw(name: str) -> list[dict]:
    with open(SHARED_DATA / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


# --------------------------------------------------------------------------------------------
# The real samples through the local-file path


@needs_shared
@pytest.mark.parametrize(
    ("name", "split", "count", "source_col", "target_col"),
    [
        ("cnn_dailymail_hf.jsonl", "train", 10, "article", "highlights"),
        ("cnn_dailymail_hf.jsonl", "test", 10, "article", "highlights"),
        ("cnn_dailymail_fairseq_layout.jsonl", "validation", 100, "article", "highlights"),
        ("cnn_dailymail_fairseq_layout.jsonl", "train", 90, "article", "highlights"),
        ("xsum.jsonl", "test", 200, "document", "summary"),
        ("xsum.jsonl", "unknown", 10, "document", "summary"),
        ("samsum.jsonl", "validation", 818, "dialogue", "summary"),
    ],
)
def test_shared_samples_load_with_detected_columns(
    name: str, split: str, count: int, source_col: str, target_col: str
) -> None:
    pairs = load_split(DataConfig(dataset=_shared(name)), split, n=10_000, seed=0)
    assert len(pairs) == count
    expected = [
        (r[source_col].replace("\r\n", "\n").strip(), r[target_col].replace("\r\n", "\n").strip())
        for r in _raw(name)
        if r["split"] == split
    ]
    assert pairs == expected  # all rows, file order, only line endings and outer spaces changed
    assert all("\r" not in s and "\r" not in t for s, t in pairs)


@needs_shared
def test_samsum_crlf_is_normalised() -> None:
    raw = _raw("samsum.jsonl")
    assert sum("\r\n" in r["dialogue"] for r in raw) > 100  # the sample really has them
    pairs = load_split(DataConfig(dataset=_shared("samsum.jsonl")), "validation", 10_000, 0)
    first = pairs[0][0].split("\n")
    assert first[0] == "A: Hi Tom, are you busy tomorrow’s afternoon?"
    assert len(first) == raw[0]["dialogue"].count("\n") + 1
    # The summary's trailing space is stripped.
    assert pairs[0][1].endswith("chose the puppy.")


@needs_shared
def test_subsampling_is_seeded_without_replacement_and_keeps_file_order() -> None:
    cfg = DataConfig(dataset=_shared("samsum.jsonl"))
    full = load_split(cfg, "validation", 10_000, seed=0)
    a = load_split(cfg, "validation", 50, seed=1)
    assert len(a) == 50 and len(set(a)) == 50
    assert a == load_split(cfg, "validation", 50, seed=1)
    assert a != load_split(cfg, "validation", 50, seed=2)
    positions = [full.index(p) for p in a]
    assert positions == sorted(positions)
    # Asking for more than there is returns everything.
    assert load_split(cfg, "validation", 5_000, seed=1) == full


@needs_shared
def test_explicit_columns_override_detection() -> None:
    cfg = DataConfig(
        dataset=_shared("xsum.jsonl"), source_column="summary", target_column="document"
    )
    pairs = load_split(cfg, "unknown", 3, seed=0)
    raw = [r for r in _raw("xsum.jsonl") if r["split"] == "unknown"]
    assert pairs[0][0] in {r["summary"] for r in raw}
    assert all(len(s) < len(t) for s, t in pairs)


@needs_shared
def test_summary_lines_splits_the_fairseq_highlights() -> None:
    row = _raw("cnn_dailymail_fairseq_layout.jsonl")[0]
    assert "\n" not in row["highlights"]
    assert summary_lines(row["highlights"]) == (
        "A man in suburban Boston is selling snow online to customers in warmer states.\n"
        "For $89, he will ship 6 pounds of snow in an insulated Styrofoam box."
    )
    # HF-layout highlights keep their lines.
    hf = _raw("cnn_dailymail_hf.jsonl")[0]["highlights"]
    assert summary_lines(hf) == hf


# --------------------------------------------------------------------------------------------
# Local files of every format (written into tmp_path by the test)


ROWS = [
    {"document": f"Document number {i}.\r\nSecond line.", "summary": f"Summary {i}.", "split": s}
    for i, s in enumerate(["train"] * 6 + ["validation"] * 3)
]


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_every_file_format_reads_the_same_pairs(tmp_path: Path, suffix: str) -> None:
    df = pd.DataFrame(ROWS)
    path = tmp_path / f"data{suffix}"
    if suffix == ".jsonl":
        df.to_json(path, orient="records", lines=True)
    elif suffix == ".json":
        df.to_json(path, orient="records")
    elif suffix == ".csv":
        df.to_csv(path, index=False)
    else:
        df.to_parquet(path)
    pairs = load_split(DataConfig(dataset=str(path)), "validation", 10, seed=0)
    assert pairs == [(f"Document number {i}.\nSecond line.", f"Summary {i}.") for i in (6, 7, 8)]


def test_json_lines_saved_as_json_and_a_file_without_split_column(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    rows = [{"dialogue": f"A: hi {i}\nB: bye", "summary": f"A says hi {i}."} for i in range(4)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.warns(UserWarning, match="no `split` column"):
        pairs = load_split(DataConfig(dataset=str(path)), "train", 10, seed=0)
    assert pairs == [(r["dialogue"], r["summary"]) for r in rows]


def test_rows_with_an_empty_side_are_dropped(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame(
        {"article": ["a one.", "", "a three.", "a four."], "highlights": ["h1", "h2", "  ", "h4"]}
    ).to_csv(path, index=False)
    with pytest.warns(UserWarning):
        pairs = load_split(DataConfig(dataset=str(path)), "train", 10, seed=0)
    assert pairs == [("a one.", "h1"), ("a four.", "h4")]


def test_builtin_returns_n_pairs() -> None:
    pairs = load_split(DataConfig(), "train", 7, seed=0)
    assert len(pairs) == 7 and all(s and t for s, t in pairs)


# --------------------------------------------------------------------------------------------
# The known-dataset table


def test_known_datasets_table() -> None:
    assert set(KNOWN_DATASETS) == {"builtin", "cnn_dailymail", "xsum", "samsum", "reddit_tifu"}
    tifu = KNOWN_DATASETS["reddit_tifu"]
    assert (tifu.hub_config, tifu.source_column, tifu.target_column) == (
        "long",
        "documents",
        "tldr",
    )
    assert tifu.splits == ("train[:80%]", "train[80%:90%]", "train[90%:]")
    cnn = KNOWN_DATASETS["cnn_dailymail"]
    assert (cnn.hub_config, cnn.source_column, cnn.target_column, cnn.lead_k) == (
        "3.0.0", "article", "highlights", 3
    )  # fmt: skip
    assert (KNOWN_DATASETS["xsum"].source_column, KNOWN_DATASETS["xsum"].lead_k) == ("document", 1)
    assert KNOWN_DATASETS["samsum"].source_column == "dialogue"
    assert dataset_spec("abisee/cnn_dailymail") is cnn
    assert dataset_spec("EdinburghNLP/xsum") is KNOWN_DATASETS["xsum"]
    assert dataset_spec("nope") is None


# --------------------------------------------------------------------------------------------
# The hub path, with `datasets.load_dataset` replaced (the hub is unreachable here)


def _fake_hub(monkeypatch: pytest.MonkeyPatch, behaviour):
    import datasets

    from trainables import hub

    calls: list[tuple[tuple, dict]] = []

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        return behaviour(len(calls), *args, **kwargs)

    monkeypatch.setattr(datasets, "load_dataset", fake)
    monkeypatch.setattr(hub, "hub_reachable", lambda: True)  # the probe would say offline here
    return calls


def test_hub_known_dataset_uses_table_and_subsamples(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    table = datasets.Dataset.from_dict(
        {"id": [str(i) for i in range(20)], "article": [f"Art {i}.\r\nMore." for i in range(20)],
         "highlights": [f"High {i}." for i in range(20)]}
    )  # fmt: skip
    calls = _fake_hub(monkeypatch, lambda k, *a, **kw: table)
    pairs = load_split(DataConfig(dataset="cnn_dailymail"), "validation", 5, seed=3)
    assert calls == [(("abisee/cnn_dailymail", "3.0.0"), {"split": "validation"})]
    assert len(pairs) == 5 and len(set(pairs)) == 5
    idx = [int(s.split()[1].rstrip(".")) for s, _ in pairs]
    assert idx == sorted(idx)
    assert pairs == [(f"Art {i}.\nMore.", f"High {i}.") for i in idx]
    assert pairs == load_split(DataConfig(dataset="cnn_dailymail"), "validation", 5, seed=3)


def test_hub_script_dataset_is_retried_from_the_parquet_export(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datasets

    table = datasets.Dataset.from_dict({"dialogue": ["A: hi\nB: yo"], "summary": ["They greet."]})

    def behaviour(k, *args, **kwargs):
        if k == 1:
            raise RuntimeError("Dataset scripts are no longer supported, but found samsum.py")
        return table

    calls = _fake_hub(monkeypatch, behaviour)
    pairs = load_split(DataConfig(dataset="samsum"), "train", 10, seed=0)
    assert pairs == [("A: hi\nB: yo", "They greet.")]
    assert calls[1] == (
        ("Samsung/samsum", None),
        {"split": "train", "revision": "refs/convert/parquet"},
    )


def test_other_hub_dataset_needs_and_uses_columns(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    table = datasets.Dataset.from_dict({"text": ["Long text."], "tldr": ["Short."]})
    calls = _fake_hub(monkeypatch, lambda k, *a, **kw: table)
    cfg = DataConfig(dataset="someone/reddit_tldr", source_column="text", target_column="tldr")
    assert load_split(cfg, "train", 4, seed=0) == [("Long text.", "Short.")]
    assert calls[0][0] == ("someone/reddit_tldr", None)
    bad = DataConfig(dataset="someone/reddit_tldr", source_column="body", target_column="tldr")
    with pytest.raises(ConfigError) as e:
        load_split(bad, "train", 4, seed=0)
    msg = str(e.value)
    assert "data.source_column='body'" in msg and "available: text, tldr" in msg


def test_hub_unreachable_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(k, *args, **kwargs):
        # What datasets 5 raised here for a real call (after 5 retries, about 25 s).
        raise ConnectionError(
            "Couldn't reach 'EdinburghNLP/xsum' on the Hub (LocalEntryNotFoundError)"
        )

    _fake_hub(monkeypatch, offline)
    with pytest.raises(ConfigError) as e:
        load_split(DataConfig(dataset="xsum"), "train", 4, seed=0)
    msg = str(e.value)
    assert msg.startswith("data.dataset='xsum' (hub id 'EdinburghNLP/xsum')")
    assert "unreachable" in msg and "name is wrong" in msg and "ConnectionError" in msg
    assert isinstance(e.value.__cause__, ConnectionError)


def test_hub_unknown_split_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_split(k, *args, **kwargs):
        raise ValueError("Unknown split \"dev\". Should be one of ['train', 'test'].")

    _fake_hub(monkeypatch, no_split)
    cfg = DataConfig(dataset="xsum", validation_split="dev")
    with pytest.raises(ConfigError, match=r"^data\.validation_split='dev': .*has no such split"):
        load_split(cfg, "dev", 4, seed=0)


# --------------------------------------------------------------------------------------------
# Bad input: every message names the field and the value


def test_unknown_dataset_name() -> None:
    with pytest.raises(ConfigError) as e:
        load_split(DataConfig(dataset="cnn_daily"), "train", 4, seed=0)
    msg = str(e.value)
    assert msg.startswith("data.dataset='cnn_daily': not a known dataset")
    assert "cnn_dailymail" in msg and "full id (owner/name)" in msg


def test_other_hub_dataset_with_a_known_layout_needs_no_columns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datasets

    table = datasets.Dataset.from_dict({"id": ["1"], "document": ["Doc."], "summary": ["Sum."]})
    _fake_hub(monkeypatch, lambda k, *a, **kw: table)
    cfg = DataConfig(dataset="someone/news_summaries")
    assert load_split(cfg, "train", 4, seed=0) == [("Doc.", "Sum.")]
    odd = datasets.Dataset.from_dict({"body": ["Long."], "tldr": ["Short."]})
    _fake_hub(monkeypatch, lambda k, *a, **kw: odd)
    with pytest.raises(ConfigError, match="none of the known column layouts.*body, tldr"):
        load_split(cfg, "train", 4, seed=0)


def test_hub_configuration_and_revision_are_passed_and_pinned(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import datasets

    table = datasets.Dataset.from_dict({"article": ["Art."], "highlights": ["High."]})
    calls = _fake_hub(monkeypatch, lambda k, *a, **kw: table)
    cfg = DataConfig(dataset="cnn_dailymail", dataset_config="2.0.0", revision="a1b2c3d")
    load_split(cfg, "train", 4, seed=0)
    assert calls == [(("abisee/cnn_dailymail", "2.0.0"), {"split": "train", "revision": "a1b2c3d"})]

    def script(k, *args, **kwargs):
        raise RuntimeError("Dataset scripts are no longer supported, but found samsum.py")

    calls = _fake_hub(monkeypatch, script)  # a pinned revision is never swapped for another
    with pytest.raises(ConfigError, match="could not load it"):
        load_split(DataConfig(dataset="samsum", revision="v1"), "train", 4, seed=0)
    assert len(calls) == 1


@pytest.mark.parametrize("fld", ["dataset_config", "revision"])
def test_hub_only_fields_on_builtin_or_a_file_are_an_error(fld: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^data.{fld}='x': the built-in dataset has none"):
        load_split(DataConfig(**{fld: "x"}), "train", 4, seed=0)
    path = tmp_path / "d.jsonl"
    path.write_text('{"document": "Doc.", "summary": "Sum."}\n')
    with pytest.raises(ConfigError, match=f"^data.{fld}='x': a local file has none"):
        load_split(DataConfig(dataset=str(path), **{fld: "x"}), "train", 4, seed=0)


def test_missing_file() -> None:
    with pytest.raises(ConfigError, match=r"^data\.dataset='/nonexistent/x\.jsonl': no such file"):
        load_split(DataConfig(dataset="/nonexistent/x.jsonl"), "train", 4, seed=0)


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("hello")
    with pytest.raises(ConfigError, match=r"^data\.dataset=.*data\.txt': unsupported file type"):
        load_split(DataConfig(dataset=str(path)), "train", 4, seed=0)


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    path.write_text('{"article": "a", "highlights": \n')
    with pytest.raises(
        ConfigError, match=r"^data\.dataset=.*broken\.jsonl': cannot read it as jsonl"
    ):
        load_split(DataConfig(dataset=str(path)), "train", 4, seed=0)


@needs_shared
def test_missing_configured_column_lists_available_ones() -> None:
    cfg = DataConfig(dataset=_shared("samsum.jsonl"), target_column="abstract")
    with pytest.raises(ConfigError) as e:
        load_split(cfg, "validation", 4, seed=0)
    msg = str(e.value)
    assert msg.startswith("data.target_column='abstract': no such column in samsum.jsonl")
    assert "available: id, dialogue, summary, split, source" in msg


def test_undetectable_layout_lists_available_columns(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    pd.DataFrame({"text": ["x"], "tldr": ["y"], "split": ["train"]}).to_csv(path, index=False)
    with pytest.raises(ConfigError) as e:
        load_split(DataConfig(dataset=str(path)), "train", 4, seed=0)
    msg = str(e.value)
    assert msg.startswith("data.source_column='': d.csv has none of the known column layouts")
    assert "available columns: text, tldr, split" in msg
    # Naming one column still needs the other to be known.
    with pytest.raises(ConfigError, match=r"^data\.target_column='': "):
        load_split(DataConfig(dataset=str(path), source_column="text"), "train", 4, seed=0)
    ok = DataConfig(dataset=str(path), source_column="text", target_column="tldr")
    assert load_split(ok, "train", 4, seed=0) == [("x", "y")]


@needs_shared
def test_empty_split_after_filtering_names_the_split_field() -> None:
    cfg = DataConfig(dataset=_shared("cnn_dailymail_hf.jsonl"))
    with pytest.raises(ConfigError) as e:
        load_split(cfg, "validation", 4, seed=0)
    msg = str(e.value)
    assert msg.startswith("data.validation_split='validation': cnn_dailymail_hf.jsonl has no rows")
    assert "splits present: test, train" in msg


def test_all_rows_empty_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text(json.dumps({"document": "", "summary": "s", "split": "train"}) + "\n")
    with pytest.raises(ConfigError, match=r"^data\.train_split='train': no usable rows"):
        load_split(DataConfig(dataset=str(path)), "train", 4, seed=0)


def test_builtin_unknown_split_and_bad_n() -> None:
    cfg = DataConfig(train_split="dev")
    with pytest.raises(ConfigError, match=r"^data\.train_split='dev': the builtin dataset has"):
        load_split(cfg, "dev", 4, seed=0)
    with pytest.raises(ConfigError, match=r"^n=0: "):
        load_split(DataConfig(), "train", 0, seed=0)
