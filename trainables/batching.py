"""Tokenized splits, sortish batch order and dynamic padding: pure functions over token lists.

Sortish sampling (fairseq / HF `sortish_sampler`): shuffle, cut into chunks of
`SORTISH_CHUNK_BATCHES` batches, sort each chunk by source length, batch it, shuffle the batches.
Batches then hold examples of similar length, so dynamic padding pads less; `padding_fraction`
measures how much.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerBase

SORTISH_CHUNK_BATCHES = 50
LABEL_PAD = -100  # ignored by the loss


@dataclass(frozen=True)
class EncodedSplit:
    sources: list[list[int]]
    targets: list[list[int]]
    source_texts: list[str]
    target_texts: list[str]
    truncated_source_fraction: float  # share of examples whose source was cut at max length
    truncated_target_fraction: float

    def __len__(self) -> int:
        return len(self.sources)


def encode_pairs(
    pairs: list[tuple[str, str]],
    tokenizer: PreTrainedTokenizerBase,
    max_source_tokens: int,
    max_target_tokens: int,
) -> EncodedSplit:
    sources_text = [s for s, _ in pairs]
    targets_text = [t for _, t in pairs]
    full_sources = tokenizer(sources_text, truncation=False)["input_ids"]
    full_targets = tokenizer(text_target=targets_text, truncation=False)["input_ids"]
    sources = [_truncate(ids, max_source_tokens) for ids in full_sources]
    targets = [_truncate(ids, max_target_tokens) for ids in full_targets]
    n = max(len(pairs), 1)
    return EncodedSplit(
        sources,
        targets,
        sources_text,
        targets_text,
        truncated_source_fraction=sum(len(i) > max_source_tokens for i in full_sources) / n,
        truncated_target_fraction=sum(len(i) > max_target_tokens for i in full_targets) / n,
    )


def _truncate(ids: list[int], max_len: int) -> list[int]:
    # Keep the final token (</s>) so a truncated example still ends like the others.
    return ids if len(ids) <= max_len else ids[: max_len - 1] + ids[-1:]


def batch_order(
    lengths: list[int], batch_size: int, seed: int, epoch: int, sortish: bool
) -> list[list[int]]:
    """Indices of every batch of one epoch, reproducible from (seed, epoch)."""
    rng = random.Random(seed * 1_000_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    if sortish:
        chunk = batch_size * SORTISH_CHUNK_BATCHES
        order = [
            i
            for start in range(0, len(order), chunk)
            for i in sorted(order[start : start + chunk], key=lambda i: -lengths[i])
        ]
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    if sortish:
        rng.shuffle(batches)
    return batches


def shard_batches(batches: list[list[int]], rank: int, world_size: int) -> list[list[int]]:
    """This rank's batches; every rank gets the same count, so collective steps stay in lockstep."""
    usable = len(batches) - len(batches) % world_size
    return batches[rank:usable:world_size]


def padding_fraction(lengths: list[int], batches: list[list[int]]) -> float:
    """Share of the padded tensor that is padding, over all batches (0 = no waste)."""
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches if b)
    real = sum(lengths[i] for b in batches for i in b)
    return 1 - real / padded if padded else 0.0


@dataclass(frozen=True)
class ModelInputs:
    """What a model family needs of a batch beyond ids, mask and labels (`models.model_inputs`)."""

    # Pad sources to at least this many tokens: BigBird's block-sparse attention switches the
    # encoder to full attention for good on a shorter batch, so a short batch is padded instead.
    min_source_tokens: int = 0
    # LED: a `global_attention_mask` with the first token global (its summarization recipe).
    global_first_token: bool = False


def collate(
    split: EncodedSplit, indices: list[int], pad_id: int, inputs: ModelInputs = ModelInputs()
) -> dict[str, torch.Tensor]:
    """Tensors padded to the longest example in the batch (dynamic padding), or to the family's
    minimum length."""
    import torch

    src = [split.sources[i] for i in indices]
    tgt = [split.targets[i] for i in indices]
    src_len = max(max(map(len, src)), inputs.min_source_tokens)
    tgt_len = max(map(len, tgt))
    input_ids = torch.full((len(src), src_len), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(src), src_len), dtype=torch.long)
    labels = torch.full((len(tgt), tgt_len), LABEL_PAD, dtype=torch.long)
    for row, (s, t) in enumerate(zip(src, tgt)):
        input_ids[row, : len(s)] = torch.tensor(s)
        attention_mask[row, : len(s)] = 1
        labels[row, : len(t)] = torch.tensor(t)
    batch = {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}
    if inputs.global_first_token:
        batch["global_attention_mask"] = torch.zeros_like(attention_mask)
        batch["global_attention_mask"][:, 0] = 1
    return batch


def stream_tokens(split: EncodedSplit, indices: list[int]) -> tuple[int, int]:
    """Non-padding (source, target) tokens of a batch: the encoder's and the decoder's work."""
    return (
        sum(len(split.sources[i]) for i in indices),
        sum(len(split.targets[i]) for i in indices),
    )


def batch_tokens(split: EncodedSplit, indices: list[int]) -> int:
    """Non-padding source + target tokens of a batch (the throughput unit)."""
    return sum(stream_tokens(split, indices))
