"""The dataset-details and model-details tables, counted from what a study loads. The dataset
counts on the real SAMSum sample are checked against counts made here from the raw file."""

import json

import pytest

from core.config import DataConfig, ModelConfig, StudyConfig
from core.reference import dataset_sizes, pretraining
from trainables.describe import data_details, describe, model_details, split_details
from trainables.models import TINY, train_tokenizer


def test_dataset_details_on_the_real_samsum_sample_match_a_count_by_hand(shared_data):
    path = shared_data / "samsum.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 818  # the complete validation split
    dialogues = [r["dialogue"] for r in rows]
    summaries = [r["summary"] for r in rows]
    # by hand: whitespace words of the raw text (line endings and outer spaces do not count)
    words = sum(len(d.split()) for d in dialogues) / 818
    summary_words = sum(len(s.split()) for s in summaries) / 818
    cfg = StudyConfig(
        data=DataConfig(
            dataset=str(path),
            train_split="validation",
            validation_split="x",
            n_train=818,
            n_validation=1,
            n_test=0,
        )
    )
    from trainables.datasets import load_split

    pairs = load_split(cfg.data, "validation", 818, 0)
    tok = train_tokenizer([t for p in pairs for t in p], 1024)
    details = split_details(pairs, tok, max_source_tokens=160)
    assert details["samples"] == 818
    assert details["source_words"] == pytest.approx(words)
    assert details["target_words"] == pytest.approx(summary_words)
    # BPE tokens: the tokenizer's ids of each text (with its </s>), untruncated
    by_hand = sum(len(tok(p[0])["input_ids"]) for p in pairs) / 818
    assert details["source_tokens"] == pytest.approx(by_hand)
    over = sum(len(tok(p[0])["input_ids"]) > 160 for p in pairs) / 818
    assert details["source_truncated_fraction"] == pytest.approx(over) and 0 < over < 1
    assert dataset_sizes("samsum") == {
        "train": 14732, "validation": 818, "test": 819,
        "source": "Gliwa et al. 2019, SAMSum, section 2",
    }  # fmt: skip


def test_data_details_cover_the_training_and_validation_splits():
    cfg = StudyConfig(data=DataConfig(n_train=32, n_validation=8, n_test=4))
    details = data_details(cfg)
    # the held-out split is not read at the start: it is counted when it is scored
    assert {k: v["samples"] for k, v in details["splits"].items()} == {
        "train": 32, "validation": 8
    }  # fmt: skip


def test_describe_scores_lead_k_on_the_validation_split_the_trials_were_ranked_on():
    from rouge_score import rouge_scorer

    from trainables.datasets import load_split
    from trainables.evaluation import lead_k

    cfg = StudyConfig(data=DataConfig(n_train=32, n_validation=8, n_test=4))
    described = describe([cfg])
    assert described.data_details["splits"]["validation"]["samples"] == 8
    assert [m["model"] for m in described.models] == [cfg.model.name]
    # by hand: the built-in dialogues' floor is lead-3, its ROUGE-1 straight from rouge-score
    assert described.baseline["lead_k"] == 3
    pairs = load_split(cfg.data, cfg.data.validation_split, 8, cfg.data.seed)
    scorer = rouge_scorer.RougeScorer(["rouge1"], use_stemmer=True)
    by_hand = [scorer.score(t, lead_k(s, 3))["rouge1"].fmeasure for s, t in pairs]
    assert described.baseline["rouge1"] == pytest.approx(sum(by_hand) / 8)
    assert 0 < described.baseline["rouge1"] < 1


def test_model_details_count_the_preset_and_name_its_pre_training():
    details = model_details(ModelConfig(name="tiny-bart"), DataConfig(n_train=32))
    d, n, f = TINY["d_model"], TINY["layers"], TINY["ffn"]
    assert details["family"] == "bart" and details["preset"]
    # the encoder's layers alone: attention (4 d^2 + 4 d biases), FFN, two layer norms
    layer = 4 * d * d + 4 * d + d * f + f + f * d + d + 2 * 2 * d
    assert details["encoder_parameters"] > n * layer
    assert details["parameters"] < details["encoder_parameters"] + details["decoder_parameters"]
    assert pretraining("tiny-bart")[0].startswith("none: random initialisation")
    assert pretraining("facebook/bart-large-cnn")[1] == "Lewis et al. 2020, BART, section 5.1"
    assert pretraining("google/pegasus-xsum")[0].startswith("C4 and HugeNews")
    assert pretraining("someone/unknown") is None
