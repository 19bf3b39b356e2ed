"""A seq2seq summarizer as two ONNX graphs, ONNX Runtime sessions over them, and int8 copies.

`torch.onnx.export` (its dynamo exporter, the default of the pinned torch) writes the encoder
(`input_ids`, `attention_mask` -> `last_hidden_state`) and one decoder step without a KV cache
(`decoder_input_ids`, `encoder_hidden_states`, `encoder_attention_mask` -> `next_token_logits`,
the last position's logits only), batch and lengths dynamic. Without a cache the decoder
recomputes every earlier position at each new token, which PyTorch's `generate()` does not:
the comparison states it. Hugging Face's `optimum-onnx` exports a decoder with past key values,
but it pins transformers below 4.58 (greentune runs 5.x). `quantize_int8` applies ONNX
Runtime's dynamic int8 quantization (weights int8, activations quantized per batch at run time)
to both graphs.

Families whose batches need inputs these graphs do not take (LED's global attention mask,
BigBird-Pegasus's block-sparse minimum length) are refused with the reason (`unsupported_reason`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from transformers import PreTrainedModel

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
ENCODER_INPUTS = ("input_ids", "attention_mask")
ENCODER_OUTPUTS = ("last_hidden_state",)
DECODER_INPUTS = ("decoder_input_ids", "encoder_hidden_states", "encoder_attention_mask")
DECODER_OUTPUTS = ("next_token_logits",)
OPSET = 18


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output: its name, numpy dtype and dims (a name for a dynamic one)."""

    name: str
    dtype: str
    dims: tuple[int | str, ...]


@dataclass(frozen=True)
class OnnxSeq2Seq:
    """An exported summarizer: its encoder and decoder-step graphs."""

    encoder: Path
    decoder: Path

    @property
    def bytes(self) -> int:
        return sum(_graph_bytes(p) for p in (self.encoder, self.decoder))


def unsupported_reason(model: PreTrainedModel) -> str | None:
    """Why this model cannot be exported to these two graphs (None: it can)."""
    config = model.config
    if config.model_type == "led":
        return "LED: its encoder needs a global_attention_mask input the exported graph lacks"
    if getattr(config, "attention_type", None) == "block_sparse":
        return (
            "BigBird-Pegasus: block-sparse attention depends on the input length at trace time "
            "(a traced graph would fix one attention path)"
        )
    return None


def export_onnx(model: PreTrainedModel, out_dir: Path) -> OnnxSeq2Seq:
    """The model's encoder and decoder step as ONNX graphs in `out_dir` (created)."""
    reason = unsupported_reason(model)
    if reason:
        raise ValueError(reason)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = model.eval().to("cpu")
    batch, src, tgt = (torch.export.Dim(n) for n in ("batch", "src", "tgt"))
    ids = torch.full((2, 8), 5, dtype=torch.long)
    mask = torch.ones_like(ids)
    encoder, decoder = _Encoder(model), _DecoderStep(model)
    with torch.no_grad():
        hidden = encoder(ids, mask)
    start = torch.full((2, 3), 5, dtype=torch.long)
    _export(
        encoder,
        (ids, mask),
        out_dir / ENCODER_FILE,
        ENCODER_INPUTS,
        ENCODER_OUTPUTS,
        ({0: batch, 1: src}, {0: batch, 1: src}),
    )
    _export(
        decoder,
        (start, hidden, mask),
        out_dir / DECODER_FILE,
        DECODER_INPUTS,
        DECODER_OUTPUTS,
        ({0: batch, 1: tgt}, {0: batch, 1: src}, {0: batch, 1: src}),
    )
    return OnnxSeq2Seq(out_dir / ENCODER_FILE, out_dir / DECODER_FILE)


def quantize_int8(exported: OnnxSeq2Seq, out_dir: Path) -> OnnxSeq2Seq:
    """Both graphs with ONNX Runtime's dynamic int8 quantization (weights to int8), in `out_dir`."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for source in (exported.encoder, exported.decoder):
        target = out_dir / source.name
        with _quiet_logger(""):  # "please consider pre-processing": advice, not a fault
            quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8)
        paths.append(target)
    return OnnxSeq2Seq(*paths)


def signature(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """A graph's inputs and outputs as the ONNX file declares them."""
    import onnx
    from onnx import helper

    graph = onnx.load(str(path), load_external_data=False).graph

    def specs(values: Any) -> list[TensorSpec]:
        out = []
        for v in values:
            tensor = v.type.tensor_type
            dims = tuple(d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim)
            dtype = np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)).name
            out.append(TensorSpec(v.name, dtype, dims))
        return out

    return specs(graph.input), specs(graph.output)


class OrtSeq2Seq:
    """ONNX Runtime sessions over an exported summarizer, as the encoder and decoder steps of
    `serving.decoding.greedy_summarize`."""

    def __init__(self, exported: OnnxSeq2Seq, providers: list[str], threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        self.providers = providers
        self.encoder = ort.InferenceSession(str(exported.encoder), options, providers=providers)
        self.decoder = ort.InferenceSession(str(exported.decoder), options, providers=providers)

    def encode(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = dict(zip(ENCODER_INPUTS, (input_ids, attention_mask)))
        return self.encoder.run(None, feed)[0]

    def decode(
        self, decoder_input_ids: np.ndarray, hidden: np.ndarray, attention_mask: np.ndarray
    ) -> np.ndarray:
        feed = dict(zip(DECODER_INPUTS, (decoder_input_ids, hidden, attention_mask)))
        return self.decoder.run(None, feed)[0]


def available_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _export(
    module: Any,
    args: tuple[Any, ...],
    path: Path,
    inputs: tuple[str, ...],
    outputs: tuple[str, ...],
    dynamic: tuple[dict[int, Any], ...],
) -> None:
    quiet = io.StringIO()  # the exporter prints its progress (four lines a graph)
    with warnings.catch_warnings(), contextlib.redirect_stdout(quiet), _quiet_logger("torch.onnx"):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            args,
            str(path),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_shapes=dynamic,
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )


@contextlib.contextmanager
def _quiet_logger(name: str) -> Iterator[None]:
    """The `name` logger (the root for "") at ERROR while the block runs."""
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _graph_bytes(path: Path) -> int:
    data = path.with_name(path.name + ".data")
    return os.path.getsize(path) + (os.path.getsize(data) if data.exists() else 0)


class _Encoder(torch.nn.Module):
    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.encoder = model.get_encoder()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]


class _DecoderStep(torch.nn.Module):
    def __init__(self, model: PreTrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(
        self, decoder_input_ids: torch.Tensor, hidden: torch.Tensor, attention_mask: torch.Tensor
    ) -> torch.Tensor:
        out = self.model(
            encoder_outputs=(hidden,),
            attention_mask=attention_mask,
            decoder_input_ids=decoder_input_ids,
            use_cache=False,
        )
        return out.logits[:, -1, :]
