"""The pure core: book position, safety buffer, badge, geo.

Nothing here does I/O or reads a clock; callers pass ``now``. An import-linter
contract (pyproject.toml) keeps drivers, clients and frameworks out.
"""
