"""Studies on a real two-node Ray cluster on this machine, and the failures a cluster brings.

`ray.cluster_utils.Cluster` starts a real head (GCS + raylet) and real worker raylets as separate
processes on this machine (each node on the machine's own address), as `ray start` does on a VM;
the study joins with `--address`, exactly as on Azure. Each node offers one CPU and each Train
worker asks for one, so two trials run at once, one per node. The storage folder is shared, as
an NFS mount or a storage container is on a real cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from core import schema
from tests.conftest import REPO, TINY_STUDY, TWO_LR_SPACE

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]

ONE_CPU_PER_WORKER = ["--set", "resources.cpus_per_worker=1", "--set", "train.evals_per_epoch=2"]


@pytest.fixture
def cluster(ray_token):
    from ray.cluster_utils import Cluster

    head = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"trial_driver": 100},
            "include_dashboard": True,
        },
    )
    head.add_node(num_cpus=1)
    yield head
    head.shutdown()


def study_command(tmp_path: Path, strategy: str, name: str, address: str, *extra: str) -> list[str]:
    space = tmp_path / "space.yaml"
    space.write_text(TWO_LR_SPACE)
    return [
        sys.executable,
        "-m",
        "study.run",
        strategy,
        "--name",
        name,
        "--address",
        address,
        "--storage",
        str(tmp_path / "shared"),
        *TINY_STUDY,
        *ONE_CPU_PER_WORKER,
        "--set",
        f"search.space={space}",
        *extra,
    ]


def study_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO)}  # the cluster's token (fixture ray_token)


def load(study_dir: Path):
    return (
        pd.read_parquet(study_dir / schema.REPORTS_FILE),
        pd.read_parquet(study_dir / schema.TRIALS_FILE),
        json.loads((study_dir / schema.METADATA_FILE).read_text()),
    )


def test_pbt_on_two_nodes_clones_a_checkpoint_written_on_the_other_node(tmp_path, cluster):
    # Reports of a few seconds (512 examples), so the donor still trains while its clone restarts:
    # the clone can then only start on the node it left, the one the donor is not on.
    proc = subprocess.run(
        study_command(
            tmp_path,
            "pbt",
            "p2",
            cluster.address,
            "--set",
            "data.n_train=512",
            "--set",
            "train.epochs=4",
            "--set",
            "budget.trial_epochs=8",
            "--set",
            "search.pbt_quantile_fraction=0.5",
        ),
        cwd=tmp_path,
        env=study_env(),
        text=True,
        capture_output=True,
        timeout=800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    reports, trials, meta = load(tmp_path / "shared" / "p2")
    nodes = {n.node_id for n in cluster.list_all_nodes()}
    assert len(nodes) == 2 and set(reports[schema.NODE_ID]) == nodes  # trials trained on both nodes
    assert set(trials[schema.STATUS]) == {"TERMINATED"} and meta["derived"]["pbt_population"] == 2

    # An exploited segment's first report continues a donor checkpoint written on the other node.
    cloned = reports[
        (reports[schema.RESTORED_FROM] != "")
        & (reports[schema.RESTORED_FROM] != reports[schema.TRIAL_ID])
    ]
    firsts = (
        cloned.sort_values(schema.TIMESTAMP_S).groupby([schema.TRIAL_ID, schema.SEGMENT]).head(1)
    )
    crossed = 0
    for _, row in firsts.iterrows():
        donor = reports[
            (reports[schema.TRIAL_ID] == row[schema.RESTORED_FROM])
            & (reports[schema.TIMESTAMP_S] < row[schema.TIMESTAMP_S])
            & (reports[schema.ITERATION] == row[schema.ITERATION] - 1)
        ]
        if donor.empty:
            continue
        donor_row = donor.sort_values(schema.TIMESTAMP_S).iloc[-1]
        assert row[schema.EPOCH] == pytest.approx(
            donor_row[schema.EPOCH] + 0.5
        )  # trained on from it
        crossed += row[schema.NODE_ID] != donor_row[schema.NODE_ID]
    assert crossed >= 1, firsts[[schema.TRIAL_ID, schema.RESTORED_FROM, schema.NODE_ID]]

    # The cluster meter read both nodes for the whole study.
    cluster_energy = meta["cluster_energy"]
    assert {n["node_id"] for n in cluster_energy["nodes"]} == nodes
    assert all(n["cpu_j"] > 0 and n["ram_j"] > 0 and not n["lost"] for n in cluster_energy["nodes"])
    assert cluster_energy["energy_j"] > cluster_energy["trials_energy_j"] > 0
    assert cluster_energy["co2_kg"] > 0


def trial_process_on(study_dir: Path, node_id: str) -> int | None:
    """The process that trains a live trial on `node_id` (local path: the Tune trial's own), from
    the study's reports (they carry the node and the process)."""
    path = study_dir / schema.REPORTS_FILE
    if not path.exists():
        return None
    reports = pd.read_parquet(path)
    on_node = reports[reports[schema.NODE_ID] == node_id]
    for pid in on_node.sort_values(schema.TIMESTAMP_S, ascending=False)[schema.PROCESS_ID]:
        if psutil.pid_exists(int(pid)):
            return int(pid)
    return None


def wait_for(condition, what: str, timeout: float = 400):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"waited {timeout:.0f} s for {what}")


def test_failures_mid_study_lose_no_report(tmp_path, cluster):
    """A worker node removed as a spot eviction would (a new node replaces it), and the process
    training a trial on the head killed (an OOM kill, a crash): both trials finish, every report
    exactly once."""
    # 1024 examples: reports a few seconds apart, so both failures strike trials mid-segment.
    command = study_command(tmp_path, "grid", "f", cluster.address, "--set", "data.n_train=1024")
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=study_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    study_dir = tmp_path / "shared" / "f"
    worker_node = next(n for n in cluster.list_all_nodes() if not n.head)
    head_node = cluster.head_node

    def rows_on(node) -> pd.DataFrame:
        path = study_dir / schema.REPORTS_FILE
        reports = pd.read_parquet(path) if path.exists() else pd.DataFrame({schema.NODE_ID: []})
        return reports[reports[schema.NODE_ID] == node.node_id]

    try:
        wait_for(
            lambda: len(rows_on(worker_node)) >= 1 and len(rows_on(head_node)) >= 1,
            "a report from each node",
        )
        # Spot eviction: the worker node's processes die at once; the autoscaler brings a new one.
        cluster.remove_node(worker_node, allow_graceful=False)
        replacement = cluster.add_node(num_cpus=1)
        # The process training a trial on the head killed mid-segment (OOM killer, a crash).
        pid = wait_for(
            lambda: trial_process_on(study_dir, head_node.node_id), "a trial process on the head"
        )
        psutil.Process(pid).kill()
        out, _ = proc.communicate(timeout=800)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-3000:]

    reports, trials, meta = load(study_dir)
    assert set(trials[schema.STATUS]) == {"TERMINATED"} and len(trials) == 2
    # nothing lost, nothing twice: each trial's reports 1..4 exactly once
    per_trial = reports.groupby(schema.TRIAL_ID)[schema.ITERATION].apply(sorted)
    assert all(its == [1, 2, 3, 4] for its in per_trial), per_trial
    assert reports[schema.REPORT_ID].is_unique
    # the evicted trial moved on to the replacement node; its energy kept adding up
    assert len(rows_on(replacement)) >= 1
    assert (reports.groupby(schema.TRIAL_ID)[schema.ENERGY_TOTAL_J].diff().dropna() > 0).all()
    # restarted trials set up again mid-study: the failures really happened and were recovered
    assert (reports[schema.SEGMENT] > 1).any() and (reports[schema.SEGMENT_SETUP_S] > 0).sum() > 2

    # The evicted node's energy still counts, up to its last reading; billed until it was lost.
    by_node = {n["node_id"]: n for n in meta["cluster_energy"]["nodes"]}
    assert set(by_node) == {head_node.node_id, worker_node.node_id, replacement.node_id}
    lost = by_node[worker_node.node_id]
    assert lost["lost"] and lost["cpu_j"] > 0
    assert lost["held_s"] < by_node[head_node.node_id]["held_s"]
    # All three Ray nodes run on this one machine, and each reads the whole machine: the host
    # counts once, at the reading of the node that covered the most (not the evicted one's).
    assert meta["cluster_energy"]["hosts"] == 1
    assert meta["cluster_energy"]["energy_j"] == pytest.approx(
        sum(max(n[f"{part}_j"] or 0.0 for n in by_node.values()) for part in ("cpu", "ram"))
    )
    assert meta["cluster_energy"]["energy_j"] > lost["cpu_j"] + lost["ram_j"]


def test_joining_a_cluster_without_dashboard_fails_before_any_trial(tmp_path, ray_token):
    from ray.cluster_utils import Cluster

    bare = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 1,
            "resources": {"trial_driver": 1},
            "include_dashboard": False,
        },
    )
    try:
        proc = subprocess.run(
            study_command(tmp_path, "grid", "nodash", bare.address),
            cwd=tmp_path,
            env=study_env(),
            text=True,
            capture_output=True,
            timeout=300,
        )
    finally:
        bare.shutdown()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "runs no Ray dashboard" in proc.stderr and "--include-dashboard=true" in proc.stderr
    assert not (tmp_path / "shared" / "nodash" / schema.REPORTS_FILE).exists()
