"""The report on a real study: a tiny grid study on a real local Ray, then the report CLI on it
(each in its own process, as a user runs them)."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys

import pandas as pd
import pytest

from study import schema
from tests.conftest import REPO, TINY_STUDY, TWO_LR_SPACE, run_study

pytestmark = [pytest.mark.ray, pytest.mark.timeout(600)]


def test_report_on_a_real_grid_study(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(TWO_LR_SPACE)
    proc = run_study(
        "grid",
        "--name",
        "g",
        "--storage",
        str(tmp_path / "results"),
        *TINY_STUDY,
        "--set",
        f"search.space={space}",
        cwd=tmp_path,
        timeout=480,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    study_dir = tmp_path / "results" / "g"
    reports = pd.read_parquet(study_dir / schema.REPORTS_FILE)
    meta = json.loads((study_dir / schema.METADATA_FILE).read_text())

    out = tmp_path / "report"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    report = subprocess.run(
        [sys.executable, "-m", "analysis.report", str(study_dir), "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert report.returncode == 0, report.stderr[-3000:]
    for name in ("report.html", "report.md", "summary.parquet", "summary.csv"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
        assert str(out / name) in report.stdout

    summary = pd.read_parquet(out / "summary.parquet")
    assert list(summary["strategy"]) == ["grid"]
    (row,) = summary.to_dict("records")
    assert row["n_seeds"] == 1 and row["trials_started_mean"] == 2
    assert row["best_rougeL_mean"] == reports[schema.ROUGEL].max()
    assert list(pd.read_csv(out / "summary.csv")["strategy"]) == ["grid"]

    # the HTML is self-contained: every plot an embedded PNG
    html = (out / "report.html").read_text()
    images = re.findall(r"<img [^>]*src='data:image/png;base64,([^']*)'", html)
    assert len(images) >= 5 and len(images) == html.count("<img ")
    assert all(base64.b64decode(png, validate=True).startswith(b"\x89PNG") for png in images)

    # the whole-cluster energy the study recorded is in the energy section, labelled
    md = (out / "report.md").read_text()
    assert "## Energy: whole cluster vs the trials' own meters" in md
    if (meta.get("cluster_energy") or {}).get("energy_j") is not None:
        assert row["cluster_metered_seeds"] == 1 and row["cluster_energy_kwh_mean"] > 0
        assert "estimated" in row["cluster_energy_basis"]  # CPU and RAM are always estimated
    # the lead-k baseline, where the study recorded one, is the floor
    if meta.get("baseline"):
        assert f"lead-{meta['baseline']['lead_k']} baseline" in md
