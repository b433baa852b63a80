"""A warehouse CSV in another shape -> contract CSV, streamed (format "csv_mapping").

The feeds file's ``[feeds.csv]`` table names the source column for each contract
column, the delimiter, the encoding, the date format (strptime; ISO 8601 when unset)
and the zone of dates without an offset, a units multiplier/divisor, and defaults
for ``reserved``/``in_transit``. ``CsvTranslator`` (pure) turns one source line into
one contract line; ``translate`` applies it to a byte stream as it arrives, so the
file is never held whole; ``pull_csv_mapping`` sends the result down the warehouse
path (ETag, staging, validation, apply or quarantine).

A source line that cannot be translated rejects the whole snapshot with
``line N: <column>: <why>`` (N is the source file's line). One record a line: a
quoted field may hold the delimiter, not a line break.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import msgspec
import structlog

from app.clock import Clock
from app.domain.model import Identifier
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.adapters.ids import IdMap, Skipped, map_pair
from reconcilers.feeds_config import CsvMapping, FeedConfig
from reconcilers.outcome import PullOutcome
from reconcilers.warehouse import EXPECTED_HEADER, SnapshotRejected, pull_warehouse

log = structlog.get_logger(__name__)

_INT4 = 2**31 - 1


def _is_identifier(value: str) -> bool:
    try:
        msgspec.convert(value, Identifier)
    except msgspec.ValidationError:
        return False
    return True


class CsvTranslator:
    """Source lines -> contract CSV lines, by ``mapping`` (and ``ids`` when given)."""

    def __init__(self, mapping: CsvMapping, ids: IdMap | None, skipped: Skipped) -> None:
        self.mapping = mapping
        self.ids = ids
        self.skipped = skipped
        self.zone = ZoneInfo(mapping.timezone) if mapping.timezone else None
        self.index: dict[str, int] = {}

    def _split(self, line: str) -> list[str]:
        return next(csv.reader([line], delimiter=self.mapping.delimiter, strict=True), [])

    def header(self, line: str) -> bytes:
        """Read the source header; the contract header to send on."""
        try:
            names = [n.strip() for n in self._split(line.removeprefix("\ufeff"))]
        except csv.Error as exc:
            raise SnapshotRejected(f"line 1: header cannot be read: {exc}") from None
        wanted = {k: v for k, v in msgspec.structs.asdict(self.mapping.columns).items() if v}
        for column, source in wanted.items():
            if source not in names:
                raise SnapshotRejected(
                    f"line 1: column {source!r} (for {column}) is not in the header {names[:20]!r}"
                )
            self.index[column] = names.index(source)
        return (EXPECTED_HEADER + "\n").encode()

    def row(self, line_no: int, line: str) -> str | None:
        """The contract line for a source line (``None`` when skipped: blank or unmapped)."""
        if not line.strip():
            return None
        try:
            fields = self._split(line)
        except csv.Error as exc:
            raise SnapshotRejected(f"line {line_no}: cannot be read: {exc}") from None

        def get(column: str) -> str | None:
            i = self.index.get(column)
            if i is None:
                return None
            if i >= len(fields):
                raise SnapshotRejected(
                    f"line {line_no}: has {len(fields)} fields, no {self._source(column)!r} "
                    "(is the file truncated?)"
                )
            return fields[i].strip()

        location, sku = get("location_id") or "", get("sku") or ""
        if self.ids is not None:
            pair = map_pair(self.ids, location, sku, self.skipped)
            if pair is None:
                return None
            location, sku = pair
        for column, value in (("location_id", location), ("sku", sku)):
            if not _is_identifier(value):
                raise SnapshotRejected(
                    f"line {line_no}: {self._source(column)!r}: {value[:80]!r} is not an "
                    "identifier (1 to 64 of A-Z a-z 0-9 . _ - :)"
                )
        on_hand = self._units(line_no, "on_hand", get("on_hand"))
        reserved = self._units(line_no, "reserved", get("reserved"))
        in_transit = self._units(line_no, "in_transit", get("in_transit"))
        as_of = self._date(line_no, get("as_of") or "")
        return f"{location},{sku},{on_hand},{reserved},{in_transit},{as_of}\n"

    def _source(self, column: str) -> str:
        source = getattr(self.mapping.columns, column)
        return f"{source}" if source else column

    def _units(self, line_no: int, column: str, raw: str | None) -> int:
        if not raw:
            default = getattr(self.mapping.defaults, column, None)
            if default is None:
                raise SnapshotRejected(
                    f"line {line_no}: {self._source(column)!r} ({column}) is empty and no default is configured"
                )
            return int(default)
        try:
            value = Decimal(raw) * self.mapping.units_multiplier / self.mapping.units_divisor
        except InvalidOperation:
            value = Decimal("NaN")
        if not value.is_finite() or value != value.to_integral_value() or not 0 <= value <= _INT4:
            raise SnapshotRejected(
                f"line {line_no}: {self._source(column)!r} ({column}): {raw[:40]!r} is not a "
                f"whole number of units >= 0 (after x{self.mapping.units_multiplier}"
                f" /{self.mapping.units_divisor})"
            )
        return int(value)

    def _date(self, line_no: int, raw: str) -> str:
        fmt = self.mapping.date_format
        try:
            when = datetime.fromisoformat(raw) if fmt is None else datetime.strptime(raw, fmt)
        except ValueError:
            expected = f"the date format {fmt!r}" if fmt else "ISO 8601"
            raise SnapshotRejected(
                f"line {line_no}: {self._source('as_of')!r} (as_of): {raw[:40]!r} does not match "
                f"{expected}"
            ) from None
        if when.tzinfo is None:
            if self.zone is None:
                raise SnapshotRejected(
                    f"line {line_no}: {self._source('as_of')!r} (as_of): {raw[:40]!r} has no "
                    "offset and no timezone is configured"
                )
            when = when.replace(tzinfo=self.zone)
        return when.isoformat()


async def translate(
    chunks: AsyncIterator[bytes], translator: CsvTranslator, encoding: str
) -> AsyncIterator[bytes]:
    """The source byte stream as contract CSV, one output chunk per input chunk."""
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    pending = ""
    line_no = 0
    finished = False
    while not finished:
        try:
            chunk = await chunks.__anext__()
        except StopAsyncIteration:
            chunk, finished = b"", True
        try:
            text = pending + decoder.decode(chunk, final=finished)
        except UnicodeDecodeError as exc:
            raise SnapshotRejected(
                f"line {line_no + 1 + pending.count(chr(10))}: not valid {encoding}: {exc.reason}"
            ) from None
        lines = text.split("\n")
        pending = "" if finished else lines.pop()
        out: list[bytes | str] = []
        for line in lines:
            line_no += 1
            line = line.removesuffix("\r")
            if line_no == 1:
                out.append(translator.header(line))
            else:
                converted = translator.row(line_no, line)
                if converted is not None:
                    out.append(converted)
        if line_no == 0 and finished:
            raise SnapshotRejected("body is empty: no header line")
        if out:
            yield b"".join(o if isinstance(o, bytes) else o.encode() for o in out)


async def pull_csv_mapping(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
) -> PullOutcome:
    mapping = feed.csv
    if mapping is None:
        raise ValueError(f"feed {feed.name}: format csv_mapping without a [feeds.csv] table")
    ids = IdMap(feed.locations, feed.items) if feed.has_id_mapping else None
    skipped = Skipped()

    def translated(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        return translate(chunks, CsvTranslator(mapping, ids, skipped), mapping.encoding)

    outcome = await pull_warehouse(
        pool, feed, client, settings=settings, policy=policy, clock=clock, translate=translated
    )
    if skipped.total:
        log.warning("csv_mapping.rows_skipped", feed=feed.name, **skipped.log_fields())
        note = ", ".join(f"{k} {v}" for k, v in sorted(skipped.reasons.items()))
        outcome.detail = "; ".join(filter(None, [outcome.detail, f"skipped: {note}"]))
    return outcome
