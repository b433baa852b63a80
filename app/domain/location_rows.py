"""A location's snapshot rows in force, column-wise (``Ledger.rows_at``).

Its own module, outside ``app.domain.NATIVE``: the row numbers it stores are shared
int objects (one per number, not per row), and compiled code would unbox each into a
machine int and box a new object when storing it: ~30 MB more for 1M rows
(``scripts/bench_replay.py --memory``, docs/engine.md "Ninth step").
"""

from __future__ import annotations

from array import array
from datetime import datetime

from app.domain.model import SnapshotRow

_ROW_NUMBERS: list[int] = []  # shared int objects for row numbers (above 256 each is an object)


def _row_number(i: int) -> int:
    if i >= len(_ROW_NUMBERS):
        _ROW_NUMBERS.extend(range(len(_ROW_NUMBERS), max(i + 1, 2 * len(_ROW_NUMBERS))))
    return _ROW_NUMBERS[i]


class LocationRows:
    """One location's snapshot rows in force, column-wise.

    The live engine holds ~1M (store, sku) rows, most never touched by an event: a
    dict entry and three machine ints per row (row numbers shared across locations)
    instead of a ``SnapshotRow`` object each. ``row`` rebuilds one when asked.
    """

    __slots__ = ("as_of", "dead", "in_transit", "index", "on_hand", "reserved")

    def __init__(self) -> None:
        self.index: dict[str, int] = {}
        self.on_hand = array("q")
        self.reserved = array("q")
        self.in_transit = array("q")
        self.as_of: list[datetime] = []
        self.dead = 0  # slots of removed rows (``remove``), until ``compact``

    def add(self, r: SnapshotRow) -> None:
        """A row; a later row for the same sku replaces the earlier one."""
        i = self.index.get(r.sku)
        at = r.as_of
        if self.as_of:  # one datetime object for the run of rows that share it
            prev = self.as_of[-1]
            if prev is not at and prev == at and prev.tzinfo is at.tzinfo:
                at = prev
        if i is None:
            self.index[r.sku] = _row_number(len(self.as_of))
            self.on_hand.append(r.on_hand)
            self.reserved.append(r.reserved)
            self.in_transit.append(r.in_transit)
            self.as_of.append(at)
        else:
            self.on_hand[i], self.reserved[i], self.in_transit[i] = (
                r.on_hand,
                r.reserved,
                r.in_transit,
            )
            self.as_of[i] = at

    def remove(self, sku: str) -> None:
        """The sku is no longer listed (its slot stays, unused, until ``compact``)."""
        if self.index.pop(sku, None) is not None:
            self.dead += 1

    def compact(self) -> None:
        """Drop the slots of removed rows when they are many (a quarter or more)."""
        if self.dead * 4 < len(self.as_of):
            return
        kept = LocationRows()
        for sku, i in self.index.items():
            kept.index[sku] = _row_number(len(kept.as_of))
            kept.on_hand.append(self.on_hand[i])
            kept.reserved.append(self.reserved[i])
            kept.in_transit.append(self.in_transit[i])
            kept.as_of.append(self.as_of[i])
        self.index, self.on_hand, self.reserved = kept.index, kept.on_hand, kept.reserved
        self.in_transit, self.as_of, self.dead = kept.in_transit, kept.as_of, 0

    def row(self, location_id: str, sku: str) -> SnapshotRow | None:
        i = self.index.get(sku)
        if i is None:
            return None
        return SnapshotRow(location_id, sku, self.on_hand[i], self.reserved[i],
                           self.in_transit[i], self.as_of[i])  # fmt: skip
