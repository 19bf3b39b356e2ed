"""metadata.json's one typed reader and writer (core.metadata)."""

import json

import pytest

from core.metadata import MetadataError, StudyMetadata, read_metadata, write_metadata
from core.schema import METADATA_FILE


def test_round_trip_keeps_every_field_and_keys_this_version_does_not_know(tmp_path):
    meta = StudyMetadata(study="grid-1", strategy="grid", seed=3, config={"seed": 3})
    meta.runs.append({"started_at": 1.0, "finished_at": 2.0})
    on_disk = {**meta.to_dict(), "from_a_newer_greentune": {"x": 1}}
    (tmp_path / METADATA_FILE).write_text(json.dumps(on_disk))
    read = read_metadata(tmp_path)
    assert read.seed == 3 and read.runs == [{"started_at": 1.0, "finished_at": 2.0}]
    assert read.extra == {"from_a_newer_greentune": {"x": 1}}
    write_metadata(tmp_path / "copy", read)  # a resume by this version writes it back whole
    assert json.loads((tmp_path / "copy" / METADATA_FILE).read_text()) == on_disk
    assert [p.name for p in (tmp_path / "copy").iterdir()] == [METADATA_FILE]  # no temp left


def test_an_older_or_running_study_reads_with_its_missing_fields_empty(tmp_path):
    (tmp_path / METADATA_FILE).write_text(json.dumps({"study": "s", "strategy": "pbt"}))
    meta = read_metadata(tmp_path)
    assert meta.running and meta.seed is None and meta.test is None
    assert meta.section("test") == {} and meta.section("config") == {}
    meta.cluster_energy = "hand-edited"  # not an object: readers see an empty section
    assert meta.section("cluster_energy") == {}


@pytest.mark.parametrize("text, says", [("{not json", "corrupt JSON"), ("[1]", "got list")])
def test_a_corrupt_file_names_itself_and_the_fault(tmp_path, text, says):
    (tmp_path / METADATA_FILE).write_text(text)
    with pytest.raises(MetadataError, match=says) as raised:
        read_metadata(tmp_path)
    assert str(tmp_path / METADATA_FILE) in str(raised.value)
