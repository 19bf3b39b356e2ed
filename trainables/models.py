"""Seq2seq models and tokenizers: tiny presets built from configs, or any model by hub name/path.

A preset (`tiny-bart`, `tiny-t5`, `tiny-pegasus`, `tiny-prophetnet`, `tiny-led`,
`tiny-bigbird-pegasus`) is the family's real model class with a small random-init config and a
byte-level BPE tokenizer trained in about a second on the training texts: nothing is downloaded.
Any other name goes to `AutoModelForSeq2SeqLM.from_pretrained` / `AutoTokenizer.from_pretrained`
(a hub name on a cluster, or a local folder).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.config import ConfigError, ModelConfig
from trainables.batching import ModelInputs

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase, PreTrainedTokenizerFast

SPECIAL_TOKENS = ["<pad>", "<s>", "</s>", "<unk>", "<mask>"]
PAD, BOS, EOS = 0, 1, 2

# The one place a preset's size lives: width, layers per stack, heads, feed-forward width.
TINY = dict(d_model=128, layers=2, heads=4, ffn=256, max_positions=1024)


def _preset_configs() -> dict[str, Any]:
    import transformers as tf

    d, n, h, f, pos = (TINY[k] for k in ("d_model", "layers", "heads", "ffn", "max_positions"))
    ids = dict(pad_token_id=PAD, bos_token_id=BOS, eos_token_id=EOS)
    bart_like = dict(
        d_model=d,
        encoder_layers=n,
        decoder_layers=n,
        encoder_attention_heads=h,
        decoder_attention_heads=h,
        encoder_ffn_dim=f,
        decoder_ffn_dim=f,
        dropout=0.1,
        decoder_start_token_id=EOS,
        forced_eos_token_id=EOS,
        **ids,
    )
    return {
        "tiny-bart": lambda v: tf.BartConfig(
            vocab_size=v, max_position_embeddings=pos, **bart_like
        ),
        "tiny-pegasus": lambda v: tf.PegasusConfig(
            vocab_size=v,
            max_position_embeddings=pos,
            **{**bart_like, "decoder_start_token_id": PAD},
        ),
        "tiny-t5": lambda v: tf.T5Config(
            vocab_size=v,
            d_model=d,
            d_kv=d // h,
            d_ff=f,
            num_layers=n,
            num_decoder_layers=n,
            num_heads=h,
            dropout_rate=0.1,
            decoder_start_token_id=PAD,
            pad_token_id=PAD,
            eos_token_id=EOS,
        ),
        "tiny-prophetnet": lambda v: tf.ProphetNetConfig(
            vocab_size=v,
            hidden_size=d,
            encoder_ffn_dim=f,
            decoder_ffn_dim=f,
            num_encoder_layers=n,
            num_decoder_layers=n,
            num_encoder_attention_heads=h,
            num_decoder_attention_heads=h,
            ngram=2,
            max_position_embeddings=pos,
            decoder_start_token_id=BOS,
            **ids,
        ),
        "tiny-led": lambda v: tf.LEDConfig(
            vocab_size=v,
            max_encoder_position_embeddings=pos,
            max_decoder_position_embeddings=pos,
            attention_window=[32] * n,
            **bart_like,
        ),
        "tiny-bigbird-pegasus": lambda v: tf.BigBirdPegasusConfig(
            vocab_size=v,
            max_position_embeddings=pos,
            attention_type="block_sparse",
            block_size=16,
            num_random_blocks=2,
            **{**bart_like, "decoder_start_token_id": PAD},
        ),
    }


PRESETS = (
    "tiny-bart",
    "tiny-t5",
    "tiny-pegasus",
    "tiny-prophetnet",
    "tiny-led",
    "tiny-bigbird-pegasus",
)


def is_preset(name: str) -> bool:
    return name in PRESETS


# transformers' model_type of each preset's family
PRESET_FAMILY = {
    "tiny-bart": "bart",
    "tiny-t5": "t5",
    "tiny-pegasus": "pegasus",
    "tiny-prophetnet": "prophetnet",
    "tiny-led": "led",
    "tiny-bigbird-pegasus": "bigbird_pegasus",
}
# What a family expects before each source: T5 was pre-trained multi-task with task prefixes
# (Raffel et al. 2020, section 2.4; t5-base config.json, task_specific_params.summarization).
SOURCE_PREFIX = {"t5": "summarize: "}


@functools.cache
def model_family(cfg: ModelConfig) -> str:
    """transformers' model_type of the model (`bart`, `t5`, ...), from its config.json."""
    if is_preset(cfg.name):
        return PRESET_FAMILY[cfg.name]
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(cfg.name, revision=cfg.revision or None).model_type


def source_prefix(cfg: ModelConfig) -> str:
    """The text put before every source for this model family ("" for most)."""
    return SOURCE_PREFIX.get(model_family(cfg), "")


def checkpoint_decoding(cfg: ModelConfig) -> dict[str, Any]:
    """The decoding a hub checkpoint ships (its generation_config.json, else config.json's
    summarization task parameters): only values it sets away from transformers' defaults, under
    greentune's names ({} for a preset, or where nothing can be read)."""
    if is_preset(cfg.name):
        return {}
    from transformers import AutoConfig, GenerationConfig

    revision = cfg.revision or None
    try:
        own = GenerationConfig.from_pretrained(cfg.name, revision=revision).to_diff_dict()
    except (OSError, ValueError):
        own = {}
    if not any(k in own for k in ("num_beams", "length_penalty", "max_length")):
        try:
            config = AutoConfig.from_pretrained(cfg.name, revision=revision)
            own = {**own, **(config.task_specific_params or {}).get("summarization", {})}
        except (OSError, ValueError):
            pass
    names = {
        "num_beams": "num_beams",
        "length_penalty": "length_penalty",
        "no_repeat_ngram_size": "no_repeat_ngram_size",
        "min_new_tokens": "min_new_tokens",
        "max_new_tokens": "max_new_tokens",
        "min_length": "min_new_tokens",  # encoder-decoders: the summary's length
        "max_length": "max_new_tokens",
    }
    out: dict[str, Any] = {}
    for key, ours in names.items():
        if own.get(key) is not None and ours not in out:
            out[ours] = own[key]
    return out


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer trained on `texts` (deterministic for the same texts)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    tok.post_processor = processors.TemplateProcessing(
        single="$A </s>", special_tokens=[("</s>", EOS)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        mask_token="<mask>",
    )


def load_tokenizer(
    cfg: ModelConfig, train_texts: Iterable[str] | None = None
) -> PreTrainedTokenizerBase:
    if is_preset(cfg.name):
        if train_texts is None:
            raise ValueError("a preset's tokenizer is trained on the training texts; pass them")
        return train_tokenizer(train_texts, cfg.tokenizer_vocab_size)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(cfg.name, revision=cfg.revision or None)
    except (OSError, ValueError) as e:
        raise _load_error(cfg.name, e) from e


def build_model(
    cfg: ModelConfig, tokenizer: PreTrainedTokenizerBase, seed: int = 0
) -> PreTrainedModel:
    """The model for `cfg.name`: a random-init preset sized to the tokenizer, or pretrained ones."""
    import torch
    from transformers import AutoModelForSeq2SeqLM

    if is_preset(cfg.name):
        torch.manual_seed(seed)  # identical initial weights for the same seed
        config = _preset_configs()[cfg.name](len(tokenizer))
        return AutoModelForSeq2SeqLM.from_config(config)
    try:
        return AutoModelForSeq2SeqLM.from_pretrained(cfg.name, revision=cfg.revision or None)
    except (OSError, ValueError) as e:
        raise _load_error(cfg.name, e) from e


def model_inputs(config: Any) -> ModelInputs:
    """What the family of `config` (a transformers config) needs of every batch: BigBird's
    block-sparse minimum length (shorter inputs make transformers switch the encoder to full
    attention, for good), LED's global attention on the first token."""
    if getattr(config, "attention_type", None) == "block_sparse":
        # transformers falls back when a (block-padded) input has <= (5 + 2r) x block tokens
        return ModelInputs(min_source_tokens=(6 + 2 * config.num_random_blocks) * config.block_size)
    if config.model_type == "led":
        return ModelInputs(global_first_token=True)
    return ModelInputs()


def attention_fallback(model: PreTrainedModel) -> str | None:
    """Why the model no longer runs the attention its config names (None = it does): a check
    after training that no batch made block-sparse attention fall back to full attention."""
    wanted = getattr(model.config, "attention_type", None)
    encoder = model.get_encoder()
    running = getattr(encoder, "attention_type", wanted)
    if wanted and running != wanted:
        return (
            f"{model.config.model_type}: the encoder switched from {wanted} to {running} "
            "attention (an input shorter than the block-sparse minimum reached it unpadded)"
        )
    return None


def enable_gradient_checkpointing(model: PreTrainedModel) -> None:
    """Recompute activations in the backward pass instead of keeping them (less memory, about a
    third more compute); non-reentrant, so frozen inputs and dropout replay stay correct."""
    if not model.supports_gradient_checkpointing:
        raise ConfigError(
            f"train.gradient_checkpointing=True: {model.config.model_type} models do not "
            "support it in transformers; set it to false"
        )
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})


WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "spiece.model",
    "vocab.json",
    "sentencepiece.bpe.model",
)


def check_model_name(cfg: ModelConfig) -> int:
    """Fail before Ray starts for a model that cannot load: not a preset, nor a folder with a
    config, weights and a tokenizer, nor a hub name whose config loads (this reads the small
    config.json, not the weights; an unreachable hub fails in seconds, not after the client's
    retries). Returns the longest input the model's positions allow (tokens)."""
    name = cfg.name
    if is_preset(name):
        if cfg.revision:
            raise ConfigError(
                f"model.revision={cfg.revision!r}: {name} is a preset built here, not "
                "downloaded; drop model.revision or name a hub model"
            )
        return TINY["max_positions"]
    folder = Path(name)
    if not folder.is_dir() and (
        name.startswith(("tiny-", "./", "/")) or name.count("/") > 1 or " " in name
    ):
        raise ConfigError(
            f"model.name={name!r}: not a preset, nor a folder, nor a hub name; use one "
            f"of {', '.join(PRESETS)}, a local model folder, or a hub name like "
            f"facebook/bart-base"
        )
    if folder.is_dir() and not (folder / "config.json").exists():
        raise ConfigError(
            f"model.name={name!r}: the folder has no config.json; save the model with "
            "save_pretrained (model and tokenizer) into it"
        )
    if not folder.is_dir():
        from trainables.hub import cached, hub_reachable

        if not hub_reachable() and not cached(name, "config.json"):
            raise ConfigError(
                f"model.name={name!r}: the Hugging Face hub is unreachable from here and "
                "the model is not in the local cache; use a preset "
                f"({', '.join(PRESETS)}), a local model folder, or run where the hub is reachable"
            )
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(name, revision=cfg.revision or None)
    except (OSError, ValueError, KeyError) as e:
        # ValueError/KeyError: a model type this transformers does not know (family missing)
        raise _load_error(name, e) from e
    if not config.is_encoder_decoder:
        raise ConfigError(
            f"model.name={name!r}: a {config.model_type} model is not encoder-decoder; "
            f"use a seq2seq summarizer (BART, T5, PEGASUS, ProphetNet, LED, ...)"
        )
    if folder.is_dir():
        missing = [
            what
            for what, files in (("weights", WEIGHT_FILES), ("tokenizer files", TOKENIZER_FILES))
            if not any((folder / f).exists() for f in files)
        ]
        if missing:
            raise ConfigError(
                f"model.name={name!r}: the folder has no {' and no '.join(missing)}; save "
                "the model with save_pretrained (model and tokenizer) into it"
            )
    for key in ("max_encoder_position_embeddings", "max_position_embeddings", "n_positions"):
        if getattr(config, key, None):
            return int(getattr(config, key))
    return 10**9  # relative positions (T5): no hard limit


def _load_error(name: str, e: Exception) -> ConfigError:
    return ConfigError(
        f"model.name={name!r}: could not load it from a local folder or the Hugging Face hub "
        f"({type(e).__name__}: {str(e).splitlines()[0][:200]}); use a preset "
        f"({', '.join(PRESETS)}), a local folder, or a reachable hub name"
    )
