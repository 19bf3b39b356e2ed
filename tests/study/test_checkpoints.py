"""The checkpoint janitor's decision: what no trial can still use (pure; no Ray)."""

from study.checkpoints import deletable, newest_run_per_trial


def test_only_unreachable_checkpoints_go():
    runs = {
        "r/t1-s1-a": ["r/t1-s1-a/c1", "r/t1-s1-a/c2", "r/t1-s1-a/c3"],
        "r/t2-s1-b": ["r/t2-s1-b/c1", "r/t2-s1-b/c2"],
    }
    # t1 is live (its newest stays); t2 finished, but PBT may still clone its c1
    doomed = deletable(runs, live_runs={"r/t1-s1-a"}, protected={"r/t2-s1-b/c1"})
    assert doomed == ["r/t1-s1-a/c1", "r/t1-s1-a/c2", "r/t2-s1-b/c2"]


def test_a_protected_checkpoint_is_never_deleted_even_when_old():
    runs = {"r/t1-s1-a": ["r/t1-s1-a/c1", "r/t1-s1-a/c2"]}
    assert deletable(runs, live_runs=set(), protected={"r/t1-s1-a/c1", "r/t1-s1-a/c2"}) == []


def test_newest_run_per_trial_follows_segments():
    runs = {"x/t1-s1-aa": [], "x/t1-s3-bb": [], "x/t1-s2-cc": [], "x/t2-s1-dd": []}
    assert newest_run_per_trial(runs, {"t1"}) == {"t1": "x/t1-s3-bb"}
