"""The report CLI: files written, bad input exits 2, and the HTML opened in headless Chromium."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from analysis_fixtures import (
    ASHA_TOTAL_J,
    GRID_CLUSTER,
    asha_rows,
    cluster_energy,
    grid_rows,
    held_out,
    report_row,
    write_realistic_studies,
    write_study,
)

from analysis.load import load_studies
from analysis.report import OUTPUTS, benchmark_table, main
from analysis.summary import strategy_summary
from core.schema import STRATEGY

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
BENCH_HEADER = "| Model | Performance | Speed | Resource Usage | Carbon Emission | Cost ($) |"


@pytest.fixture(scope="module")
def study_dirs(tmp_path_factory):
    return [str(p) for p in write_realistic_studies(tmp_path_factory.mktemp("studies"))]


@pytest.mark.timeout(120)
def test_cli_writes_all_files(study_dirs, tmp_path, capsys):
    out = tmp_path / "report"
    rc = main(
        [
            *study_dirs,
            "--out",
            str(out),
            "--what-if-intensity",
            "278.6",
            "--what-if-label",
            "northeurope",
        ]
    )
    assert rc == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(out / name) for name in OUTPUTS]
    assert all((out / name).stat().st_size > 0 for name in OUTPUTS)
    summary = pd.read_parquet(out / "summary.parquet")
    assert list(summary[STRATEGY]) == ["grid", "random", "asha", "pbt"]
    assert list(pd.read_csv(out / "summary.csv")[STRATEGY]) == ["grid", "random", "asha", "pbt"]
    md = (out / "report.md").read_text()
    assert BENCH_HEADER in md
    assert "PARTIAL" in md and "pbt-tiny-bart-builtin-seed2" in md  # the running study is marked
    assert "Counterfactual CO2" in md and "northeurope" in md
    assert "Ratio to grid" in md
    html = (out / "report.html").read_text()
    assert "RUNNING (partial)" in html and "<th>Carbon Emission</th>" in html


@pytest.mark.timeout(60)
def test_benchmark_table_is_filled_from_the_results(tmp_path):
    # Whole cluster (GPU counter, CPU and RAM estimated), by hand:
    #   grid seed 0: 7200 J, 0.0008 kg, $0.50; grid seed 1: 21000 J, 0.00233 kg, $0.70
    #   asha seed 0: one node 3000 + 1800 + 600 = 5400 J, 0.0006 kg, $0.30
    asha_cluster = {
        **cluster_energy([{"gpu_j": 3000, "cpu_j": 1800, "ram_j": 600}], ASHA_TOTAL_J),
        "co2_kg": 0.0006,
    }
    grid_meta = [
        {
            "cluster_energy": {**GRID_CLUSTER[0], "co2_kg": 0.0008},
            "cost": {"billed_usd": 0.5},
            "test": held_out(0.30, 0.29, 0.31),
        },
        {
            "cluster_energy": {**GRID_CLUSTER[1], "co2_kg": 0.0023333},
            "cost": {"billed_usd": 0.7},
            "test": held_out(0.32, 0.31, 0.33),
        },
    ]
    paths = [
        write_study(tmp_path, "grid", 0, grid_rows(1.0), wall_s=400, metadata=grid_meta[0]),
        write_study(tmp_path, "grid", 1, grid_rows(3.0), wall_s=600, metadata=grid_meta[1]),
        write_study(
            tmp_path,
            "asha",
            0,
            asha_rows(),
            {"c": "scheduler_stopped"},
            wall_s=250,
            metadata={
                "cluster_energy": asha_cluster,
                "cost": {"billed_usd": 0.3},
                "test": held_out(0.335, 0.325, 0.345),
            },
        ),
    ]
    table = benchmark_table(strategy_summary(load_studies(paths)))  # target: 0.35 - 0.01
    assert list(table.columns) == [
        "Model",
        "Performance",
        "Speed",
        "Resource Usage",
        "Carbon Emission",
        "Cost ($)",
    ]
    grid, asha = table.iloc[0].to_dict(), table.iloc[1].to_dict()
    # grid: whole cluster (7200 + 21000) / 2 = 14100 J = 0.00392 kWh; its own meters
    # (4375 + 13125 J) / 2 = 0.00243 kWh; test ROUGE-L (0.30 + 0.32) / 2 with the bootstrap
    # interval of the mean over its 2 seeds: [0.30, 0.32]; billed (0.5 + 0.7) / 2
    assert grid == {
        "Model": "tiny-bart · grid (2 seeds)",
        "Performance": "test ROUGE-L 0.3100 [0.3000 – 0.3200] (R-1 0.3600, R-2 0.2100, R-Lsum "
        "0.3200); "
        "validation best 0.3500",
        "Speed": "wall 0.139 h; target in 0.0833 h (2/2 seeds)",
        # estimated parts span +-50 %: cluster (5000 + 2200 x [0.5, 1.5] and 15000 + 6000 x [0.5,
        # 1.5]) / 2 = 12050-16150 J; trials' own 875 J of 4375 estimated per unit of seed energy
        "Resource Usage": "whole cluster 0.00392 kWh (CPU, RAM estimated) (range 0.00335 – "
        "0.00449); "
        "trials' own 0.00243 kWh (range 0.00219 – 0.00267) (80% measured); "
        "0.0194 device-h; 4.00 trial-epochs",
        "Carbon Emission": "whole cluster 0.00157 kg CO2e (0.00345 lb); trials' own 0.000972 kg",
        "Cost ($)": "billed $0.60; trials' share $0.06",
    }
    # asha: one seed, so its interval is over the test examples; 5400 J = 0.38x grid's whole
    # cluster, 2500 J = 0.29x its trials' own; CO2 0.0006 / 0.0015667 = 0.38x; billed 0.5x
    assert asha == {
        "Model": "tiny-bart · asha (1 seed)",
        "Performance": "test ROUGE-L 0.3350 [0.3250 – 0.3450] (1.08× grid) (R-1 0.3850, R-2 "
        "0.2350, "
        "R-Lsum 0.3450); validation best 0.3450",
        "Speed": "wall 0.0694 h; target in 0.0611 h (1/1 seeds) (0.73× grid)",
        # 3000 + 2400 x [0.5, 1.5] = 4200-6600 J; trials' own 2000 measured + 500 x [0.5, 1.5] J
        "Resource Usage": "whole cluster 0.00150 kWh (CPU, RAM estimated) (range 0.00117 – "
        "0.00183) "
        "(0.38× grid); trials' own 0.000694 kWh (range 0.000625 – 0.000764) (0.29× grid) "
        "(80% measured); 0.00556 device-h; 3.00 trial-epochs",
        "Carbon Emission": "whole cluster 0.000600 kg CO2e (0.00132 lb) (0.38× grid); trials' own "
        "0.000278 kg (0.29× grid)",
        "Cost ($)": "billed $0.30 (0.50× grid); trials' share $0.02 (0.29× grid)",
    }


@pytest.mark.timeout(60)
def test_cli_target_and_not_applicable_cost(tmp_path, capsys):
    rows = [report_row("a", 10, 0.2, 100, 10, 1, iteration=1, cost=False)]
    study = write_study(tmp_path, "random", 0, rows)
    assert main([str(study), "--out", str(tmp_path / "r"), "--target-rougeL", "0.15"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "Target ROUGE-L = 0.1500 (given with --target-rougeL)" in md
    assert "not applicable" in md and "ratios to grid are not available" in md
    html = (tmp_path / "r" / "report.html").read_text()
    assert "Skipped: cost is not applicable" in html


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "args, message",
    [
        (["{tmp}/nowhere"], "not a folder"),
        (["{tmp}"], "not a study folder"),
        (["{study}", "--target-rougeL", "35"], "give a value in [0, 1]"),
        (["{study}", "--what-if-intensity", "-1"], "gCO2e/kWh >= 0"),
        (["{study}", "--what-if-label", "x"], "needs --what-if-intensity"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    study = write_study(tmp_path / "s", "grid", 0, [report_row("a", 1, 0.1, 1, 1, 1, iteration=1)])
    argv = [a.format(tmp=tmp_path, study=study) for a in args] + ["--out", str(tmp_path / "out")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "out").exists()


@pytest.mark.timeout(60)
def test_cli_as_a_process_mixed_datasets_and_help(tmp_path):
    a = write_study(
        tmp_path, "grid", 0, [report_row("a", 1, 0.1, 1, 1, 1, iteration=1)], dataset="xsum"
    )
    b = write_study(
        tmp_path, "asha", 0, [report_row("a", 1, 0.1, 1, 1, 1, iteration=1)], dataset="samsum"
    )
    run = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(a), str(b)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "studies differ in data.dataset" in run.stderr
    help_ = subprocess.run(
        [sys.executable, "-m", "analysis.report", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert help_.returncode == 0
    for flag in ("STUDY_DIR", "--out", "--target-rougeL", "--what-if-intensity", "--what-if-label"):
        assert flag in help_.stdout


# --------------------------------------------------------------------------------------------
# Headless Chromium

_PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).length;
  document.body.setAttribute('data-probe', JSON.stringify(
    {imgs: imgs.length, bad: bad, height: document.documentElement.scrollHeight}));
});
</script>"""


def _chromium(tmp: Path, *args: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp / 'chromium-profile'}", "--enable-logging=stderr", "--v=0",
    ]  # fmt: skip
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=90)


def _console_problems(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


@pytest.mark.timeout(120)
@pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} not installed (apt-get install -y chromium)"
)
def test_html_opens_in_headless_chromium(study_dirs, tmp_path):
    out = tmp_path / "report"
    assert main([*study_dirs, "--out", str(out)]) == 0
    # Opened from a copy: self-contained, nothing but the one file
    copied = tmp_path / "copied"
    copied.mkdir()
    shutil.copy(out / "report.html", copied / "report.html")
    html = (copied / "report.html").read_text()
    assert "<script" not in html and not re.search(r"""(src|href)=['"](?!data:)""", html)

    # every <img> carries a non-empty base64 PNG
    sources = re.findall(r"<img [^>]*src='data:image/png;base64,([^']*)'", html)
    plots = html.count("<div class='plot'>")
    assert plots >= 6 and len(sources) == html.count("<img ") == plots
    assert all(base64.b64decode(s, validate=True).startswith(b"\x89PNG") for s in sources)

    # the browser loads it, decodes every image, logs nothing to the console
    (copied / "probe.html").write_text(html.replace("</body>", _PROBE + "</body>"))
    dom = _chromium(
        tmp_path, "--window-size=1280,4000", "--dump-dom", (copied / "probe.html").as_uri()
    )
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert "<h1>greentune: 4 strategies on builtin" in dom.stdout
    probe = re.search(r'data-probe="([^"]*)"', dom.stdout)
    assert probe, "the load event never fired"
    state = json.loads(probe.group(1).replace("&quot;", '"'))
    assert state["imgs"] == plots and state["bad"] == 0
    assert _console_problems(dom.stderr) == []

    # full-page screenshot of the copied report, at the page's own height
    height = min(max(int(state["height"]), 800), 16000)
    png = tmp_path / "report.png"
    shot = _chromium(
        tmp_path,
        f"--screenshot={png}",
        f"--window-size=1280,{height}",
        (copied / "report.html").as_uri(),
    )
    assert shot.returncode == 0, shot.stderr[-2000:]
    assert _console_problems(shot.stderr) == []
    assert png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 50_000
    print(f"screenshot: {png} (1280 x {height})")


@pytest.mark.timeout(60)
def test_mismatched_studies_are_refused_unless_allowed_and_then_flagged(tmp_path, capsys):
    rows = [report_row("a", 1, 0.1, 1, 1, 1, iteration=1)]
    small = write_study(
        tmp_path,
        "grid",
        0,
        rows,
        metadata={
            "config": {
                "model": {"name": "tiny-bart"},
                "data": {"dataset": "builtin", "n_train": 256},
                "search": {"metric": "rougeL", "mode": "max"},
            }
        },
    )
    large = write_study(
        tmp_path,
        "pbt",
        0,
        rows,
        metadata={
            "config": {
                "model": {"name": "tiny-bart"},
                "data": {"dataset": "builtin", "n_train": 2000},
                "search": {"metric": "rougeL", "mode": "max"},
            }
        },
    )
    assert main([str(small), str(large), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "data.n_train" in err and "256" in err and "2000" in err and "--allow-mismatch" in err
    assert not (tmp_path / "r").exists()
    assert main([str(small), str(large), "--out", str(tmp_path / "r"), "--allow-mismatch"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert md.splitlines()[2].startswith("> **MISMATCHED COMPARISON (--allow-mismatch)")
    assert "data.n_train" in md.splitlines()[2]
    assert "## Verdict" in md
