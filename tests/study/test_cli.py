"""`python -m study.run`: --help, the plan, and every bad input ends in exit 2 before Ray starts"""

import json
import subprocess
import sys

import pytest

from study import run
from tests.conftest import REPO


def test_help_explains_every_option():
    out = subprocess.run(
        [sys.executable, "-m", "study.run", "--help"],
        cwd=REPO,
        text=True,
        capture_output=True,
        check=True,
    ).stdout
    for option in (
        "pbt",
        "asha",
        "grid",
        "--config",
        "--set",
        "--name",
        "--storage",
        "--address",
        "--resume",
        "--seed",
        "--dry-run",
    ):
        assert option in out


def test_dry_run_prints_the_derived_plan(tmp_path, capsys):
    assert run.main(["asha", "--storage", str(tmp_path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    # a sampler has no trial count: it starts trials until the budget is spent
    assert (
        "strategy asha, trials until the budget is spent" in out and '"asha_rungs": [1, 3]' in out
    )
    assert "budget budget.trial_epochs=16" in out
    assert str(tmp_path / "asha-tiny-bart-builtin-seed0") in out


def test_dry_run_says_how_many_trials_run_at_once_here(tmp_path, capsys):
    local = ["--set", "resources.local_cpus=4", "--set", "resources.cpus_per_worker=1"]
    assert run.main(["grid", "--storage", str(tmp_path), "--dry-run", *local]) == 0
    assert ", 4 at a time" in capsys.readouterr().out.splitlines()[0]
    cluster = ["--address", "auto", "--storage", str(tmp_path), "--dry-run"]
    assert run.main(["grid", *cluster]) == 0  # its size is known once Ray is up
    assert "as many at a time as the cluster holds" in capsys.readouterr().out


def test_print_config_gives_a_file_that_config_reads_back(tmp_path, capsys):
    given = ["--set", "train.lr=3e-4", "--set", "data.n_train=200", "--seed", "3"]
    assert run.main(["pbt", "--storage", str(tmp_path / "results"), "--print-config", *given]) == 0
    text = capsys.readouterr().out
    assert "lr: 0.0003" in text and not (tmp_path / "results").exists()  # nothing written
    (tmp_path / "study.yaml").write_text(text)
    again = run.plan_study(
        run.build_parser().parse_args(
            ["pbt", "--config", str(tmp_path / "study.yaml"), "--dry-run"]
        )
    )
    direct = run.plan_study(run.build_parser().parse_args(["pbt", "--dry-run", *given]))
    assert again.config == direct.config


@pytest.mark.parametrize(
    "args, needle",
    [
        (["bayesopt"], "invalid choice: 'bayesopt'"),
        (["pbt", "--set", "train.warmup=0.1"], "train.warmup: unknown key"),
        (["pbt", "--set", "train.batch_size=big"], "train.batch_size='big': expected int"),
        (["pbt", "--set", "train.lr=0"], "train.lr=0.0: must be > 0"),
        (
            ["pbt", "--config", "/nonexistent/study.yaml"],
            "--config '/nonexistent/study.yaml': cannot read it",
        ),
        (["pbt", "--set", "train.precision=fp16"], "train.precision='fp16': needs a GPU"),
        (["pbt", "--set", "model.name=tiny-gpt"], "model.name='tiny-gpt': not a preset"),
        (["pbt", "--set", "model.revision=v1"], "model.revision='v1': tiny-bart is a preset"),
        (["pbt", "--set", "data.revision=v1"], "data.revision='v1': the built-in dataset has none"),
        (["pbt", "--set", "data.dataset=/nonexistent.jsonl"], "data.dataset"),
        (["pbt", "--set", "search.space=nope"], "search.space='nope': no such space"),
        (["pbt", "--set", "resources.workers_per_trial=64"], "resources.workers_per_trial=64"),
        (
            ["pbt", "--set", "resources.gpus_per_worker=0.5"],
            "resources.gpus_per_worker=0.5: must be 0 or a whole number",
        ),
        (
            ["random", "--set", "budget.cost_usd=5"],
            "budget.cost_usd=5: a local machine has no price",
        ),
        (
            ["grid", "--set", "budget.trial_epochs=8", "--set", "budget.energy_kwh=1"],
            "set one budget, not 2",
        ),
        (
            [
                "grid",
                "--set",
                "energy.vm_size=NC24ads_A100_v4",
                "--set",
                "energy.region=westeurope",
            ],
            "prices it only in eastus",
        ),
        (["grid", "--set", "budget.trial_epochs=1"], "budget.trial_epochs=1: less than one trial"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line_and_no_ray(args, needle, tmp_path, capsys):
    import ray

    try:
        code = run.main([*args, "--storage", str(tmp_path)])
    except SystemExit as exit_:  # argparse's own errors (unknown strategy) exit 2 too
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2
    assert needle in err, err
    assert not ray.is_initialized()


def test_storage_and_resume_errors(tmp_path, capsys):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert run.main(["pbt", "--storage", str(blocked / "sub")]) == 2
    assert "cannot write there" in capsys.readouterr().err
    assert run.main(["pbt", "--storage", str(tmp_path), "--resume"]) == 2
    assert "--resume: no study named 'pbt-tiny-bart-builtin-seed0'" in capsys.readouterr().err
    (tmp_path / "pbt-tiny-bart-builtin-seed0").mkdir()
    (tmp_path / "pbt-tiny-bart-builtin-seed0" / "metadata.json").write_text("{}")
    assert run.main(["pbt", "--storage", str(tmp_path)]) == 2
    assert "already holds a study; pass --resume" in capsys.readouterr().err


def test_uri_storage_is_checked_on_the_uri(tmp_path, capsys, monkeypatch):
    # a file:// URI goes through pyarrow.fs as abfss:// does; the head's folder is the cwd's
    monkeypatch.chdir(tmp_path)
    uri = (tmp_path / "remote").as_uri()
    name = "pbt-tiny-bart-builtin-seed0"
    assert run.main(["pbt", "--storage", uri, "--resume"]) == 2
    assert f"--resume: no study named {name!r} under {uri}" in capsys.readouterr().err
    # a study on the URI (its head gone): a plain run refuses it, --dry-run --resume reads it there
    (tmp_path / "remote" / name).mkdir(parents=True)
    assert run.main(["pbt", "--storage", uri, "--dry-run"]) == 0  # the config it will compare
    capsys.readouterr()
    (tmp_path / "remote" / name / "metadata.json").write_text('{"study": "x", "strategy": "asha"}')
    assert run.main(["pbt", "--storage", uri]) == 2
    assert f"{uri}/{name} already holds a study; pass --resume" in capsys.readouterr().err
    assert run.main(["pbt", "--storage", uri, "--resume", "--dry-run"]) == 2
    assert "is a asha study, not pbt" in capsys.readouterr().err
    assert not (tmp_path / "greentune_results").exists()  # nothing written on the head


def test_model_folders_that_cannot_serve_are_rejected(tmp_path, capsys):
    decoder_only = tmp_path / "gpt"
    decoder_only.mkdir()
    (decoder_only / "config.json").write_text('{"model_type": "gpt2", "n_layer": 1}')
    unknown = tmp_path / "alien"
    unknown.mkdir()
    (unknown / "config.json").write_text('{"model_type": "nosuchfamily"}')
    assert run.main(["pbt", "--storage", str(tmp_path), "--set", f"model.name={decoder_only}"]) == 2
    assert "a gpt2 model is not encoder-decoder" in capsys.readouterr().err
    assert run.main(["pbt", "--storage", str(tmp_path), "--set", f"model.name={unknown}"]) == 2
    err = capsys.readouterr().err
    assert f"model.name='{unknown}': could not load it" in err and "use a preset" in err
    config_only = tmp_path / "bart-config-only"
    config_only.mkdir()
    (config_only / "config.json").write_text('{"model_type": "bart"}')
    assert run.main(["pbt", "--storage", str(tmp_path), "--set", f"model.name={config_only}"]) == 2
    assert "the folder has no weights and no tokenizer files" in capsys.readouterr().err
    assert run.main(["pbt", "--storage", str(tmp_path), "--set", f"model.name={tmp_path}"]) == 2
    assert "the folder has no config.json" in capsys.readouterr().err
    assert not any(p.name.startswith("pbt-") for p in tmp_path.iterdir())


def test_compare_plans_every_strategy_and_seed_under_one_budget(tmp_path, capsys):
    assert (
        run.main(
            [
                "compare",
                "--seeds",
                "2",
                "--strategies",
                "pbt,asha",
                "--storage",
                str(tmp_path),
                "--dry-run",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "compare: 4 studies under the same budget (budget.trial_epochs=16 each)" in out
    for name in ("pbt-tiny-bart-builtin-seed0", "asha-tiny-bart-builtin-seed1"):
        assert name in out
    assert run.main(["compare", "--strategies", "pbt,bayesopt", "--storage", str(tmp_path)]) == 2
    assert "--strategies 'pbt,bayesopt'" in capsys.readouterr().err


def test_unknown_region_and_vm_size_are_rejected_before_ray(tmp_path, capsys):
    assert run.main(["pbt", "--storage", str(tmp_path), "--set", "energy.region=marsnorth"]) == 2
    assert "energy.region='marsnorth'" in capsys.readouterr().err
    assert run.main(["pbt", "--storage", str(tmp_path), "--set", "energy.vm_size=Standard_Z9"]) == 2
    assert "energy.vm_size" in capsys.readouterr().err


def test_hourly_intensity_file_is_checked_before_ray(tmp_path, capsys):
    import time
    from datetime import datetime, timezone

    import ray

    header = (
        "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity "
        "gCO₂eq/kWh (LCA)\n"
    )
    stale = tmp_path / "DE_2023.csv"
    stale.write_text(header + "2023-01-01 00:00:00,DE,300,400\n")
    hour = datetime.fromtimestamp(time.time() // 3600 * 3600, timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S"
    )
    current = tmp_path / "DE_now.csv"
    current.write_text(header + f"{hour},DE,300,400\n")
    cases = [
        (
            [f"energy.intensity_csv={tmp_path / 'missing.csv'}"],
            "energy.intensity_csv=",
            "cannot read it",
        ),
        (
            [f"energy.intensity_csv={stale}"],
            "when the study starts",
            "export the hours the study runs in",
        ),
        (
            [f"energy.intensity_csv={current}", "energy.intensity_basis=marginal"],
            "energy.intensity_basis='marginal'",
            "use 'lca' or 'direct'",
        ),
        (
            [f"energy.intensity_csv={current}", "energy.intensity_g_per_kwh=100"],
            "energy.intensity_csv=",
            "not both",
        ),
    ]
    for sets, needle, fix in cases:
        args = [a for s in sets for a in ("--set", s)]
        assert run.main(["grid", "--storage", str(tmp_path), *args]) == 2
        err = capsys.readouterr().err
        assert needle in err and fix in err, err
    assert not ray.is_initialized()
    # a file that covers the start hour is accepted, and the plan records it
    assert (
        run.main(
            [
                "grid",
                "--storage",
                str(tmp_path),
                "--set",
                f"energy.intensity_csv={current}",
                "--dry-run",
            ]
        )
        == 0
    )


# Every kind of bad input issue 12 listed, one row each: exit 2, one line on stderr naming the
# field, the value and the fix, no traceback or warning before it, nothing written, Ray not
# started, with and without --dry-run. Each row: a name, a function of the scratch folder that
# returns the arguments, and the fragments the line must hold (field=value, then the fix).

_SPACE = (
    "parameters:\n  lr: {domain: {type: loguniform, low: 1.0e-4, high: 1.0e-2}, grid: [1.0e-3]}\n"
)


def _space(tmp, extra: str = "", text: str | None = None, raw: bytes | None = None) -> list[str]:
    path = tmp / "inputs" / "space.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(raw if raw is not None else (text or _SPACE + extra).encode())
    return ["grid", "--set", f"search.space={path}"]


def _config(tmp, raw: bytes) -> list[str]:
    path = tmp / "inputs" / "study.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(raw)
    return ["grid", "--config", str(path)]


def _resumable(tmp, strategy: str, model: str) -> list[str]:
    study = tmp / "st" / "grid-tiny-bart-builtin-seed0"
    study.mkdir(parents=True)
    config = {"model": {"name": model}}
    (study / "metadata.json").write_text(json.dumps({"strategy": strategy, "config": config}))
    return ["grid", "--resume"]


BAD_INPUTS = [
    (
        "space value below train.* bounds",
        lambda t: _space(
            t, "  batch_size: {domain: {type: choice, values: [0, 8]}, grid: [0, 8]}\n"
        ),
        ["parameter 'batch_size'", "train.batch_size=0", "must be >= 1"],
    ),
    (
        "space optimizer name",
        lambda t: _space(
            t, "  optimizer: {domain: {type: choice, values: [adamw, sgdx]}, grid: [adamw, sgdx]}\n"
        ),
        ["train.optimizer='sgdx'", "use one of adamw, adafactor"],
    ),
    (
        "space grid point <= 0",
        lambda t: _space(
            t,
            text="parameters:\n  lr: {domain: {type: loguniform, low: 1.0e-4, high: 1.0e-2}, "
            "grid: [0.0, 1.0e-3]}\n",
        ),
        ["parameter 'lr'", "grid point 0.0", "use points inside it"],
    ),
    ("space not UTF-8", lambda t: _space(t, raw=b"parameters: \xff"), ["search.space=", "UTF-8"]),
    (
        "metric never reported",
        lambda t: ["grid", "--set", "search.metric=bleu"],
        ["search.metric='bleu'", "use one of rougeL"],
    ),  # fmt: skip
    ("lr infinite", lambda t: ["grid", "--set", "train.lr=inf"], ["train.lr='inf'", "finite"]),
    (
        "lengths beyond the model's positions",
        lambda t: ["grid", "--set", "data.max_source_tokens=100000"],
        ["data.max_source_tokens=100000", "use at most 1024"],
    ),
    (
        "config not UTF-8",
        lambda t: _config(t, b"train:\n  lr: \xff\n"),
        ["--config", "study.yaml", "save it as UTF-8"],
    ),  # fmt: skip
    (
        "--set without =",
        lambda t: ["grid", "--set", "train.lr"],
        ["--set 'train.lr'", "expected key=value"],
    ),  # fmt: skip
    (
        "--set unparsable",
        lambda t: ["grid", "--set", "train.lr=[1"],
        ["--set 'train.lr=[1'", "quote it"],
    ),  # fmt: skip
    (
        "--name too long",
        lambda t: ["grid", "--name", "n" * 300],
        ["--name 'nnnn", "300 characters", "use at most"],
    ),  # fmt: skip
    (
        "storage scheme",
        lambda t: ["grid", "--storage", "bogus://x/y"],
        ["--storage 'bogus://x/y'", "use a path, or abfss://"],
    ),  # fmt: skip
    ("storage empty", lambda t: ["grid", "--storage", ""], ["--storage ''", "give a folder"]),
    (
        "MLflow scheme",
        lambda t: ["grid", "--mlflow", "bogus://x"],
        ["--mlflow 'bogus://x'", "sqlite:///mlflow.db"],
    ),  # fmt: skip
    ("negative seed", lambda t: ["grid", "--seed", "-1"], ["seed=-1", "must be >= 0"]),
    (
        "resume as another strategy",
        lambda t: _resumable(t, "asha", "tiny-bart"),
        ["is a asha study, not grid", "resume it as asha"],
    ),  # fmt: skip
    (
        "resume with another model",
        lambda t: _resumable(t, "grid", "tiny-t5"),
        ["model.name='tiny-bart'", "ran with 'tiny-t5'", "resume with the same settings"],
    ),  # fmt: skip
    (
        "hub name while the hub is unreachable",
        lambda t: ["grid", "--set", "model.name=greentune-tests/not-a-model"],
        ["model.name='greentune-tests/not-a-model'", "unreachable", "use a preset"],
    ),
    (
        "resources the machine does not have",
        lambda t: ["grid", "--set", "resources.workers_per_trial=64"],
        ["resources.workers_per_trial=64", "the cluster has", "Lower them or add nodes"],
    ),
]


@pytest.mark.parametrize("dry_run", [False, True], ids=["run", "dry-run"])
@pytest.mark.parametrize(
    "make_args, fragments", [c[1:] for c in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS]
)
def test_every_kind_of_bad_input_is_one_line_exit_2_and_nothing_written(
    make_args, fragments, dry_run, tmp_path, capsys, monkeypatch
):
    import ray

    from trainables import hub

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the hub row: as on a machine without it
    hub.hub_reachable.cache_clear()
    args = make_args(tmp_path)
    if "--storage" not in args:
        args += ["--storage", str(tmp_path / "st")]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    try:
        code = run.main([*args, *(["--dry-run"] if dry_run else [])])
    finally:
        hub.hub_reachable.cache_clear()
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(f in lines[0] for f in fragments), lines[0]
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before
    assert not ray.is_initialized()


def test_the_study_lock_is_refused_while_held_and_taken_over_when_its_holder_is_gone(
    tmp_path, capsys
):
    import os
    from types import SimpleNamespace

    from core.config import ConfigError

    plan = SimpleNamespace(study_dir=tmp_path, name="s")  # the two fields take_lock reads
    lock = tmp_path / run.LOCK_FILE
    here = os.uname().nodename
    lock.write_text(f"pid {os.getpid()} on {here}")  # a live process: this one
    with pytest.raises(ConfigError, match=r"another greentune process is writing .*\(pid \d+ on"):
        run.take_lock(plan)
    lock.write_text(f"pid {os.getpid()} on another-machine")  # cannot tell: refused
    with pytest.raises(ConfigError, match="another-machine"):
        run.take_lock(plan)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    lock.write_text(f"pid {gone.pid} on {here}")  # killed (SIGKILL leaves its lock behind)
    assert run.take_lock(plan) == lock
    assert lock.read_text() == f"pid {os.getpid()} on {here}"
    assert "taking it over" in capsys.readouterr().out
