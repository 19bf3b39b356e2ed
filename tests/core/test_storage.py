"""Files on a study's storage through pyarrow.fs: atomic writes and the URI mirror of a study's
results (a file:// URI stands in for abfss://; both go through pyarrow.fs.FileSystem.from_uri)."""

import pytest

from core import schema
from core.storage import Mirror, read_bytes, write_bytes


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    target = (tmp_path / "remote" / "s" / "x.bin").as_uri()
    write_bytes(target, b"first")
    write_bytes(target, b"second")
    assert read_bytes(target) == b"second"
    assert [p.name for p in (tmp_path / "remote" / "s").iterdir()] == ["x.bin"]
    assert read_bytes((tmp_path / "nothing").as_uri()) is None


def test_mirror_copies_the_results_to_the_uri_and_brings_them_back(tmp_path):
    head, remote = tmp_path / "head" / "s", (tmp_path / "remote" / "s").as_uri()
    head.mkdir(parents=True)
    (head / schema.METADATA_FILE).write_text('{"study": "s"}')
    (head / schema.REPORTS_FILE).write_bytes(b"PAR1 rows")
    mirror = Mirror(head, remote)
    mirror.push(schema.METADATA_FILE, schema.REPORTS_FILE, schema.TRIALS_FILE)  # no trials yet
    copied = tmp_path / "remote" / "s"
    assert sorted(p.name for p in copied.iterdir()) == [schema.METADATA_FILE, schema.REPORTS_FILE]
    assert (copied / schema.REPORTS_FILE).read_bytes() == b"PAR1 rows"

    # a new head: nothing local; pull fetches what the URI has, and only what is missing
    new_head = tmp_path / "new-head" / "s"
    (new_head).mkdir(parents=True)
    (new_head / schema.REPORTS_FILE).write_bytes(b"newer, local")
    fetched = Mirror(new_head, remote).pull(schema.RESULT_FILES)
    assert fetched == [schema.METADATA_FILE]
    assert (new_head / schema.METADATA_FILE).read_text() == '{"study": "s"}'
    assert (new_head / schema.REPORTS_FILE).read_bytes() == b"newer, local"


def test_a_local_study_has_no_mirror(tmp_path):
    (tmp_path / schema.METADATA_FILE).write_text("{}")
    mirror = Mirror(tmp_path)
    mirror.push(schema.METADATA_FILE)
    assert mirror.pull(schema.RESULT_FILES) == []
    assert [p.name for p in tmp_path.iterdir()] == [schema.METADATA_FILE]


def test_a_failed_copy_warns_and_leaves_the_uri_as_it_was(tmp_path):
    head = tmp_path / "head"
    head.mkdir()
    (head / schema.METADATA_FILE).write_text("new")
    remote = tmp_path / "remote"
    (remote / schema.METADATA_FILE).mkdir(parents=True)  # the move onto it must fail
    (remote / schema.METADATA_FILE / "kept").write_text("old")
    with pytest.warns(RuntimeWarning, match="could not copy metadata.json"):
        Mirror(head, remote.as_uri()).push(schema.METADATA_FILE)
    assert [p.name for p in remote.iterdir()] == [schema.METADATA_FILE]  # no temporary left
    assert (remote / schema.METADATA_FILE / "kept").read_text() == "old"
    assert (head / schema.METADATA_FILE).read_text() == "new"
