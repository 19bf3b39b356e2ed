"""Tokenized splits, sortish batching, padding and sharding (pure; no Ray)."""

import pytest

from core.config import DataConfig
from trainables import batching
from trainables.datasets import load_split
from trainables.models import train_tokenizer


@pytest.fixture(scope="module")
def encoded():
    pairs = load_split(DataConfig(), "train", 400, seed=0)
    tok = train_tokenizer([t for p in pairs for t in p], 1024)
    return batching.encode_pairs(pairs, tok, max_source_tokens=128, max_target_tokens=40)


def test_truncation_is_reported_and_respected(encoded):
    assert max(map(len, encoded.sources)) == 128 and max(map(len, encoded.targets)) <= 40
    assert 0 < encoded.truncated_source_fraction < 1
    truncated = round(encoded.truncated_source_fraction * len(encoded))
    at_limit = sum(len(s) == 128 for s in encoded.sources)
    assert truncated <= at_limit <= truncated + 5  # cut ones sit at the limit, few fit exactly
    assert all(s[-1] == 2 for s in encoded.sources)  # every source still ends in </s>


def test_sortish_reduces_padding(encoded):
    lengths = [len(s) for s in encoded.sources]
    plain = batching.padding_fraction(
        lengths, batching.batch_order(lengths, 16, 0, 0, sortish=False)
    )
    sortish = batching.padding_fraction(
        lengths, batching.batch_order(lengths, 16, 0, 0, sortish=True)
    )
    assert sortish < plain / 2, (plain, sortish)


def test_batch_order_is_a_reproducible_permutation(encoded):
    lengths = [len(s) for s in encoded.sources]
    a = batching.batch_order(lengths, 16, seed=3, epoch=1, sortish=True)
    assert a == batching.batch_order(lengths, 16, seed=3, epoch=1, sortish=True)
    assert a != batching.batch_order(lengths, 16, seed=3, epoch=2, sortish=True)
    assert sorted(i for b in a for i in b) == list(range(len(lengths)))


def test_shards_have_equal_batch_counts():
    batches = [[i] for i in range(7)]
    shards = [batching.shard_batches(batches, r, 2) for r in range(2)]
    assert shards == [[[0], [2], [4]], [[1], [3], [5]]]


def test_collate_pads_dynamically(encoded):
    batch = batching.collate(encoded, [0, 1, 2], pad_id=0)
    longest = max(len(encoded.sources[i]) for i in (0, 1, 2))
    assert batch["input_ids"].shape == (3, longest)
    assert int(batch["attention_mask"].sum()) == sum(len(encoded.sources[i]) for i in (0, 1, 2))
    assert int((batch["labels"] != batching.LABEL_PAD).sum()) == sum(
        len(encoded.targets[i]) for i in (0, 1, 2)
    )
    assert batching.batch_tokens(encoded, [0, 1, 2]) == int(batch["attention_mask"].sum()) + int(
        (batch["labels"] != batching.LABEL_PAD).sum()
    )
