"""Sentence splitting, ROUGE on hand-computed examples, lead-k, and the CNN/DM layout question."""

from __future__ import annotations

import math
import statistics
from pathlib import Path

import pytest

from core.config import DataConfig
from trainables.datasets import KNOWN_DATASETS, load_split
from trainables.evaluation import (
    _scorer,
    lead_k,
    lead_k_baseline,
    rouge_scores,
    split_sentences,
    summary_lines,
)

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(),
    reason=f"shared real-data samples not found at {SHARED_DATA} (CI keeps them beside the repo)",
)


# --------------------------------------------------------------------------------------------
# split_sentences


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Mr. Smith went to Washington. He met Dr. J. K. Rowling there.",
            ["Mr. Smith went to Washington.", "He met Dr. J. K. Rowling there."],
        ),
        (
            "The U.S. economy grew 3.5 percent. It was the best year since 2004!",
            ["The U.S. economy grew 3.5 percent.", "It was the best year since 2004!"],
        ),
        (
            'Officials said "It is good." Then they left. "Why?" she asked.',
            ['Officials said "It is good."', "Then they left.", '"Why?" she asked.'],
        ),
        ('"Is it?" she asked. Yes.', ['"Is it?" she asked.', "Yes."]),
        ("It opens at 9 a.m. Eastern. No. 5 won.", ["It opens at 9 a.m. Eastern.", "No. 5 won."]),
        ("Prices rose in Jan. 2015. We sat. The answer was no. Fine.",
         ["Prices rose in Jan. 2015.", "We sat.", "The answer was no.", "Fine."]),
        # Tokenised CNN/DM highlights: a space before the full stop.
        ("Bush to address VFW on Wednesday . Bush to say withdrawing emboldened terrorists .",
         ["Bush to address VFW on Wednesday .", "Bush to say withdrawing emboldened terrorists ."]),
        # A line break is always a boundary; lowercase after a stop is not.
        ("A: Hi Tom, busy?\r\nB: Yes. Why?\n\nA: e.g. this", ["A: Hi Tom, busy?", "B: Yes.", "Why?",
                                                            "A: e.g. this"]),
        ("Wait... What? Really?!", ["Wait...", "What?", "Really?!"]),
        ("", []),
    ],
)  # fmt: skip
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert split_sentences(text) == expected


def test_known_limitation_acronym_at_sentence_end() -> None:
    # A dotted acronym before a capital is kept inside the sentence ("U.S. President" is far
    # more common in news than a sentence ending in "U.S.").
    assert split_sentences("He moved to the U.S. He liked it.") == [
        "He moved to the U.S. He liked it."
    ]


def test_summary_lines_keeps_newlines_and_splits_lines() -> None:
    assert summary_lines("One. Two.\nThree\n\n Four! ") == "One.\nTwo.\nThree\nFour!"


def test_lead_k() -> None:
    text = "First one. Second one? Third one! Fourth one."
    assert lead_k(text, 1) == "First one."
    assert lead_k(text, 3) == "First one.\nSecond one?\nThird one!"
    assert lead_k(text, 10) == "First one.\nSecond one?\nThird one!\nFourth one."
    with pytest.raises(ValueError, match="k=0"):
        lead_k(text, 0)


# --------------------------------------------------------------------------------------------
# ROUGE on examples computed by hand


def test_rouge_hand_computed_with_stemming() -> None:
    # Tokens after lower-casing and Porter stemming (words longer than 3 characters only):
    #   prediction "the cats were running" -> the cat were run   (4 tokens)
    #   reference  "the cat runs"          -> the cat run        (3 tokens)
    # ROUGE-1: 3 shared -> P 3/4, R 3/3, F = 2*(3/4)/(3/4+1) = 6/7
    # ROUGE-2: bigrams (the cat)(cat were)(were run) vs (the cat)(cat run): 1 shared ->
    #          P 1/3, R 1/2, F = 2*(1/6)/(5/6) = 2/5
    # ROUGE-L: LCS "the cat run" = 3 -> 6/7; Lsum on one sentence each = ROUGE-L.
    scores = rouge_scores(["the cats were running"], ["the cat runs"])
    assert scores == pytest.approx(
        {"rouge1": 6 / 7, "rouge2": 2 / 5, "rougeL": 6 / 7, "rougeLsum": 6 / 7}, abs=1e-12
    )
    # Without stemming only "the" would match: F = 2*(1/4)(1/3)/(1/4+1/3) = 2/7.
    from rouge_score import rouge_scorer

    raw = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=False).score(
        "the cat runs", "the cats were running"
    )
    assert raw["rouge1"].fmeasure == pytest.approx(2 / 7)


def test_rouge_lsum_hand_computed_and_split_dependence() -> None:
    # prediction: "the dog sat. The cat ran."  reference: "the cat sat. The dog ran."
    # ROUGE-1: all 6 tokens shared -> 1. ROUGE-2: (the dog)(sat the)(the cat) of 5 -> 3/5.
    # ROUGE-L over the whole text: LCS "the sat the ran" = 4 of 6 -> 2/3.
    # ROUGE-Lsum, one sentence per line: reference "the cat sat" vs the prediction's sentences
    # gives LCS unions {the, sat} + {the, cat} = {the, cat, sat}: 3 hits; "the dog ran" likewise
    # 3 hits -> 6 of 6 -> 1.
    pred, ref = ["the dog sat. The cat ran."], ["the cat sat. The dog ran."]
    split = rouge_scores(pred, ref)
    assert split == pytest.approx(
        {"rouge1": 1.0, "rouge2": 0.6, "rougeL": 2 / 3, "rougeLsum": 1.0}, abs=1e-12
    )
    unsplit = rouge_scores(pred, ref, split_summaries=False)
    assert unsplit["rougeLsum"] == unsplit["rougeL"] == pytest.approx(2 / 3)
    assert unsplit["rouge1"] == split["rouge1"] and unsplit["rouge2"] == split["rouge2"]


def test_rouge_is_the_mean_over_examples() -> None:
    scores = rouge_scores(["the cats were running", "same words"], ["the cat runs", "same words"])
    assert scores["rouge1"] == pytest.approx((6 / 7 + 1) / 2)
    assert scores["rouge2"] == pytest.approx((2 / 5 + 1) / 2)
    assert rouge_scores(["nothing"], ["else"]) == dict.fromkeys(scores, 0.0)


def test_rouge_input_errors_and_scorer_built_once() -> None:
    with pytest.raises(ValueError, match="2 predictions but 1 references"):
        rouge_scores(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="no predictions"):
        rouge_scores([], [])
    assert _scorer() is _scorer()


def test_lead_k_baseline_on_pairs() -> None:
    pairs = [("The cat sat. The dog ran. Birds flew.", "The cat sat.")]
    assert lead_k_baseline(pairs, 1)["rouge1"] == 1.0
    assert lead_k_baseline(pairs, 2)["rouge1"] == pytest.approx(2 * (3 / 6) / (3 / 6 + 1))


# --------------------------------------------------------------------------------------------
# The two CNN/DM layouts on the shared samples


def _cnn(name: str, splits: tuple[str, ...]) -> list[tuple[str, str]]:
    cfg = DataConfig(dataset=str(SHARED_DATA / name))
    return [p for split in splits for p in load_split(cfg, split, 10_000, seed=0)]


def _per_example_lsum(preds: list[str], pairs: list[tuple[str, str]]) -> list[float]:
    return [rouge_scores([p], [t])["rougeLsum"] for p, (_, t) in zip(preds, pairs, strict=True)]


@needs_shared
def test_cnn_layouts_same_articles_round_trip() -> None:
    # The two shared files hold different articles (SOURCES.md; no id or text in common), so
    # first compare the layouts on the same articles: turn the HF file's highlights into the
    # fairseq layout (sentences joined by a space on one line) and score lead-3 both ways.
    hf = _cnn("cnn_dailymail_hf.jsonl", ("train", "test"))
    assert len(hf) == 20
    preds = [lead_k(s, 3) for s, _ in hf]
    hf_refs = [t for _, t in hf]
    fairseq_refs = [t.replace("\n", " ") for t in hf_refs]
    reference = rouge_scores(preds, hf_refs)
    split = rouge_scores(preds, fairseq_refs)  # summary_lines re-splits the one-line highlights
    # ROUGE-1/2/L ignore line breaks: identical.
    for key in ("rouge1", "rouge2", "rougeL"):
        assert split[key] == pytest.approx(reference[key], abs=1e-12)
    # ROUGE-Lsum agrees within a small tolerance: 3 of the 20 highlights have a sentence without
    # a final stop ('... free fall"' then 'Minnesota ...'), whose boundary the one-line layout
    # loses for good.
    assert reference["rougeLsum"] == pytest.approx(0.2991, abs=5e-4)
    assert split["rougeLsum"] == pytest.approx(reference["rougeLsum"], abs=0.01)
    lost = sum(summary_lines(f) != t for f, t in zip(fairseq_refs, hf_refs, strict=True))
    assert lost == 3
    # Not splitting (a one-line model output against one-line highlights, the #6808 mistake):
    # ROUGE-Lsum collapses to ROUGE-L, about 8 points lower here.
    one_line = rouge_scores(
        [p.replace("\n", " ") for p in preds], fairseq_refs, split_summaries=False
    )
    assert one_line["rougeLsum"] == one_line["rougeL"] == pytest.approx(reference["rougeL"])
    assert reference["rougeLsum"] - one_line["rougeLsum"] > 0.06


@needs_shared
def test_cnn_fairseq_file_needs_splitting_and_then_agrees_with_hf_file() -> None:
    hf = _cnn("cnn_dailymail_hf.jsonl", ("train", "test"))
    fs = _cnn("cnn_dailymail_fairseq_layout.jsonl", ("train", "validation"))
    assert len(fs) == 190 and all("\n" not in t for _, t in fs)
    k = KNOWN_DATASETS["cnn_dailymail"].lead_k
    hf_leads, fs_leads = [lead_k(s, k) for s, _ in hf], [lead_k(s, k) for s, _ in fs]
    # On the fairseq file itself: unsplit, ROUGE-Lsum == ROUGE-L exactly; split, it is higher.
    unsplit = rouge_scores(
        [p.replace("\n", " ") for p in fs_leads], [t for _, t in fs], split_summaries=False
    )
    assert unsplit["rougeLsum"] == unsplit["rougeL"]
    a, b = _per_example_lsum(hf_leads, hf), _per_example_lsum(fs_leads, fs)
    split_lsum = statistics.mean(b)
    assert split_lsum - unsplit["rougeL"] > 0.05
    # Across files (different articles, so statistically): once split, the fairseq file's lead-3
    # ROUGE-Lsum matches the HF file's within two standard errors of the difference and 0.03.
    diff = abs(statistics.mean(a) - split_lsum)
    se = math.hypot(
        statistics.stdev(a) / math.sqrt(len(a)), statistics.stdev(b) / math.sqrt(len(b))
    )
    assert diff < 2 * se and diff < 0.03
    # Without splitting, the fairseq file would sit clearly below the HF file.
    assert statistics.mean(a) - unsplit["rougeLsum"] > 0.06


@needs_shared
def test_lead_baselines_near_published_values() -> None:
    # XSum Lead-1 (Narayan et al. 2018, test): R1 16.30 / R2 1.60 / RL 11.95. On the 200 shared
    # test documents: 16.3 / 1.6 / 11.5.
    xsum = load_split(DataConfig(dataset=str(SHARED_DATA / "xsum.jsonl")), "test", 10_000, 0)
    scores = lead_k_baseline(xsum, KNOWN_DATASETS["xsum"].lead_k)
    assert scores["rouge1"] == pytest.approx(0.163, abs=0.02)
    assert scores["rouge2"] == pytest.approx(0.016, abs=0.01)
    assert scores["rougeL"] == pytest.approx(0.1195, abs=0.02)
    # One-sentence summaries: ROUGE-Lsum is ROUGE-L (up to sentence splits inside the lead).
    assert scores["rougeLsum"] == pytest.approx(scores["rougeL"], abs=0.005)
