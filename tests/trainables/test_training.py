"""Training paths in one process (no Ray): every tiny model family, every ZeRO stage, freezing
(precision: tests/trainables/test_knobs.py). DeepSpeed runs for real on CPU with a one-process
gloo group."""

import dataclasses
import os
import socket

import pytest
import torch

from core.config import DataConfig, EvalConfig, ModelConfig, StudyConfig, TrainConfig
from trainables import batching
from trainables.datasets import load_split
from trainables.engine import make_engine
from trainables.models import PRESETS, build_model, train_tokenizer
from trainables.train_loop import apply_freeze, evaluate


@pytest.fixture(scope="module")
def data():
    pairs = load_split(DataConfig(), "train", 48, seed=0)
    tok = train_tokenizer([t for p in pairs for t in p], 400)
    return tok, batching.encode_pairs(pairs, tok, 128, 40)


def steps(engine, encoded, n=4, batch_size=8):
    losses = []
    for i in range(n):
        engine.set_lr(0.5)
        idx = list(range(i * batch_size, (i + 1) * batch_size))
        losses.append(float(engine.train_step(batching.collate(encoded, idx, 0))))
    return losses


@pytest.mark.parametrize("family", PRESETS)
def test_every_family_trains_and_evaluates(family, data):
    tok, encoded = data
    cfg = TrainConfig(lr=3e-3, warmup_ratio=0.0)
    engine = make_engine(build_model(ModelConfig(name=family), tok), cfg, torch.device("cpu"), 1)
    losses = steps(engine, encoded)
    assert losses[-1] < losses[0]
    study = StudyConfig(eval=EvalConfig(max_new_tokens=8, batch_size=8))
    val = dataclasses.replace(
        encoded,
        sources=encoded.sources[:8],
        targets=encoded.targets[:8],
        source_texts=encoded.source_texts[:8],
        target_texts=encoded.target_texts[:8],
    )
    scores = evaluate(engine, tok, val, study, torch.device("cpu"), rank=0, world=1)
    assert set(scores) == {"val_loss", "rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert all(0 <= scores[k] <= 1 for k in ("rouge1", "rougeL")) and scores["val_loss"] > 0


@pytest.fixture(scope="module")
def gloo_group():
    import torch.distributed as dist

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK="0", RANK="0", WORLD_SIZE="1"
    )
    if not dist.is_initialized():
        dist.init_process_group("gloo", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.parametrize(
    "stage, offload_optimizer, offload_params",
    [
        (1, False, False),
        (1, True, False),
        (2, False, False),
        (2, True, False),
        (3, False, False),
        (3, True, True),
    ],
)
def test_zero_stages_train_save_and_restore(
    stage, offload_optimizer, offload_params, data, gloo_group, tmp_path
):
    tok, encoded = data
    cfg = TrainConfig(
        lr=3e-3,
        warmup_ratio=0.0,
        zero_stage=stage,
        offload_optimizer=offload_optimizer,
        offload_params=offload_params,
    )
    engine = make_engine(build_model(ModelConfig(name="tiny-t5"), tok), cfg, torch.device("cpu"), 1)
    losses = steps(engine, encoded, n=3)
    assert losses[-1] < losses[0]
    engine.save(tmp_path, rank=0)
    shards = {p.name for p in tmp_path.rglob("*.pt")}
    assert "zero_pp_rank_0_mp_rank_00_optim_states.pt" in shards
    if stage == 3:  # parameters are sharded too: this rank's model shard
        assert "zero_pp_rank_0_mp_rank_00_model_states.pt" in shards
    fresh = make_engine(
        build_model(ModelConfig(name="tiny-t5"), tok, seed=9), cfg, torch.device("cpu"), 1
    )
    fresh.load(tmp_path)
    batch = batching.collate(encoded, list(range(40, 48)), 0)
    with torch.no_grad():
        from trainables.engine import seq2seq_loss

        engine.model.eval()
        fresh.model.eval()
        a = float(seq2seq_loss(engine.model, batch, 0.0))
        b = float(seq2seq_loss(fresh.model, batch, 0.0))
    assert a == pytest.approx(b, rel=1e-5)


def test_freezing_reduces_trainable_parameters_and_optimizer_state(data):
    tok, encoded = data
    counts, states = {}, {}
    for freeze in ("none", "embeddings", "layers:1", "encoder"):
        model = build_model(ModelConfig(name="tiny-bart"), tok)
        counts[freeze] = apply_freeze(model, freeze)
        engine = make_engine(model, TrainConfig(lr=1e-3), torch.device("cpu"), 1)
        steps(engine, encoded, n=1)
        states[freeze] = sum(
            t.numel()
            for s in engine.optimizer.state.values()
            for t in s.values()
            if torch.is_tensor(t) and t.dim() > 0
        )
    assert counts["none"] > counts["layers:1"] > counts["encoder"]
    assert counts["none"] > counts["embeddings"]
    assert (
        states["none"] == 2 * counts["none"] and states["encoder"] == 2 * counts["encoder"]
    )  # Adam: 2 moments
