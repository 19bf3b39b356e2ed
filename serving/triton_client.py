"""Summarize with a Triton server that serves a study's model repository.

    python -m serving.triton_client --url localhost:8000 --study <study folder> "An article ..."

Start the server on the GPU VM first (docs/run_on_azure.md, "Serving with Triton"):

    docker run --gpus all --rm -p 8000:8000 -p 8001:8001 -p 8002:8002 \\
      -v <study folder>/triton_repository:/models nvcr.io/nvidia/tritonserver:<yy.mm>-py3 \\
      tritonserver --model-repository=/models

The client tokenizes with the study's `best_model/` tokenizer, calls `<prefix>_encoder` once per
request and `<prefix>_decoder` once per new token over HTTP (`tritonclient.http`), and decodes
greedily as `python -m study.run infer` does (`serving.decoding`). With `--log FILE` every
request is metered on this client machine and logged with its CO2 (`serving.request_log`); the
server's own GPU energy is the server's to meter (Triton exports `nv_energy_consumption` on its
metrics port, 8002).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from serving.decoding import GreedySettings, greedy_summarize
from serving.onnx_export import DECODER_INPUTS, DECODER_OUTPUTS, ENCODER_INPUTS, ENCODER_OUTPUTS
from serving.triton import TRITON_TYPES, model_names


def infer_inputs(names: Sequence[str], arrays: Sequence[np.ndarray]) -> list[Any]:
    """`tritonclient.http.InferInput`s for `arrays` under the graph's input names, with Triton's
    data type names (TYPE_INT64 -> INT64)."""
    from tritonclient.http import InferInput

    out = []
    for name, array in zip(names, arrays):
        datatype = TRITON_TYPES[array.dtype.name].removeprefix("TYPE_")
        item = InferInput(name, list(array.shape), datatype)
        item.set_data_from_numpy(array)
        out.append(item)
    return out


class TritonSeq2Seq:
    """The encoder and decoder steps of `greedy_summarize`, served by Triton over HTTP."""

    def __init__(self, url: str, prefix: str = "greentune") -> None:
        from tritonclient.http import InferenceServerClient

        self.client = InferenceServerClient(url)
        self.encoder_name, self.decoder_name = model_names(prefix)

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        result = self.client.infer(
            self.encoder_name, infer_inputs(ENCODER_INPUTS, (input_ids, attention_mask))
        )
        return result.as_numpy(ENCODER_OUTPUTS[0])

    def decode(
        self, decoder_input_ids: np.ndarray, hidden: np.ndarray, attention_mask: np.ndarray
    ) -> np.ndarray:
        arrays = (decoder_input_ids, hidden.astype(np.float32), attention_mask)
        result = self.client.infer(self.decoder_name, infer_inputs(DECODER_INPUTS, arrays))
        return result.as_numpy(DECODER_OUTPUTS[0])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m serving.triton_client", description=__doc__)
    p.add_argument("texts", nargs="+", help="articles to summarize (one request)")
    p.add_argument("--url", default="localhost:8000", help="Triton's HTTP endpoint")
    p.add_argument("--study", required=True, type=Path, help="the study folder (its tokenizer)")
    p.add_argument("--prefix", default="greentune", help="the repository's model name prefix")
    p.add_argument("--log", type=Path, help="append the request's energy and CO2 to this parquet")
    args = p.parse_args(argv)
    from serving.infer import load_best_model, study_config

    cfg = study_config(args.study)
    model, tokenizer = load_best_model(args.study)
    batch = tokenizer(
        list(args.texts),
        truncation=True,
        max_length=cfg.data.max_source_tokens,
        padding=True,
        return_tensors="np",
    )
    served = TritonSeq2Seq(args.url, args.prefix)
    greedy = GreedySettings.of(model, cfg.eval.max_new_tokens, cfg.eval.min_new_tokens)

    def request(texts: Sequence[str]) -> np.ndarray:
        return greedy_summarize(
            served.encode,
            served.decode,
            batch["input_ids"].astype(np.int64),
            batch["attention_mask"].astype(np.int64),
            greedy,
        )

    if args.log:
        import datetime
        import time

        from core.footprint import carbon_intensity
        from meter.energy import EnergyMeter
        from serving.request_log import MeteredSummarizer, RequestLog, write_requests

        log = RequestLog("triton", carbon_intensity(cfg.energy, time.time()))
        meter = EnergyMeter(cpu_tdp_w=cfg.energy.cpu_tdp_w, vm_size=cfg.energy.vm_size)
        ids = MeteredSummarizer(request, meter, log)(list(args.texts))
        meter.close()
        write_requests([log], args.log, datetime.datetime.now(datetime.timezone.utc).isoformat())
    else:
        ids = request(list(args.texts))
    for summary in tokenizer.batch_decode(ids, skip_special_tokens=True):
        print(summary.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
