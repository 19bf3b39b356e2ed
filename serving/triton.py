"""A Triton Inference Server model repository for an exported summarizer, checked offline.

`write_model_repository` lays out Triton's repository for the two graphs of
`serving.onnx_export`:

    triton_repository/
      <name>_encoder/config.pbtxt   platform onnxruntime_onnx, inputs/outputs from the graph
      <name>_encoder/1/model.onnx
      <name>_decoder/config.pbtxt
      <name>_decoder/1/model.onnx

Each `config.pbtxt` declares `max_batch_size` (the graph's first dimension is the batch, so
`dims` leave it out; a dynamic dimension is -1), dynamic batching (requests whose other
dimensions agree are batched together, waiting at most `max_queue_delay_microseconds`) and one
instance on a GPU (`KIND_GPU`, or `KIND_CPU`). Greedy decoding runs in the client
(`serving.triton_client`): the encoder once per request, the decoder once per token.

`check_model_repository` parses every config with Triton's own protobuf schema
(`tritonclient`'s `model_config_pb2`) and compares it with the ONNX file's signature: names,
data types, ranks and fixed dimensions. The server is not run here.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from serving.onnx_export import OnnxSeq2Seq, TensorSpec, signature

CONFIG_FILE = "config.pbtxt"
MODEL_FILE = "model.onnx"
VERSION = "1"
# numpy dtype name -> Triton's DataType enum name
TRITON_TYPES = {
    "int64": "TYPE_INT64",
    "int32": "TYPE_INT32",
    "float32": "TYPE_FP32",
    "float16": "TYPE_FP16",
    "bool": "TYPE_BOOL",
}


@dataclass(frozen=True)
class TritonModel:
    name: str
    folder: Path

    @property
    def config(self) -> Path:
        return self.folder / CONFIG_FILE

    @property
    def graph(self) -> Path:
        return self.folder / VERSION / MODEL_FILE


def model_names(prefix: str) -> tuple[str, str]:
    return f"{prefix}_encoder", f"{prefix}_decoder"


def write_model_repository(
    exported: OnnxSeq2Seq,
    repository: Path,
    prefix: str = "greentune",
    max_batch_size: int = 16,
    max_queue_delay_us: int = 2000,
    gpu: bool = True,
) -> list[TritonModel]:
    """Triton's repository for both graphs at `repository` (replaced if it exists)."""
    if repository.exists():
        shutil.rmtree(repository)
    models = []
    for name, graph in zip(model_names(prefix), (exported.encoder, exported.decoder)):
        model = TritonModel(name, repository / name)
        model.graph.parent.mkdir(parents=True)
        shutil.copyfile(graph, model.graph)
        inputs, outputs = signature(graph)
        model.config.write_text(
            config_text(name, inputs, outputs, max_batch_size, max_queue_delay_us, gpu)
        )
        models.append(model)
    return models


def config_text(
    name: str,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    max_batch_size: int,
    max_queue_delay_us: int,
    gpu: bool,
) -> str:
    """A model's config.pbtxt (protobuf text format of Triton's ModelConfig)."""
    preferred = sorted({b for b in (max_batch_size // 2, max_batch_size) if b >= 1})
    lines = [
        f'name: "{name}"',
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch_size}",
    ]
    for kind, specs in (("input", inputs), ("output", outputs)):
        entries = [
            "  {\n"
            f'    name: "{spec.name}"\n'
            f"    data_type: {TRITON_TYPES[spec.dtype]}\n"
            f"    dims: [ {', '.join(str(d) for d in _dims(spec))} ]\n"
            "  }"
            for spec in specs
        ]
        lines.append(f"{kind} [\n" + ",\n".join(entries) + "\n]")
    lines.append(
        "dynamic_batching {\n"
        f"  preferred_batch_size: [ {', '.join(map(str, preferred))} ]\n"
        f"  max_queue_delay_microseconds: {max_queue_delay_us}\n"
        "}"
    )
    kind = "KIND_GPU" if gpu else "KIND_CPU"
    lines.append(f"instance_group [\n  {{\n    count: 1\n    kind: {kind}\n  }}\n]")
    return "\n".join(lines) + "\n"


def check_model_repository(repository: Path) -> list[str]:
    """What is wrong with the repository, as Triton would read it (empty: nothing found)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    problems: list[str] = []
    folders = sorted(p for p in repository.iterdir() if p.is_dir()) if repository.is_dir() else []
    if not folders:
        return [f"{repository}: no model folders"]
    for folder in folders:
        model = TritonModel(folder.name, folder)
        if not model.config.is_file() or not model.graph.is_file():
            problems.append(f"{folder.name}: needs {CONFIG_FILE} and {VERSION}/{MODEL_FILE}")
            continue
        try:
            config = text_format.Parse(model.config.read_text(), model_config_pb2.ModelConfig())
        except text_format.ParseError as e:
            problems.append(f"{model.config}: not a Triton ModelConfig ({e})")
            continue
        if config.name != folder.name:
            problems.append(f"{folder.name}: config name {config.name!r} differs from its folder")
        if config.platform != "onnxruntime_onnx":
            problems.append(f"{folder.name}: platform {config.platform!r}, not onnxruntime_onnx")
        inputs, outputs = signature(model.graph)
        for kind, declared, actual in (
            ("input", config.input, inputs),
            ("output", config.output, outputs),
        ):
            problems += _compare(folder.name, kind, declared, actual, config.max_batch_size)
    return problems


def _dims(spec: TensorSpec) -> list[int]:
    """Triton's dims for a batched graph: all but the first (the batch), -1 where dynamic."""
    return [d if isinstance(d, int) and d > 0 else -1 for d in spec.dims[1:]]


def _compare(
    model: str, kind: str, declared: object, actual: list[TensorSpec], max_batch_size: int
) -> list[str]:
    from tritonclient.grpc import model_config_pb2

    problems = []
    declared_by_name = {t.name: t for t in declared}  # type: ignore[attr-defined]
    actual_by_name = {t.name: t for t in actual}
    if set(declared_by_name) != set(actual_by_name):
        problems.append(
            f"{model}: {kind}s {sorted(declared_by_name)} in the config, "
            f"{sorted(actual_by_name)} in the graph"
        )
    for name in sorted(set(declared_by_name) & set(actual_by_name)):
        d, a = declared_by_name[name], actual_by_name[name]
        wanted_type = TRITON_TYPES.get(a.dtype)
        got_type = model_config_pb2.DataType.Name(d.data_type)
        if got_type != wanted_type:
            problems.append(f"{model}.{name}: data_type {got_type}, the graph has {a.dtype}")
        if max_batch_size > 0 and a.dims and isinstance(a.dims[0], int) and a.dims[0] > 0:
            problems.append(f"{model}.{name}: max_batch_size > 0 but the graph's batch is fixed")
        expected = (
            _dims(a)
            if max_batch_size > 0
            else [-1 if not isinstance(x, int) else x for x in a.dims]
        )
        if list(d.dims) != expected:
            problems.append(f"{model}.{name}: dims {list(d.dims)}, the graph needs {expected}")
    return problems
