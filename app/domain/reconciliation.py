"""The store managers' reconciliation report: its rules, its words, its cells.

Which items need a look is decided set-wise in SQL (``app/db/sql/reports.sql``) so
the report can be sorted by priority and streamed without holding it in memory;
the thresholds and weights it uses live here (:class:`ReviewRules`), and so does
everything said to people: the reasons in plain words (:func:`reason_words`) and
spreadsheet-safe cells (:func:`cell`, CSV injection neutralised).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

import msgspec


class ReviewReason(StrEnum):
    RECORDS_DISAGREE = "records_disagree"
    BADGE_HELD_BACK = "badge_held_back"
    PHANTOM_SILENCE = "phantom_silence"
    PHANTOM_SHORT_PICKS = "phantom_short_picks"
    COUNT_OLD_FAST_SELLER = "count_old_fast_seller"


ACTIONS: tuple[str, ...] = ("check shelf and back room", "recount", "none")


class ReviewRules(msgspec.Struct, frozen=True, kw_only=True):
    """When an item needs a look, and how much fixing its record is worth.

    * ``records_disagree``: the warehouse view (its on-hand less reserved at its
      ``as_of``, plus till movements since) and the count view (the latest count plus
      till movements since) differ by at least ``disagreement_units``.
    * ``badge_held_back``: the book leaves units beyond the safety buffer, yet the badge
      makes no promise (stale data, low confidence, a silent shelf...).
    * ``phantom_silence``: units on the book, but no sale (nor count) for so long that
      ``silence_expected_sales`` sales were expected at the 28-day rate.
    * ``phantom_short_picks``: a pick came up short since the last count (within
      ``short_pick_lookback``) while the book still shows units.
    * ``count_old_fast_seller``: at least ``fast_seller_week_units`` sold in 7 days and
      no count within ``max_count_age``.

    ``priority`` = expected sales over ``horizon_days`` (the faster of the 7-day and
    28-day till rates, plus order picks of the last 7 days) x the weight of the item's strongest reason: the units of sales that
    fixing the record protects. An item whose action is ``none`` has priority 0.
    """

    disagreement_units: int = 1
    silence_expected_sales: float = 3.0
    short_pick_lookback: timedelta = timedelta(days=14)
    fast_seller_week_units: int = 7
    max_count_age: timedelta = timedelta(days=30)
    horizon_days: float = 7.0
    weight_phantom: float = 1.0
    weight_disagree: float = 0.75
    weight_old_count: float = 0.5
    weight_held_back: float = 0.25


DEFAULT_RULES = ReviewRules()


class ReviewFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the words of one report row are made from."""

    reasons: tuple[str, ...]
    book: int | None
    safety_buffer: int
    warehouse_view: int | None
    count_view: int | None
    differ_by: int | None
    sales_28d: int
    silent_since: datetime | None
    short_picks: int
    sales_7d: int
    last_count_at: datetime | None
    badge_state: str
    badge_reasons: tuple[str, ...]


def iso(value: datetime | None) -> str:
    """An ISO 8601 UTC time to the second (``2026-11-23T10:01:02Z``); empty for none."""
    if value is None:
        return ""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _day(value: datetime | None) -> str:
    return iso(value)[:10] if value is not None else "never"


def reason_words(facts: ReviewFacts, *, rules: ReviewRules = DEFAULT_RULES) -> str:
    """The row's reasons as sentences a store manager can act on."""
    words: list[str] = []
    for code in facts.reasons:
        if code == ReviewReason.RECORDS_DISAGREE:
            words.append(
                f"Warehouse and till records disagree by {abs(facts.differ_by or 0)} units: "
                f"the warehouse figure plus till movements gives {facts.warehouse_view}, "
                f"the last count plus till movements gives {facts.count_view}."
            )
        elif code == ReviewReason.BADGE_HELD_BACK:
            why = ", ".join(r.replace("_", " ") for r in facts.badge_reasons) or "no reason given"
            words.append(
                f"Badge held back ({facts.badge_state}) although the book shows {facts.book} "
                f"units, more than the safety buffer of {facts.safety_buffer} ({why})."
            )
        elif code == ReviewReason.PHANTOM_SILENCE:
            words.append(
                f"Possible phantom stock: {facts.book} units on the book but nothing sold or "
                f"counted since {_day(facts.silent_since)}, although it sold "
                f"{facts.sales_28d} in 28 days."
            )
        elif code == ReviewReason.PHANTOM_SHORT_PICKS:
            n = facts.short_picks
            words.append(
                f"Possible phantom stock: {n} order pick{'s' * (n != 1)} came up short since "
                f"the last count while the book shows {facts.book} units."
            )
        elif code == ReviewReason.COUNT_OLD_FAST_SELLER:
            days = rules.max_count_age.total_seconds() / 86400
            words.append(
                f"Fast seller ({facts.sales_7d} sold in 7 days) not counted in the last "
                f"{days:g} days (last count: {_day(facts.last_count_at)})."
            )
        else:
            words.append(code.replace("_", " ") + ".")
    return " ".join(words)


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value: str | None) -> str:
    """A text cell a spreadsheet will not run: one starting with ``= + - @``, a tab or a
    carriage return gets a leading ``'`` (OWASP's CSV injection advice)."""
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def uncell(value: str) -> str:
    """Undo :func:`cell`, so a report edited and uploaded back reads as written."""
    if value.startswith("'") and value[1:].startswith(_FORMULA_START):
        return value[1:]
    return value


# --- the CSV -------------------------------------------------------------------------

COLUMNS: tuple[str, ...] = (
    "sku",
    "name",
    "category",
    "book_on_hand",
    "warehouse_on_hand",
    "warehouse_reserved",
    "warehouse_as_of",
    "pos_movements_since",
    "last_count_qty",
    "last_count_at",
    "records_differ_by",
    "sales_last_7_days",
    "last_sale_at",
    "badge_state",
    "confidence",
    "suggested_action",
    "priority",
    "reasons",
    "reason_codes",
)

Cell = str | int | float


class RowLike(Protocol):
    """A row read by column name (an asyncpg record, a dict)."""

    def __getitem__(self, key: str, /) -> Any: ...


def _number(value: float | None, digits: int) -> Cell:
    return "" if value is None else round(float(value), digits)


def row_cells(row: RowLike, *, rules: ReviewRules = DEFAULT_RULES) -> list[Cell]:
    """One report line from one ``review_rows`` row: numbers stay numbers, times are ISO
    8601 UTC, every text cell is neutralised (:func:`cell`)."""
    codes = tuple(row["codes"])
    facts = ReviewFacts(
        reasons=codes,
        book=row["book"],
        safety_buffer=row["safety_buffer"],
        warehouse_view=row["warehouse_view"],
        count_view=row["count_view"],
        differ_by=row["differ_by"],
        sales_28d=row["sales_28d"],
        silent_since=row["silent_since"],
        short_picks=row["short_picks"],
        sales_7d=row["sales_7d"],
        last_count_at=row["last_count_at"],
        badge_state=row["badge_state"],
        badge_reasons=tuple(row["badge_reasons"] or ()),
    )
    ints = ("book", "warehouse_on_hand", "warehouse_reserved", "pos_movements_since")
    book, on_hand, reserved, moved = ("" if row[k] is None else int(row[k]) for k in ints)
    return [
        cell(row["sku"]),
        cell(row["name"]),
        cell(row["category"]),
        book,
        on_hand,
        reserved,
        iso(row["warehouse_as_of"]),
        moved,
        "" if row["last_count_qty"] is None else int(row["last_count_qty"]),
        iso(row["last_count_at"]),
        "" if row["differ_by"] is None else int(row["differ_by"]),
        int(row["sales_7d"]),
        iso(row["last_sale_at"]),
        cell(row["badge_state"]),
        _number(row["confidence"], 3),
        cell(row["suggested_action"]),
        _number(row["priority"], 2),
        cell(reason_words(facts, rules=rules)),
        cell(" ".join(codes)),
    ]
