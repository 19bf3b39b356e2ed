"""Trainable throughput vs Hugging Face `Seq2SeqTrainer`, same tiny model, data, batch, precision.

    python benchmarks/throughput_vs_hf.py [--n-train 1024] [--batch-size 16] [--epochs 1]

Both train tiny-bart (same random init) on the same built-in dialogues for the same number of
samples in fp32 on this CPU, one torch thread each, no evaluation. Throughput is non-padding
source + target tokens per second of training (target: ours / HF >= 1.1). Ours uses sortish
batches and dynamic padding (`trainables/batching.py`); HF uses its default random sampler with
`DataCollatorForSeq2Seq` dynamic padding (`group_by_length=True` is also timed where the
installed transformers still has it; 5.x dropped it).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    import torch

    from core.config import DataConfig, ModelConfig, TrainConfig
    from trainables import batching
    from trainables.datasets import load_split
    from trainables.engine import make_engine
    from trainables.models import build_model, train_tokenizer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-train", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    pairs = load_split(DataConfig(), "train", args.n_train, seed=0)
    tok = train_tokenizer([t for p in pairs for t in p], 1024)
    data = batching.encode_pairs(pairs, tok, 160, 48)
    tokens = args.epochs * sum(len(s) + len(t) for s, t in zip(data.sources, data.targets))

    # ours
    engine = make_engine(
        build_model(ModelConfig(), tok, seed=0), TrainConfig(), torch.device("cpu"), 1
    )
    lengths = [len(s) for s in data.sources]
    start = time.perf_counter()
    for epoch in range(args.epochs):
        for indices in batching.batch_order(lengths, args.batch_size, 0, epoch, sortish=True):
            engine.set_lr(0.5)
            engine.train_step(batching.collate(data, indices, tok.pad_token_id))
    ours = tokens / (time.perf_counter() - start)

    results = {"greentune": ours}
    import inspect

    from transformers import Seq2SeqTrainingArguments

    has_grouping = "group_by_length" in inspect.signature(Seq2SeqTrainingArguments).parameters
    for group in (False, True) if has_grouping else (False,):
        results[f"hf_seq2seqtrainer{'_group_by_length' if group else ''}"] = hf(
            data, tok, args, tokens, group
        )
    print(
        f"command: python benchmarks/throughput_vs_hf.py --n-train {args.n_train} "
        f"--batch-size {args.batch_size} --epochs {args.epochs}"
    )
    for name, value in results.items():
        print(f"{name:>36}: {value:,.0f} tokens/s  (ours / this = {ours / value:.2f})")


def hf(data, tok, args, tokens: int, group_by_length: bool) -> float:
    import torch
    from transformers import DataCollatorForSeq2Seq, Seq2SeqTrainer, Seq2SeqTrainingArguments

    from core.config import ModelConfig
    from trainables.models import build_model

    model = build_model(ModelConfig(), tok, seed=0)
    rows = [
        {"input_ids": s, "attention_mask": [1] * len(s), "labels": t}
        for s, t in zip(data.sources, data.targets)
    ]
    with tempfile.TemporaryDirectory() as out:
        training_args = Seq2SeqTrainingArguments(
            output_dir=out,
            per_device_train_batch_size=args.batch_size,
            num_train_epochs=args.epochs,
            learning_rate=1e-3,
            warmup_steps=0.05,
            weight_decay=0.0,
            max_grad_norm=1.0,
            logging_strategy="no",
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            dataloader_num_workers=0,
            disable_tqdm=True,
            seed=0,
            **({"group_by_length": True} if group_by_length else {}),
        )
        trainer = Seq2SeqTrainer(
            model=model,
            args=training_args,
            train_dataset=rows,
            data_collator=DataCollatorForSeq2Seq(tok, model=model),
        )
        torch.set_num_threads(1)
        start = time.perf_counter()
        trainer.train()
        return tokens / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
