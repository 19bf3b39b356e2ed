"""Training FLOPs of an encoder-decoder, counted per stream (an analytic estimate, labelled so).

A linear layer of `w` weights costs `2w` FLOPs per token it is applied to in the forward pass
and `4w` in the backward pass (the gradients of its input and of its weights), so training costs
`6w` per token (Kaplan et al. 2020, "Scaling laws", section 2.1). An encoder-decoder applies
different weights to different tokens: the encoder's layers and every decoder layer's
cross-attention keys and values run over the *source* tokens, the rest of the decoder and the
LM head over the *target* tokens. `6 x all parameters x (source + target tokens)` counts every
weight on every token and comes out 2.5-3.3x too high for BART shapes.

Not counted: embedding look-ups (no multiply), biases and norms (one FLOP per output), the
attention score and value products (`4 x length x width` per token and layer: small next to the
weights for the lengths summarizers train at, and it depends on each batch's length). Weights
that are frozen cost `4w` (no weight gradient) or, where nothing before them trains, `2w`.
ProphetNet's decoder runs its main stream and `ngram` predicting streams: its decoder weights
count `1 + ngram` times per target token, its LM head `ngram` times.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# Names of a decoder layer's cross-attention key and value projections, per family:
# BART/PEGASUS/LED/BigBird-Pegasus `encoder_attn.k_proj`, ProphetNet `encoder_attn.key_proj`,
# T5 `EncDecAttention.k`.
CROSS_KEY_VALUE = (
    "encoder_attn.k_proj",
    "encoder_attn.v_proj",
    "encoder_attn.key_proj",
    "encoder_attn.value_proj",
    "EncDecAttention.k",
    "EncDecAttention.v",
)


@dataclass(frozen=True)
class StreamFlops:
    """Training FLOPs per token of each stream: multiply by the tokens of that stream."""

    per_source_token: float
    per_target_token: float

    def training_flops(self, source_tokens: int, target_tokens: int) -> float:
        return self.per_source_token * source_tokens + self.per_target_token * target_tokens


def _linear_cost(weight: torch.nn.Parameter, anything_trains_below: bool) -> int:
    """FLOPs per token of one linear layer in a training step (forward + backward)."""
    if weight.requires_grad:
        return 6
    return 4 if anything_trains_below else 2


def stream_flops(model: torch.nn.Module) -> StreamFlops:
    """Per-token training FLOPs of `model` (a transformers encoder-decoder), from its linear
    layers and which of them train (`requires_grad`), as set before training starts."""
    import torch

    encoder = model.get_encoder()
    in_encoder = {id(m) for m in encoder.modules()}
    encoder_trains = any(p.requires_grad for p in encoder.parameters())
    input_embeddings_train = any(p.requires_grad for p in model.get_input_embeddings().parameters())
    ngram = int(getattr(model.config, "ngram", 0) or 0)  # ProphetNet's predicting streams
    lm_head = model.get_output_embeddings()
    source = target = 0.0
    for name, module in model.named_modules():
        if not isinstance(module, torch.nn.Linear):
            continue
        weights = module.weight.numel()
        if id(module) in in_encoder:
            source += weights * _linear_cost(module.weight, input_embeddings_train)
        elif name.endswith(CROSS_KEY_VALUE):  # over the encoder's output: source tokens
            source += weights * _linear_cost(module.weight, encoder_trains)
        elif module is lm_head:
            target += weights * _linear_cost(module.weight, True) * max(1, ngram)
        else:
            target += weights * _linear_cost(module.weight, True) * (1 + ngram)
    return StreamFlops(per_source_token=source, per_target_token=target)
