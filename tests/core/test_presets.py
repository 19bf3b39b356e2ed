"""Faithful presets: the user's value, else the checkpoint's, else the published recipe, else the
default; T5's task prefix; a local checkpoint's own generation config read as users save it."""

from pathlib import Path

from core.config import explicit_keys, resolve_config
from core.presets import FROM_CHECKPOINT, FROM_DEFAULT, FROM_USER, resolve_presets


def test_a_published_recipe_fills_what_the_user_left_unset():
    overrides = ["data.dataset=xsum", "eval.num_beams=2"]
    cfg = resolve_config(overrides=overrides)
    resolved, sources = resolve_presets(cfg, explicit_keys(overrides=overrides), "bart", {})
    assert resolved.eval.num_beams == 2 and sources["eval.num_beams"] == FROM_USER
    # fairseq's BART recipe for XSum: min 10, max 60 tokens, no 3-gram repeats, 1,024 sources
    assert (resolved.eval.min_new_tokens, resolved.eval.max_new_tokens) == (10, 60)
    assert resolved.eval.no_repeat_ngram_size == 3 and resolved.data.max_source_tokens == 1024
    assert sources["eval.max_new_tokens"].startswith("fairseq examples/bart")
    assert sources["eval.length_penalty"].startswith("fairseq")


def test_the_checkpoint_s_own_decoding_wins_over_the_table_but_not_over_the_user():
    overrides = ["data.dataset=cnn_dailymail", "data.max_source_tokens=512"]
    cfg = resolve_config(overrides=overrides)
    checkpoint = {"num_beams": 3, "max_new_tokens": 100}
    resolved, sources = resolve_presets(cfg, explicit_keys(overrides=overrides), "bart", checkpoint)
    assert (resolved.eval.num_beams, resolved.eval.max_new_tokens) == (3, 100)
    assert sources["eval.num_beams"] == FROM_CHECKPOINT
    assert resolved.eval.length_penalty == 2.0  # not in the checkpoint: the published recipe
    assert resolved.data.max_source_tokens == 512 and sources["data.max_source_tokens"] == FROM_USER


def test_no_recipe_keeps_the_defaults():
    cfg = resolve_config()
    resolved, sources = resolve_presets(cfg, set(), "bart", {})  # the built-in data
    assert resolved == cfg and set(sources.values()) == {FROM_DEFAULT}


def test_explicit_keys_come_from_the_file_the_overrides_and_the_base(tmp_path: Path):
    path = tmp_path / "study.yaml"
    path.write_text("eval:\n  num_beams: 4\ndata:\n  dataset: xsum\n")
    keys = explicit_keys(path, ["train.lr=1e-3"], {"eval.max_new_tokens": 32})
    assert keys == {"eval.num_beams", "data.dataset", "train.lr", "eval.max_new_tokens"}


def test_t5_sources_get_the_task_prefix_and_a_saved_checkpoint_s_decoding_is_read(tmp_path):
    from core.config import DataConfig, ModelConfig
    from trainables.datasets import load_split
    from trainables.models import build_model, checkpoint_decoding, train_tokenizer
    from trainables.train_loop import encode_split

    pairs = load_split(DataConfig(), "train", 4, 0)
    tok = train_tokenizer([t for p in pairs for t in p], 400)
    t5 = encode_split(ModelConfig(name="tiny-t5"), DataConfig(), tok, pairs)
    bart = encode_split(ModelConfig(name="tiny-bart"), DataConfig(), tok, pairs)
    assert tok.decode(t5.sources[0]).startswith("summarize: " + pairs[0][0][:20])
    assert tok.decode(bart.sources[0]).startswith(pairs[0][0][:20])
    model = build_model(ModelConfig(name="tiny-bart"), tok)
    model.generation_config.num_beams = 3
    model.generation_config.no_repeat_ngram_size = 2
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    decoding = checkpoint_decoding(ModelConfig(name=str(tmp_path)))
    assert decoding["num_beams"] == 3 and decoding["no_repeat_ngram_size"] == 2


def test_an_experiments_variation_that_swaps_the_model_gets_its_own_family_s_presets(tmp_path):
    """BART on XSum with a PEGASUS and a T5 variation: PEGASUS takes its XSum recipe, T5 (no
    published XSum recipe here) the defaults, not BART's beam 6."""
    import argparse

    from search_spaces.experiments import load_plan
    from study.run import faithful_presets

    path = tmp_path / "plan.yaml"
    path.write_text(
        "variations:\n"
        "  - {name: pegasus, set: {model.name: tiny-pegasus}}\n"
        "  - {name: t5, set: {model.name: tiny-t5}}\n"
        "  - {name: frozen, set: {train.freeze: encoder}}\n"
    )
    plan = load_plan(str(path))
    overrides = ["data.dataset=xsum", "data.max_source_tokens=256"]
    cfg = resolve_config(overrides=overrides, base=plan.baseline)
    resolved, _, plan = faithful_presets(cfg, argparse.Namespace(config=None), overrides, plan)
    assert (resolved.eval.num_beams, resolved.eval.max_new_tokens) == (6, 60)  # BART's XSum
    pegasus = plan.trial_config(resolved, "pegasus")
    assert (pegasus.eval.num_beams, pegasus.eval.length_penalty) == (8, 0.6)
    assert pegasus.eval.max_new_tokens == 64 and pegasus.eval.no_repeat_ngram_size == 0
    assert pegasus.data.max_source_tokens == 256  # the user's length stands
    t5 = plan.trial_config(resolved, "t5")
    assert (t5.eval.num_beams, t5.eval.max_new_tokens, t5.eval.min_new_tokens) == (1, 48, 0)
    assert plan.variation("frozen").settings == {"train.freeze": "encoder"}  # no model swap
