"""Named SQL blocks loaded once from the ``.sql`` file beside each repository.

A block starts with a line ``-- name: some_query`` and runs to the next such line.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
SQL_DIR = Path(__file__).parent / "sql"


@cache
def load(filename: str) -> dict[str, str]:
    """All named blocks of ``app/db/sql/<filename>``."""
    text = (SQL_DIR / filename).read_text(encoding="utf-8")
    parts = _NAME.split(text)
    blocks: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in blocks:
            raise ValueError(f"{filename}: query {name!r} defined twice")
        blocks[name] = body.strip()
    return blocks


class Queries:
    """Attribute access to one file's blocks: ``Q = Queries("feeds.sql"); Q.get_feed``."""

    def __init__(self, filename: str) -> None:
        self._blocks = load(filename)
        self._filename = filename

    def __getattr__(self, name: str) -> str:
        try:
            return self._blocks[name]
        except KeyError:
            raise AttributeError(f"{self._filename} has no query {name!r}") from None
