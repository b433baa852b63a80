"""A synthetic chain for the engine benchmarks: one warehouse snapshot of stores × skus.

Shared by ``bench_replay.py --memory`` and ``bench_assess.py`` (the live engine's pairs
are mostly seen only in snapshots, like these).
"""

from __future__ import annotations

from datetime import UTC, datetime

from app.domain.engine import Engine
from app.domain.model import SnapshotRow

AS_OF = datetime(2026, 11, 1, 4, tzinfo=UTC)


def catalogue(skus: int, digits: int = 5) -> dict[str, str | None]:
    """sku → category: ``SKU-00000`` … in 20 categories (``c0`` … ``c19``)."""
    return {f"SKU-{i:0{digits}d}": f"c{i % 20}" for i in range(skus)}


def fill(engine: Engine, stores: int, skus: list[str]) -> None:
    """Feed ``engine`` one snapshot at ``AS_OF`` of every store ``S0000`` … × ``skus``."""
    for n in range(stores):
        store = f"S{n:04d}"
        engine.observe_snapshot(
            AS_OF,
            [SnapshotRow(store, s, 10 + i % 7, i % 3, 0, AS_OF) for i, s in enumerate(skus)],
        )
