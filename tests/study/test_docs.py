"""The README's table of strategies and --help say what core/strategies.py holds."""

from pathlib import Path

from core.strategies import CATALOGUE
from study.run import build_parser

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_table_lists_every_strategy_as_the_catalogue_has_it():
    rows = [line for line in README.splitlines() if line.startswith("| ") and " | " in line]
    for s in CATALOGUE.values():
        needs = ", ".join(pip for _, pip in s.packages) or "-"
        assert f"| {s.name} | {s.title} | {s.budget} | {needs} |" in rows, s.name


def test_help_lists_every_strategy_and_its_package_hint():
    text = build_parser().format_help()
    for s in CATALOGUE.values():
        line = next(line for line in text.splitlines() if line.startswith(f"  {s.name} "))
        assert s.title in line
        assert ("greentune[strategies]" in line) == bool(s.packages)
