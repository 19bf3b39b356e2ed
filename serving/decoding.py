"""Greedy decoding as transformers' `generate()` does it, over any encoder and decoder step.

The ONNX Runtime and Triton paths run the exported encoder once and the decoder once per new
token; `greedy_summarize` is the loop between them, with the logits rules transformers applies
for greedy search on these models (its own decoder start, forced BOS on the first token, forced
EOS on the last, EOS suppressed until `min_new_tokens`, finished rows padded), so their token ids
can be compared with PyTorch's `generate(num_beams=1)` one for one. `pytorch_summarize` is that
PyTorch baseline, with the same settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel

# (input_ids, attention_mask) -> encoder hidden states
EncoderStep = Callable[[np.ndarray, np.ndarray], np.ndarray]
# (decoder_input_ids, encoder hidden states, attention_mask) -> the last position's logits
DecoderStep = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class GreedySettings:
    """What greedy decoding needs of a model, read off its config and generation config."""

    max_new_tokens: int
    decoder_start_token_id: int
    eos_token_id: int
    pad_token_id: int
    min_new_tokens: int = 0
    forced_bos_token_id: int | None = None
    forced_eos_token_id: int | None = None

    @classmethod
    def of(
        cls, model: PreTrainedModel, max_new_tokens: int, min_new_tokens: int = 0
    ) -> GreedySettings:
        generation, config = model.generation_config, model.config

        def first(*values: Any) -> Any:
            return next((v for v in values if v is not None), None)

        eos = first(generation.eos_token_id, config.eos_token_id)
        return cls(
            max_new_tokens=max_new_tokens,
            decoder_start_token_id=int(
                first(generation.decoder_start_token_id, config.decoder_start_token_id)
            ),
            eos_token_id=int(eos[0] if isinstance(eos, list) else eos),
            pad_token_id=int(first(generation.pad_token_id, config.pad_token_id)),
            min_new_tokens=min_new_tokens,
            forced_bos_token_id=first(generation.forced_bos_token_id),
            forced_eos_token_id=first(generation.forced_eos_token_id),
        )


def greedy_summarize(
    encode: EncoderStep,
    decode: DecoderStep,
    input_ids: np.ndarray,
    attention_mask: np.ndarray,
    settings: GreedySettings,
) -> np.ndarray:
    """Token ids (batch, 1 + new tokens), the decoder start first, as `generate()` returns them."""
    hidden = encode(input_ids, attention_mask)
    batch = input_ids.shape[0]
    ids = np.full((batch, 1), settings.decoder_start_token_id, dtype=np.int64)
    done = np.zeros(batch, dtype=bool)
    for step in range(settings.max_new_tokens):
        logits = np.array(decode(ids, hidden, attention_mask), dtype=np.float32, copy=True)
        if step < settings.min_new_tokens:
            logits[:, settings.eos_token_id] = -np.inf
        forced = None
        if step == 0 and settings.forced_bos_token_id is not None:
            forced = settings.forced_bos_token_id
        elif step == settings.max_new_tokens - 1 and settings.forced_eos_token_id is not None:
            forced = settings.forced_eos_token_id
        if forced is not None:
            logits[:] = -np.inf
            logits[:, forced] = 0.0
        next_ids = logits.argmax(axis=-1).astype(np.int64)
        next_ids[done] = settings.pad_token_id
        ids = np.concatenate([ids, next_ids[:, None]], axis=1)
        done |= next_ids == settings.eos_token_id
        if done.all():
            break
    return ids


def pytorch_summarize(
    model: PreTrainedModel,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    settings: GreedySettings,
) -> torch.Tensor:
    """PyTorch's own greedy `generate()` (its KV cache on), with `settings`."""
    import torch

    with torch.no_grad():
        return model.generate(
            input_ids=input_ids,
            attention_mask=attention_mask,
            num_beams=1,
            do_sample=False,
            max_new_tokens=settings.max_new_tokens,
            min_new_tokens=settings.min_new_tokens or None,
            no_repeat_ngram_size=0,
            decoder_start_token_id=settings.decoder_start_token_id,
            eos_token_id=settings.eos_token_id,
            pad_token_id=settings.pad_token_id,
            forced_bos_token_id=settings.forced_bos_token_id,
            forced_eos_token_id=settings.forced_eos_token_id,
        )
