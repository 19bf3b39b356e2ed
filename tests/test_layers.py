"""Every import points down the layers drawn in docs/architecture.md.

    core          config, schema, units and dated tables, measurements, storage, statistics
    meter         device backends (NVML, RAPL, the CPU estimate)        -> core
    search_spaces the hyperparameter space as data                      -> core
    trainables    data, models, engines, the worker loop, the driver    -> core, meter
    analysis      a study folder's parquet -> summary, plots, report    -> core
    serving       the selected model exported, served, metered          -> core, meter, trainables
    study         orchestration and the CLI                             -> everything below

No private name (`_x`) is imported from another package or read off a module of another package,
and a third party's private state is touched only in its adapter: Ray Tune's in
`study/tune_state.py`, DeepSpeed's in `trainables/deepspeed_state.py`.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ALLOWED = {
    "core": set(),
    "meter": {"core"},
    "search_spaces": {"core"},
    "trainables": {"core", "meter"},
    "analysis": {"core"},
    "serving": {"core", "meter", "trainables"},
    "study": {"core", "meter", "search_spaces", "trainables", "analysis", "serving"},
}
ADAPTERS = ("study/tune_state.py", "trainables/deepspeed_state.py")


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def layer_violations(package: str, source: str, where: str = "") -> list[str]:
    """The upward imports and cross-package private names in one module's source."""
    problems: list[str] = []
    foreign_names: set[str] = set()  # local names bound to another package's modules or objects
    own_privates = set()  # `self._x` assigned in this module: its own classes' state
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [(a.name, a.asname or a.name.split(".")[0], None) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            targets = [(node.module, a.asname or a.name, a.name) for a in node.names]
        else:
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id == "self"
                and isinstance(node.ctx, ast.Store)
            ):
                own_privates.add(node.attr)
            continue
        for module, bound, imported in targets:
            top = module.split(".")[0]
            if top not in ALLOWED or top == package:
                continue
            if top not in ALLOWED[package]:
                problems.append(f"{where}:{node.lineno}: {package} imports {module} (an arrow up)")
            if imported and _is_private(imported):
                problems.append(f"{where}:{node.lineno}: private {module}.{imported} imported")
            foreign_names.add(bound)
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and _is_private(node.attr)):
            continue
        base = node.value
        if isinstance(base, ast.Name) and base.id in foreign_names:
            problems.append(f"{where}:{node.lineno}: private {base.id}.{node.attr} read")
        elif (
            where not in ADAPTERS
            and not (isinstance(base, ast.Name) and base.id in ("self", "cls"))
            and not (isinstance(base, ast.Call) and ast.unparse(base.func) == "super")
            and node.attr not in own_privates
        ):
            problems.append(
                f"{where}:{node.lineno}: private {ast.unparse(node)} outside "
                f"{' and '.join(ADAPTERS)}"
            )
    return problems


def test_every_import_points_down():
    problems = []
    for package in ALLOWED:
        files = sorted((REPO / package).rglob("*.py"))
        assert files, f"no modules under {package}/"
        for path in files:
            where = str(path.relative_to(REPO))
            problems += layer_violations(package, path.read_text(), where)
    assert not problems, "\n".join(problems)


def test_the_check_catches_an_arrow_up_and_a_private_name():
    source = (
        "from study.run import main\n"
        "from trainables.energy import _busy\n"
        "import trainables.driver as driver\n"
        "driver._pump()\n"
        "tuner._local_tuner\n"
    )
    problems = layer_violations("core", source, "core/x.py")
    assert len(problems) == 6, problems  # 3 arrows up, 1 private import, 2 private reads
    assert layer_violations("study", "from trainables.driver import Pointer\n") == []
    assert layer_violations("study", "tuner._local_tuner\n", ADAPTERS[0]) == []
