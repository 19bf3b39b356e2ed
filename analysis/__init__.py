"""Read study folders and compare strategies: `load` (folders -> `Study`), `summary` (pure
per-strategy figures), `plots` (matplotlib figures), `report` (the `python -m analysis.report` CLI).

Importing the package loads nothing heavy; import the module you need.
"""
