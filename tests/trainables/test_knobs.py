"""The efficiency knobs do what the experiments measure (issue 16): sparse attention stays sparse,
LED gets global attention, ProphetNet trains its n-gram streams, FLOPs per stream against a hand
count, gradient checkpointing, bf16 autocast really on, ranks agree on early stopping. One
process, no Ray (the two-rank check spawns two real gloo processes)."""

import math
import os
import socket

import pytest
import torch

from core.config import ConfigError, DataConfig, ModelConfig, TrainConfig, resolve_config
from trainables import batching
from trainables.datasets import load_split
from trainables.engine import make_engine, seq2seq_loss
from trainables.flops import stream_flops
from trainables.models import (
    TINY,
    attention_fallback,
    build_model,
    enable_gradient_checkpointing,
    model_inputs,
    train_tokenizer,
)
from trainables.train_loop import apply_freeze, summarize


@pytest.fixture(scope="module")
def data():
    pairs = load_split(DataConfig(), "train", 24, seed=0)
    tok = train_tokenizer([t for p in pairs for t in p], 400)
    # short sources (48 tokens): below BigBird's block-sparse minimum of 144
    return tok, batching.encode_pairs(pairs, tok, 48, 24)


def test_bigbird_stays_block_sparse_on_short_batches(data):
    tok, encoded = data
    model = build_model(ModelConfig(name="tiny-bigbird-pegasus"), tok)
    inputs = model_inputs(model.config)
    cfg = model.config
    assert inputs.min_source_tokens == (6 + 2 * cfg.num_random_blocks) * cfg.block_size == 160
    engine = make_engine(model, TrainConfig(), torch.device("cpu"), 1)
    batch = batching.collate(encoded, list(range(8)), tok.pad_token_id, inputs)
    assert batch["input_ids"].shape[1] == 160 and int(batch["attention_mask"].sum()) <= 8 * 48
    engine.train_step(batch)
    assert attention_fallback(model) is None
    assert model.get_encoder().attention_type == "block_sparse"
    # the same batch unpadded is what switched the encoder to dense attention before the fix
    engine.train_step(batching.collate(encoded, list(range(8)), tok.pad_token_id))
    assert "block_sparse to original_full" in attention_fallback(model)


def test_led_gets_global_attention_on_the_first_token(data):
    tok, encoded = data
    model = build_model(ModelConfig(name="tiny-led"), tok)
    inputs = model_inputs(model.config)
    assert inputs.global_first_token
    batch = batching.collate(encoded, [0, 1, 2], tok.pad_token_id, inputs)
    assert (
        batch["global_attention_mask"].tolist()
        == [[1] + [0] * (batch["input_ids"].shape[1] - 1)] * 3
    )
    model.eval()
    with torch.no_grad():
        with_global = model(**batch).logits
        without = model(**{k: v for k, v in batch.items() if k != "global_attention_mask"}).logits
    assert not torch.allclose(with_global, without)  # the mask reaches the encoder
    split = batching.EncodedSplit(
        encoded.sources[:3],
        encoded.targets[:3],
        encoded.source_texts[:3],
        encoded.target_texts[:3],
        0,
        0,
    )
    predictions, _ = summarize(
        model,
        tok,
        split,
        [0, 1, 2],
        resolve_config(overrides=["eval.max_new_tokens=4"]),
        torch.device("cpu"),
        {},
    )
    assert len(predictions) == 3


def test_prophetnet_trains_every_ngram_stream(data):
    tok, encoded = data
    model = build_model(ModelConfig(name="tiny-prophetnet"), tok)
    model.eval()  # no dropout: the two losses see the same forward pass
    batch = batching.collate(encoded, [0, 1, 2, 3], tok.pad_token_id)
    with torch.no_grad():
        streams = float(seq2seq_loss(model, batch, 0.0))
        next_token = float(seq2seq_loss(model, batch, 0.0, ngram_streams=False))
        own = float(model(**batch).loss)  # ProphetNet's own objective (eps = 0: no smoothing)
    assert model.config.ngram == 2 and model.config.eps == 0.0
    assert streams == pytest.approx(own, rel=1e-6)
    assert streams != pytest.approx(next_token, rel=1e-4)  # the second stream is in the loss


def _tiny_hand_count(vocab: int) -> tuple[int, int]:
    """Weights per source token and per target token of the tiny presets, counted by hand."""
    d, n, f = TINY["d_model"], TINY["layers"], TINY["ffn"]
    attention, ffn = 4 * d * d, 2 * d * f  # q, k, v, o; two feed-forward matrices
    encoder = n * (attention + ffn)
    cross_key_value = n * 2 * d * d  # run over the encoder's output: source tokens
    decoder = n * (attention + 2 * d * d + ffn)  # self-attention, cross q and o, feed-forward
    return encoder + cross_key_value, decoder + d * vocab  # + the LM head


@pytest.mark.parametrize("family", ["tiny-bart", "tiny-t5"])
def test_flops_per_stream_match_a_hand_count(family, data):
    tok, _ = data
    model = build_model(ModelConfig(name=family), tok)
    per_source, per_target = _tiny_hand_count(len(tok))
    flops = stream_flops(model)
    assert flops.per_source_token == 6 * per_source
    assert flops.per_target_token == 6 * per_target
    assert flops.training_flops(100, 20) == 6 * (100 * per_source + 20 * per_target)
    total_params = sum(p.numel() for p in model.parameters())
    # the old count, 6 x all parameters x all tokens, was twice as high or more
    assert 6 * total_params * 120 > 2 * flops.training_flops(100, 20)


def test_flops_of_a_frozen_encoder_are_its_forward_pass_only(data):
    tok, _ = data
    model = build_model(ModelConfig(name="tiny-bart"), tok)
    apply_freeze(model, "encoder")
    per_source, _ = _tiny_hand_count(len(tok))
    encoder = per_source - TINY["layers"] * 2 * TINY["d_model"] ** 2
    cross = per_source - encoder
    assert stream_flops(model).per_source_token == 2 * encoder + 6 * cross


def test_gradient_checkpointing_is_a_knob_that_keeps_the_numbers(data):
    tok, encoded = data
    assert resolve_config(
        overrides=["train.gradient_checkpointing=true"]
    ).train.gradient_checkpointing
    with pytest.raises(ConfigError, match="train.gradient_checkpointing"):
        resolve_config(overrides=["train.gradient_checkpointing=maybe"])
    batch = batching.collate(encoded, list(range(8)), tok.pad_token_id)
    grads = {}
    for checkpointing in (False, True):
        model = build_model(ModelConfig(name="tiny-bart"), tok, seed=3)
        if checkpointing:
            enable_gradient_checkpointing(model)
            assert model.is_gradient_checkpointing
        model.train()
        torch.manual_seed(0)  # the same dropout masks: the recomputation replays them
        seq2seq_loss(model, batch, 0.0).backward()
        grads[checkpointing] = model.get_encoder().layers[0].fc1.weight.grad.clone()
    assert torch.allclose(grads[False], grads[True], atol=1e-6)


def test_bf16_autocast_really_runs_in_bf16(data):
    tok, encoded = data
    batch = batching.collate(encoded, list(range(8)), tok.pad_token_id)
    seen, losses = {}, {}
    for precision in ("fp32", "bf16"):
        model = build_model(ModelConfig(name="tiny-bart"), tok, seed=1)
        layer = model.get_encoder().layers[0].fc1

        def record(_module, _inputs, output, precision=precision):
            seen[precision] = output.dtype

        layer.register_forward_hook(record)
        engine = make_engine(model, TrainConfig(precision=precision), torch.device("cpu"), 1)
        losses[precision] = float(engine.train_step(batch))
    assert seen == {"fp32": torch.float32, "bf16": torch.bfloat16}
    assert losses["bf16"] != losses["fp32"]  # bf16 rounding shows in the loss
    assert losses["bf16"] == pytest.approx(losses["fp32"], rel=0.02)


def _agree(rank: int, port: int, decisions: dict) -> None:
    import torch.distributed as dist

    from trainables.train_loop import agree_on_early_stop

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    # rank 0 alone sees ROUGE: it wants to stop, rank 1's own (empty) view says go on
    decisions[rank] = agree_on_early_stop(stop=rank == 0, world=2)
    dist.destroy_process_group()


def test_ranks_agree_on_early_stopping():
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        decisions = manager.dict()
        mp.spawn(_agree, args=(port, decisions), nprocs=2, join=True)
        assert dict(decisions) == {0: True, 1: True}


def test_deepspeed_trials_follow_each_other_in_one_reused_process(data, monkeypatch):
    """Tune reuses a trial process; Train's local mode destroys the process group when each
    run ends. The next single-worker ZeRO trial makes a new one-process group, and DeepSpeed
    must not keep using its clone of the destroyed one."""
    import torch.distributed as dist

    from trainables.deepspeed_state import forget_world_group
    from trainables.train_loop import single_rank_group

    tok, encoded = data
    for var, value in (("LOCAL_RANK", "0"), ("RANK", "0"), ("WORLD_SIZE", "1")):
        monkeypatch.setenv(var, value)
    batch = batching.collate(encoded, list(range(8)), tok.pad_token_id)
    for trial in range(2):
        single_rank_group()
        model = build_model(ModelConfig(name="tiny-bart"), tok, seed=trial)
        engine = make_engine(model, TrainConfig(zero_stage=2), torch.device("cpu"), 1)
        assert math.isfinite(float(engine.train_step(batch)))
        dist.destroy_process_group()  # what Train's local mode does at the end of a run
    forget_world_group()  # leave no dead clone to the next test module's group
