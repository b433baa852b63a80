"""When a warehouse snapshot looks truncated: the rule the live pull and the replay share.

The contract quarantines a snapshot "that looks truncated against the previous one",
and lets a file name only some locations (the others keep their rows). So the rule
is per location: a location the file names must not lose more than ``max_drop`` of
the rows it has in force. A file cut between locations loses nothing (the unnamed ones
stay as they were, and go stale in time); one cut inside a location shows there. A
feed-wide row count would quarantine every file of a feed that sends one location
at a time.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from app.domain.model import SnapshotRow

DEFAULT_MAX_DROP = 0.5
HEADER_ONLY = "snapshot has no rows (header only)"
_SHOWN = 3


def rows_by_location(rows: Iterable[SnapshotRow]) -> dict[str, int]:
    """How many rows the snapshot lists for each location it names."""
    return dict(Counter(row.location_id for row in rows))


def truncation_problem(
    staged: Mapping[str, int], in_force: Mapping[str, int], max_drop: float
) -> str | None:
    """Why a snapshot listing ``staged`` rows per location looks truncated against the
    rows ``in_force`` per location, if it does (``None``: apply it). A location with
    nothing in force (new, or emptied) cannot have fallen."""
    if not staged:
        return HEADER_ONLY
    fallen = []
    for location, rows in staged.items():
        before = in_force.get(location, 0)
        if before > 0 and before - rows > max_drop * before:
            fallen.append((location, before, rows))
    if not fallen:
        return None
    fallen.sort(key=lambda f: (f[2] / f[1], f[0]))  # the steepest falls first
    shown = "; ".join(
        f"location {loc}: {before} -> {rows} rows ({(before - rows) / before:.0%})"
        for loc, before, rows in fallen[:_SHOWN]
    )
    more = f" and {len(fallen) - _SHOWN} more locations" if len(fallen) > _SHOWN else ""
    return (
        f"row count fell by more than the allowed {max_drop:.0%} against the rows in force: "
        f"{shown}{more}; it looks truncated"
    )
