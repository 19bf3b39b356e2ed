"""After the search: the selected model exported to ONNX, served on ONNX Runtime (fp32, int8)
against PyTorch, metered per request, and packaged as a Triton model repository.

Real parts throughout: a tiny BART saved with `save_pretrained` into a study folder whose
metadata.json the study's own writer produced (no Ray: the serving path starts from a finished
study's folder), torch.onnx's exporter, ONNX Runtime's CPU provider and its int8 quantizer,
real rouge-score, Triton's own ModelConfig protobuf schema (from tritonclient). The Triton
server is not installable here: the repository is checked for shape and consistency, not served.
No hardware is mocked: there is no GPU, and the CPU energy is the meter's stated estimate.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("onnxruntime", reason="the inference extra: pip install -e '.[inference]'")

from core import schema  # noqa: E402
from core.config import resolve_config  # noqa: E402
from core.footprint import DEFAULT_PUE  # noqa: E402
from core.metadata import StudyMetadata, write_metadata  # noqa: E402

# Random weights stop at once; forcing 12 to 16 new tokens makes every summary a real sequence
# whose every step must agree between runtimes.
SETTINGS = ["eval.min_new_tokens=12", "eval.max_new_tokens=16", "data.n_test=24"]
FP32_ROUGE_TOLERANCE = 0.99  # ONNX Runtime fp32 vs PyTorch: ROUGE-L of one against the other
INT8_ROUGE_TOLERANCE = 0.5  # int8 weights on a random-init model: most tokens still agree


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory):
    """A finished study's folder as the study writes it: metadata.json and best_model/."""
    from trainables.held_out import export_model
    from trainables.models import build_model
    from trainables.train_loop import prepared_data

    cfg = resolve_config(overrides=SETTINGS)
    folder = tmp_path_factory.mktemp("study") / "pbt-tiny-bart-builtin-seed0"
    write_metadata(folder, StudyMetadata(study=folder.name, strategy="pbt", config=cfg.to_dict()))
    tokenizer = prepared_data(cfg.model, cfg.data).tokenizer
    export_model(build_model(cfg.model, tokenizer), tokenizer, cfg, str(folder / "best_model"))
    return folder


@pytest.fixture(scope="module")
def infer_run(study_dir):
    from study.infer import main

    assert main([str(study_dir), "--n", "24", "--batch-size", "8"]) == 0
    return (
        pd.read_parquet(study_dir / schema.INFERENCE_FILE).set_index("runtime"),
        pd.read_parquet(study_dir / schema.INFERENCE_REQUESTS_FILE),
    )


def test_onnx_runtime_summarizes_as_pytorch_does(infer_run):
    results, _ = infer_run
    assert list(results.index) == list(schema.RUNTIMES)
    assert (results["status"] == "ok").all()
    fp32 = results.loc["onnxruntime"]
    assert fp32["rougeL_vs_pytorch"] >= FP32_ROUGE_TOLERANCE
    assert fp32["exact_vs_pytorch"] >= 0.9  # token for token, float rounding aside
    assert results.loc["pytorch", "exact_vs_pytorch"] == 1.0  # against itself: the check works
    assert not fp32["decoder_cache"] and results.loc["pytorch", "decoder_cache"]
    assert (results["n_summaries"] == 24).all() and (results["batch_size"] == 8).all()


def test_int8_is_smaller_and_within_tolerance(infer_run):
    results, _ = infer_run
    assert (
        results.loc["onnxruntime-int8", "model_bytes"]
        < 0.5 * results.loc["onnxruntime", "model_bytes"]
    )
    assert results.loc["onnxruntime-int8", "rougeL_vs_pytorch"] >= INT8_ROUGE_TOLERANCE
    assert results.loc["onnxruntime-int8", "setup_s"] > 0  # quantization metered as set-up


def test_per_request_energy_sums_to_the_runtime_total(infer_run):
    results, requests = infer_run
    for runtime, rows in requests.groupby("runtime"):
        assert len(rows) == 3  # 24 summaries in requests of 8
        assert rows["summaries"].sum() == 24
        total = results.loc[runtime]
        assert rows["energy_j"].sum() == pytest.approx(total["energy_j"])
        assert rows["latency_s"].sum() == pytest.approx(total["seconds"])
        assert total["energy_per_1k_j"] == pytest.approx(total["energy_j"] * 1000 / 24)
        assert (rows["energy_source"] == "estimated").all()  # no RAPL, no GPU here
        # CO2 at the study's region intensity x PUE, per request
        expected = rows["energy_j"] / 3.6e6 * DEFAULT_PUE * rows["intensity_g_per_kwh"]
        assert rows["co2_g"].to_numpy() == pytest.approx(expected.to_numpy())
    assert results["usd_per_1k"].isna().all()  # a local machine has no price


def test_per_request_windows_sum_to_an_enclosing_window():
    """The request log's energies add up to one meter window around the same calls."""
    from core.footprint import carbon_intensity
    from meter.energy import EnergyMeter
    from serving.request_log import MeteredSummarizer, RequestLog

    cfg = resolve_config()
    meter = EnergyMeter()
    log = RequestLog("busy", carbon_intensity(cfg.energy, time.time()))

    def busy(texts):
        deadline = time.process_time() + 0.05 * len(texts)
        while time.process_time() < deadline:
            pass
        return [t.upper() for t in texts]

    summarize = MeteredSummarizer(busy, meter, log)
    meter.begin_window("all")
    outputs = [summarize(["a"] * k) for k in (1, 2, 3)]
    outer = meter.end_window("all")
    assert outputs[2] == ["A", "A", "A"]
    inner = sum(r.energy_j for r in log.rows)
    assert 0.9 * outer.total_j <= inner <= outer.total_j * 1.0001
    assert [r.summaries for r in log.rows] == [1, 2, 3]


def test_triton_repository_matches_the_exported_graphs(study_dir, infer_run):
    from serving.onnx_export import signature
    from serving.triton import check_model_repository, config_text

    repository = study_dir / schema.TRITON_DIR
    assert check_model_repository(repository) == []
    decoder = repository / "greentune_decoder"
    text = (decoder / "config.pbtxt").read_text()
    assert "max_batch_size: 16" in text and "dynamic_batching" in text
    # a config that disagrees with its graph is caught: a wrong data type, a missing output
    inputs, outputs = signature(decoder / "1" / "model.onnx")
    wrong = config_text("greentune_decoder", inputs, [], 16, 100, True).replace(
        "TYPE_INT64", "TYPE_INT32", 1
    )
    (decoder / "config.pbtxt").write_text(wrong)
    problems = check_model_repository(repository)
    assert any("data_type TYPE_INT32" in p for p in problems)
    assert any("outputs [] in the config" in p for p in problems)
    (decoder / "config.pbtxt").write_text(text)


def test_triton_client_requests_match_the_repository(study_dir, infer_run):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    from serving.onnx_export import DECODER_INPUTS
    from serving.triton_client import infer_inputs

    config = text_format.Parse(
        (study_dir / schema.TRITON_DIR / "greentune_decoder" / "config.pbtxt").read_text(),
        model_config_pb2.ModelConfig(),
    )
    arrays = (
        np.zeros((2, 3), np.int64),
        np.zeros((2, 5, 128), np.float32),
        np.ones((2, 5), np.int64),
    )
    requested = infer_inputs(DECODER_INPUTS, arrays)
    declared = {i.name: model_config_pb2.DataType.Name(i.data_type) for i in config.input}
    for item, array in zip(requested, arrays):
        assert declared[item.name()] == "TYPE_" + item.datatype()
        assert item.shape() == list(array.shape)


def test_a_second_run_keeps_the_first_runs_rows(study_dir, infer_run):
    from study.infer import main

    assert main([str(study_dir), "--n", "8", "--batch-size", "8", "--runtimes", "pytorch"]) == 0
    results = pd.read_parquet(study_dir / schema.INFERENCE_FILE)
    assert len(results) == 4 and results[schema.INFER_RUN].nunique() == 2


def test_bad_input_is_one_line_exit_2_nothing_written(tmp_path, study_dir, capsys):
    from study.infer import main

    assert main([str(tmp_path)]) == 2
    assert "not a study folder" in capsys.readouterr().err
    assert main([str(study_dir), "--runtimes", "tensorrt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--runtimes 'tensorrt'" in err
    empty = tmp_path / "unfinished"
    write_metadata(empty, StudyMetadata(study="unfinished", config=resolve_config().to_dict()))
    assert main([str(empty)]) == 2
    assert "no saved model" in capsys.readouterr().err
    assert sorted(p.name for p in empty.iterdir()) == [schema.METADATA_FILE]


def test_requests_are_logged_to_the_studys_mlflow_run(tmp_path, study_dir):
    """Real MLflow on sqlite: `--mlflow` logs every request as a step of the study's run."""
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    from core.metadata import read_metadata
    from study.infer import main

    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking)
    run_id = client.create_run(client.create_experiment("greentune")).info.run_id
    folder = tmp_path / study_dir.name
    import shutil

    shutil.copytree(study_dir / "best_model", folder / "best_model")
    metadata = read_metadata(study_dir)
    metadata.mlflow_run_id = run_id
    write_metadata(folder, metadata)
    args = [str(folder), "--n", "16", "--batch-size", "8", "--runtimes", "pytorch"]
    assert main([*args, "--mlflow", tracking]) == 0
    history = client.get_metric_history(run_id, "inference/pytorch/energy_j")
    assert [m.step for m in history] == [0, 1]  # two requests of 8
    logged = pd.read_parquet(folder / schema.INFERENCE_REQUESTS_FILE)
    assert [m.value for m in history] == pytest.approx(list(logged["energy_j"]))
    # a study that was never logged to MLflow: refused before any work
    assert main([str(study_dir), "--mlflow", tracking]) == 2


def test_a_runtime_that_fails_is_a_row_and_the_others_still_run(tmp_path):
    """LED's encoder needs a global attention mask the exported graph lacks: its ONNX row says
    why (an exporter's own error, T5's for one, is recorded the same way)."""
    from study.infer import main
    from trainables.held_out import export_model
    from trainables.models import build_model
    from trainables.train_loop import prepared_data

    cfg = resolve_config(overrides=[*SETTINGS, "model.name=tiny-led"])
    folder = tmp_path / "pbt-tiny-led-builtin-seed0"
    write_metadata(folder, StudyMetadata(study=folder.name, strategy="pbt", config=cfg.to_dict()))
    tokenizer = prepared_data(cfg.model, cfg.data).tokenizer
    export_model(build_model(cfg.model, tokenizer), tokenizer, cfg, str(folder / "best_model"))
    assert main([str(folder), "--n", "8"]) == 1
    results = pd.read_parquet(folder / schema.INFERENCE_FILE).set_index("runtime")
    assert results.loc["pytorch", "status"] == "ok"
    for runtime in ("onnxruntime", "onnxruntime-int8"):  # the export is tried once, for both
        assert results.loc[runtime, "status"].startswith("failed: export: ValueError: LED")
    assert not (folder / schema.TRITON_DIR).exists()  # nothing to serve


def test_result_columns_are_the_schemas():
    from dataclasses import fields

    from serving.infer import RuntimeResult
    from serving.request_log import RequestRecord

    assert tuple(f.name for f in fields(RuntimeResult)) == schema.INFERENCE_COLUMNS
    assert tuple(f.name for f in fields(RequestRecord)) == schema.REQUEST_COLUMNS
