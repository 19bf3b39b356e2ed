"""`python -m study.run`: --help, the plan, and every bad input ends with exit 2 before Ray starts."""

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


@pytest.mark.parametrize(
    "args, needle",
    [
        (["hyperband"], "invalid choice: 'hyperband'"),
        (["pbt", "--set", "train.warmup=0.1"], "train.warmup: unknown key"),
        (["pbt", "--set", "train.batch_size=big"], "train.batch_size='big': expected int"),
        (["pbt", "--set", "train.lr=0"], "train.lr=0.0: must be > 0"),
        (
            ["pbt", "--config", "/nonexistent/study.yaml"],
            "--config '/nonexistent/study.yaml': cannot read it",
        ),
        (["pbt", "--set", "train.precision=fp16"], "train.precision='fp16': needs a GPU"),
        (["pbt", "--set", "model.name=tiny-gpt"], "model.name='tiny-gpt': not a preset"),
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
    assert run.main(["compare", "--strategies", "pbt,bohb", "--storage", str(tmp_path)]) == 2
    assert "--strategies 'pbt,bohb'" in capsys.readouterr().err


def test_unknown_region_and_vm_size_are_rejected_before_ray(tmp_path, capsys):
    assert run.main(["pbt", "--storage", str(tmp_path), "--set", "energy.region=marsnorth"]) == 2
    assert "energy.region='marsnorth'" in capsys.readouterr().err
    assert run.main(["pbt", "--storage", str(tmp_path), "--set", "energy.vm_size=Standard_Z9"]) == 2
    assert "energy.vm_size" in capsys.readouterr().err


def test_hourly_intensity_file_is_checked_before_ray(tmp_path, capsys):
    import time
    from datetime import datetime, timezone

    import ray

    header = "Datetime (UTC),Zone Id,Carbon Intensity gCO₂eq/kWh (direct),Carbon Intensity gCO₂eq/kWh (LCA)\n"
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
