"""Loading study folders, and every bad input named with its path."""

from __future__ import annotations

import json

import pytest
from analysis_fixtures import report_row, write_study

from analysis.load import StudyLoadError, load_studies, load_study, mismatches
from core.schema import METADATA_FILE, REPORTS_FILE, STATUS, STUDY_ELAPSED_S, TRIAL_ID, TRIALS_FILE

pytestmark = pytest.mark.timeout(60)


def _rows():
    return [
        report_row("b", 150, 0.25, 500, 100, 25, iteration=1),
        report_row("a", 100, 0.20, 1000, 200, 50, iteration=1),
        report_row("a", 200, 0.30, 2000, 400, 100, iteration=2),
    ]


def test_load_study_reads_all_three_files(tmp_path):
    path = write_study(tmp_path, "grid", 3, _rows())
    s = load_study(path)
    assert (s.name, s.strategy, s.seed, s.running) == (
        "grid-tiny-bart-builtin-seed3",
        "grid",
        3,
        False,
    )
    assert (
        s.dataset == "builtin"
        and s.metric == "rougeL"
        and s.mode == "max"
        and s.model == "tiny-bart"
    )
    assert list(s.reports[STUDY_ELAPSED_S]) == [100, 150, 200]  # sorted by study time
    assert sorted(s.trials[TRIAL_ID]) == ["a", "b"]
    assert s.wall_s == 200


def test_running_study_loads_partial_without_trials_table(tmp_path):
    path = write_study(tmp_path, "pbt", 0, _rows(), running=True, write_trials=False)
    s = load_study(path)
    assert s.running
    assert sorted(s.trials[TRIAL_ID]) == ["a", "b"]
    assert set(s.trials[STATUS]) == {"RUNNING"}
    assert s.wall_s == 200  # the last report while there is no finished_at


def test_not_a_study_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StudyLoadError, match="not a study folder") as e:
        load_study(tmp_path / "empty")
    assert str(tmp_path / "empty") in str(e.value)
    with pytest.raises(StudyLoadError, match="not a folder"):
        load_study(tmp_path / "nowhere")


def test_corrupt_metadata(tmp_path):
    path = write_study(tmp_path, "grid", 0, _rows())
    (path / METADATA_FILE).write_text("{not json")
    with pytest.raises(StudyLoadError, match="corrupt JSON") as e:
        load_study(path)
    assert METADATA_FILE in str(e.value)


@pytest.mark.parametrize("name", [REPORTS_FILE, TRIALS_FILE])
def test_missing_parquet(tmp_path, name):
    path = write_study(tmp_path, "grid", 0, _rows())
    (path / name).unlink()
    with pytest.raises(StudyLoadError, match="missing") as e:
        load_study(path)
    assert str(path / name) in str(e.value)


@pytest.mark.parametrize("name", [REPORTS_FILE, TRIALS_FILE])
def test_corrupt_parquet(tmp_path, name):
    path = write_study(tmp_path, "grid", 0, _rows())
    (path / name).write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(StudyLoadError, match="corrupt or unreadable parquet") as e:
        load_study(path)
    assert str(path / name) in str(e.value)


def test_mixed_datasets_cannot_be_compared(tmp_path):
    a = write_study(tmp_path, "grid", 0, _rows(), dataset="xsum")
    b = write_study(tmp_path, "asha", 0, _rows(), dataset="samsum")
    with pytest.raises(StudyLoadError, match=r"studies differ in data.dataset \(") as e:
        load_studies([a, b])
    assert (
        "xsum" in str(e.value) and "samsum" in str(e.value) and "--allow-mismatch" in str(e.value)
    )
    assert [m.field for m in mismatches(load_studies([a, b], allow_mismatch=True))] == [
        "data.dataset"
    ]


def test_mixed_metrics_cannot_be_compared(tmp_path):
    a = write_study(tmp_path, "grid", 0, _rows(), metric="rougeL")
    b = write_study(tmp_path, "asha", 0, _rows(), metric="rouge2")
    with pytest.raises(StudyLoadError, match="studies differ in search.metric"):
        load_studies([a, b])


def test_same_study_twice_and_no_study(tmp_path):
    a = write_study(tmp_path, "grid", 0, _rows())
    with pytest.raises(StudyLoadError, match="pass each study once"):
        load_studies([a, a])
    with pytest.raises(StudyLoadError, match="no study folders"):
        load_studies([])


def test_metadata_without_strategy(tmp_path):
    path = write_study(tmp_path, "grid", 0, _rows())
    meta = json.loads((path / METADATA_FILE).read_text())
    del meta["strategy"]
    (path / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(StudyLoadError, match="missing 'strategy'"):
        load_study(path)
