"""LR schedule, hyperparameters re-applied after loading a donor's optimizer, exact resume."""

import dataclasses

import pytest
import torch

from core.config import ModelConfig, TrainConfig
from trainables import batching
from trainables.engine import TorchEngine, deepspeed_config, lr_multiplier
from trainables.models import build_model, train_tokenizer


def test_lr_schedule_follows_the_fraction_of_training_done():
    assert lr_multiplier(0.05, 0.1, "linear") == pytest.approx(0.5)
    assert lr_multiplier(0.1, 0.1, "linear") == pytest.approx(1.0)
    assert lr_multiplier(0.55, 0.1, "linear") == pytest.approx(0.5)
    assert lr_multiplier(0.55, 0.1, "cosine") == pytest.approx(0.5)
    assert lr_multiplier(1.0, 0.1, "cosine") == pytest.approx(0.0)
    assert lr_multiplier(0.8, 0.1, "constant") == 1.0
    assert 0 < lr_multiplier(0.0, 0.1, "linear") < 0.01  # warmup starts small, never at 0


def test_deepspeed_config_follows_the_train_config():
    cfg = TrainConfig(
        batch_size=8,
        grad_accum_steps=2,
        zero_stage=3,
        offload_optimizer=True,
        offload_params=True,
        precision="bf16",
        max_grad_norm=0.5,
    )
    ds = deepspeed_config(cfg, world_size=2)
    assert ds["train_batch_size"] == 32 and ds["gradient_clipping"] == 0.5
    assert ds["zero_optimization"] == {
        "stage": 3,
        "offload_optimizer": {"device": "cpu"},
        "offload_param": {"device": "cpu"},
    }
    assert ds["bf16"]["enabled"] and not ds["fp16"]["enabled"]


def _engine(cfg, seed=0):
    tok = train_tokenizer(
        ["Anna: see you at 5 pm\nTom: ok", "Anna and Tom meet at 5 pm."] * 20, 300
    )
    model = build_model(ModelConfig(name="tiny-t5"), tok, seed=seed)
    return TorchEngine(model, cfg, device=torch.device("cpu"), world_size=1), tok


def _batch(tok):
    enc = batching.encode_pairs(
        [("Anna: see you at 5 pm\nTom: ok", "Anna and Tom meet at 5 pm.")] * 4, tok, 32, 16
    )
    return batching.collate(enc, [0, 1, 2, 3], tok.pad_token_id)


def test_donor_state_then_own_hyperparameters(tmp_path):
    """PBT: load a donor's optimizer state, then this trial's lr/weight decay must apply."""
    donor_cfg = TrainConfig(lr=1e-3, weight_decay=0.0, warmup_ratio=0.0)
    donor, tok = _engine(donor_cfg)
    for _ in range(3):
        donor.set_lr(0.1)
        donor.train_step(_batch(tok))
    donor.save(tmp_path, rank=0)

    own_cfg = dataclasses.replace(donor_cfg, lr=4e-3, weight_decay=0.05)
    clone, _ = _engine(donor_cfg, seed=1)
    clone.load(tmp_path)
    clone.apply_hparams(own_cfg)
    assert clone.set_lr(0.25) == pytest.approx(4e-3 * 0.75)
    assert clone.optimizer.param_groups[0]["lr"] == pytest.approx(4e-3 * 0.75)
    assert clone.optimizer.param_groups[0]["weight_decay"] == 0.05
    # the weights and optimizer moments are the donor's
    for a, b in zip(donor.unwrapped.parameters(), clone.unwrapped.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(
        next(iter(donor.optimizer.state.values()))["exp_avg"],
        next(iter(clone.optimizer.state.values()))["exp_avg"],
    )
    before = [p.clone() for p in clone.unwrapped.parameters()]
    clone.train_step(_batch(tok))
    assert any(not torch.equal(a, b) for a, b in zip(before, clone.unwrapped.parameters()))


def test_restore_continues_exactly(tmp_path):
    cfg = TrainConfig(lr=1e-3, warmup_ratio=0.1)
    torch.manual_seed(0)
    a, tok = _engine(cfg)
    batch = _batch(tok)
    a.set_lr(0.5)
    a.train_step(batch)
    a.save(tmp_path, rank=0)
    loss_a = [float(a.train_step(batch)) for _ in range(2)]
    b, _ = _engine(cfg, seed=5)
    b.load(tmp_path)
    b.apply_hparams(cfg)
    b.set_lr(0.5)
    loss_b = [float(b.train_step(batch)) for _ in range(2)]
    # dropout draws from the global RNG; the worker loop restores RNG state too
    assert loss_b == pytest.approx(loss_a, rel=0.05)
