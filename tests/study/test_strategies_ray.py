"""Random search and every strategy beyond grid, ASHA and PBT (tested on their own in
test_study_ray.py) on the embedded default, end to end: one `compare` over a real local Ray, as
a user runs it (tiny data, 4 trial-epochs each).

What each study must show: it ran without errors and spent the same budget as the others;
Hyperband and BOHB ran Ray's brackets; BOHB's configurations reached the trials as Python numbers
inside the space; PB2 exploited by greentune's rule; MO-ASHA's every rung decision is the one its
rule gives on what the rung had recorded; Optuna's multi-objective study optimised both
objectives; the report holds every strategy's front and hypervolume.
"""

import pickle
from pathlib import Path

import pandas as pd
import pytest

from core import schema
from study.mo_asha import continues
from tests.conftest import LR_BATCH_SPACE, TINY_STUDY, run_study

pytestmark = [pytest.mark.ray, pytest.mark.timeout(900)]

NEW = [
    "random",
    "hyperband",
    "bohb",
    "pb2",
    "optuna",
    "optuna-asha",
    "optuna-gp",
    "optuna-mo",
    "mo-asha",
]
SPACE = LR_BATCH_SPACE


@pytest.fixture(scope="module")
def compared(tmp_path_factory):
    root = tmp_path_factory.mktemp("strategies")
    (root / "space.yaml").write_text(SPACE)
    proc = run_study(
        "compare",
        "--strategies",
        ",".join(NEW),
        *TINY_STUDY,
        "--set",
        "train.evals_per_epoch=2",
        "--set",  # two slots on two cores: four half-CPU slots start four trial processes at
        "resources.cpus_per_worker=1",  # once for two trials' budget (module 339 s -> 234 s)
        "--set",
        f"search.space={root / 'space.yaml'}",
        "--set",
        "budget.trial_epochs=4",
        "--storage",
        str(root / "results"),
        cwd=root,
        timeout=800,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    # the console stays quiet: PB2's Gaussian process fits warn on nearly every fit without it
    assert "ConvergenceWarning" not in proc.stderr, proc.stderr[-3000:]
    return root / "results"


def study(results: Path, strategy: str) -> Path:
    return results / f"{strategy}-tiny-bart-builtin-seed0"


def tables(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    import json

    return (
        pd.read_parquet(folder / schema.REPORTS_FILE),
        pd.read_parquet(folder / schema.TRIALS_FILE),
        json.loads((folder / schema.METADATA_FILE).read_text()),
    )


@pytest.mark.parametrize("strategy", NEW)
def test_each_strategy_spends_the_same_budget_without_errors(compared, strategy):
    reports, trials, meta = tables(study(compared, strategy))
    assert meta["strategy"] == strategy and meta["derived"]["strategy"] == strategy
    assert schema.STOP_ERROR not in set(trials[schema.STOP_REASON])
    spent = reports.groupby(schema.TRIAL_ID)[schema.TRIAL_EPOCHS].max().sum()
    bound = meta["concurrent_trials"] / 2  # one report interval (half an epoch) per slot
    if strategy == "pb2":
        # a fixed population (budget / epochs = 2) for the full horizon, like pbt: a member
        # that clones a finished donor takes its progress, so it may spend less than the budget
        assert meta["derived"]["pbt_population"] == len(trials) == 2 and spent <= 4
    else:  # samplers start trials until the budget is spent: no trial count
        assert 4 <= spent <= 4 + bound
        assert meta["derived"].get("num_trials") is None
        assert meta["stopped_on_budget"].startswith("budget.trial_epochs: spent")
    assert meta["budget"]["spent"] == pytest.approx(spent)
    assert (study(compared, strategy) / schema.BEST_MODEL_DIR).is_dir()
    lr, batch = trials["config/lr"], trials["config/batch_size"]
    assert lr.between(1e-4, 3e-2).all() and set(batch) <= {8, 16}


def test_hyperband_and_bohb_run_rays_brackets(compared):
    for strategy in ("hyperband", "bohb"):
        meta = tables(study(compared, strategy))[2]
        assert meta["derived"]["hyperband_brackets"] == [[2, 4], [3, 1]]
    trials = tables(study(compared, "bohb"))[1]
    # ConfigSpace hands numpy scalars; the trials got Python numbers (parquet keeps int64)
    assert str(trials["config/batch_size"].dtype) == "int64"


def test_pb2_exploits_by_greentunes_rule(compared):
    folder = study(compared, "pb2")
    decisions = pd.read_parquet(folder / schema.PBT_DECISIONS_FILE)
    assert len(decisions) >= 1
    exploited = decisions.dropna(subset=["donor"])
    # a donor ranks strictly above the trial it replaces (greentune's rule; PB2 only explores)
    assert (exploited["donor"] != exploited[schema.TRIAL_ID]).all()


def test_mo_asha_decisions_replay_from_what_each_rung_recorded(compared):
    decisions = pd.read_parquet(study(compared, "mo-asha") / schema.RUNG_DECISIONS_FILE)
    assert len(decisions) >= 2 and {"rougeL", schema.ENERGY_TOTAL_J} <= set(decisions.columns)
    recorded: dict[int, dict[str, tuple[float, float]]] = {}
    for row in decisions.itertuples(index=False):
        rung = recorded.setdefault(row.rung, {})
        rung[row.trial_id] = (-row.rougeL, getattr(row, schema.ENERGY_TOTAL_J))
        assert continues(rung, row.trial_id, 3) == row.continues
        assert row.at_rung == len(rung)


def test_optuna_mo_optimises_rouge_and_energy(compared):
    (state,) = study(compared, "optuna-mo").glob("searcher-state-*.pkl")
    optuna_study = pickle.loads(state.read_bytes())["_ot_study"]
    assert [d.name for d in optuna_study.directions] == ["MAXIMIZE", "MINIMIZE"]
    complete = [t for t in optuna_study.trials if t.state.name == "COMPLETE"]
    assert complete and all(len(t.values) == 2 for t in complete)


def test_the_report_compares_every_strategys_front(compared):
    (group,) = compared.glob("compare-*")
    report = (group / "report.md").read_text()
    section = report.split("## Hypervolume of each strategy's ROUGE-energy front", 1)[1]
    table = section.split("\n## ", 1)[0]
    for strategy in NEW:
        assert f"| {strategy} | 1 |" in table
    assert "trial's share of the whole cluster" in table
