"""Read a backtest dataset directory and replay it as one stream in publication order.

Decoding goes through the contract Structs (so reading a dataset *is* validating
it) in whole-chunk msgspec calls: a replay must push ≥ 50,000 POS events a second
through one core, so per-line Python work is kept out of the hot path. Bad input
stops the read with the file and line; the only exception is a warehouse snapshot,
which the live service quarantines rather than refuses, so a bad one is handed
to the replay as such (``WarehouseSnapshot.error``).
"""

from __future__ import annotations

import csv
import re
from codecs import BOM_UTF8  # what some tools (spreadsheets, .NET) put at a file's start
from collections.abc import Iterator, Sequence
from datetime import datetime
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import msgspec

from app.domain.model import (
    MAX_AHEAD,
    Adjustment,
    Count,
    Identifier,
    NonNegative,
    PosEvent,
    PositiveQty,
    Product,
    Receipt,
    Return,
    Sale,
    SnapshotRow,
    Store,
    Timestamp,
)

FORMAT = "availability-backtest/1"
CHUNK_BYTES = 8 << 20  # POS lines decoded per msgspec call: ~60,000 at ~130 bytes a line
FeedbackKind = Literal["shelf_count", "pick_found", "pick_short"]
T = TypeVar("T")


class DatasetError(ValueError):
    """The dataset is unusable; the message names the file (and line) and why."""


class SnapshotRef(msgspec.Struct, frozen=True, forbid_unknown_fields=False):
    path: Annotated[str, msgspec.Meta(min_length=1)]
    as_of: Timestamp
    published_at: Timestamp


class Manifest(msgspec.Struct, frozen=True):
    """``manifest.json``; unknown keys (e.g. ``generator``) are allowed and ignored."""

    format: Literal["availability-backtest/1"]
    start: Timestamp
    end: Timestamp
    stores: str
    pos_events: str
    visits: str
    warehouse_snapshots: list[SnapshotRef]
    products: str | None = None
    feedback: str | None = None

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError("end must be after start")


# Stream items are ``gc=False`` like the contract events (``app.domain.model``): no
# cycles through them, and a replay holds ~200,000 of them the collector need not scan.
class PublishedEvent(msgspec.Struct, frozen=True, gc=False):
    """A contract POS event and when the feed made it visible."""

    event: PosEvent
    published_at: datetime


class _PublishedAt(msgspec.Struct, frozen=True):
    published_at: Timestamp


# One decode per line into each contract event type plus ``published_at`` (a subclass,
# so the engine sees a ``Sale`` etc.). Identifiers are decoded as plain strings and their
# pattern checked afterwards in one regex pass over the chunk (per-field pattern checks
# were two thirds of the decode time); a chunk that fails is re-read strictly, line by line.
class _Sale(Sale, frozen=True, tag="sale"):
    event_id: str
    store_id: str
    sku: str
    published_at: Timestamp


class _Return(Return, frozen=True, tag="return"):
    event_id: str
    store_id: str
    sku: str
    published_at: Timestamp


class _Receipt(Receipt, frozen=True, tag="receipt"):
    event_id: str
    store_id: str
    sku: str
    published_at: Timestamp


class _Adjustment(Adjustment, frozen=True, tag="adjustment"):
    event_id: str
    store_id: str
    sku: str
    published_at: Timestamp


class _Count(Count, frozen=True, tag="count"):
    event_id: str
    store_id: str
    sku: str
    published_at: Timestamp


_Line = _Sale | _Return | _Receipt | _Adjustment | _Count
_IDENTIFIERS = re.compile(r"(?:[A-Za-z0-9._:-]{1,64}\n)*")
_LINES = msgspec.json.Decoder(list[_Line])


class Feedback(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """A ``feedback.csv`` row (contract columns plus ``published_at``).

    ``array_like``: rows are converted from split CSV lines in the file's column order
    (no dict per row); ``_ByName`` gives the same checks by column name for messages.
    ``store_id`` and ``sku`` are identifiers, checked by the reader in one pattern pass
    over the file's distinct values (as POS chunks are: a check per field was ~a third
    of reading a dataset); ``_ByName`` checks them per field.
    """

    observed_at: Timestamp
    store_id: str
    sku: str
    kind: FeedbackKind
    qty: NonNegative
    published_at: Timestamp


class Visit(msgspec.Struct, frozen=True, kw_only=True, array_like=True, gc=False):
    """A ``visits.csv`` row: the ground truth a policy is scored against (``array_like``
    and identifiers as ``Feedback``)."""

    viewed_at: Timestamp
    arrived_at: Timestamp
    store_id: str
    sku: str
    qty_wanted: PositiveQty
    on_shelf_qty: NonNegative

    def __post_init__(self) -> None:
        if self.arrived_at < self.viewed_at:
            raise ValueError("arrived_at is before viewed_at")

    @property
    def available(self) -> bool:
        """The outcome: enough units were on the shelf when the shopper got there."""
        return self.on_shelf_qty >= self.qty_wanted


class _FeedbackByName(Feedback, frozen=True, kw_only=True, array_like=False):
    """``Feedback`` from a dict per row: only to name the column in an error message."""

    store_id: Identifier
    sku: Identifier


class _VisitByName(Visit, frozen=True, kw_only=True, array_like=False):
    """``Visit`` from a dict per row: only to name the column in an error message."""

    store_id: Identifier
    sku: Identifier


class _SnapshotLine(SnapshotRow, frozen=True, array_like=True):
    """A snapshot row converted from a split CSV line (a ``SnapshotRow`` for the engine;
    identifiers checked by the reader as ``Feedback``'s)."""

    location_id: str
    sku: str


class WarehouseSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """One snapshot file; ``rows`` is ``None`` and ``error`` says why when it is unreadable."""

    path: Path
    as_of: datetime
    published_at: datetime
    rows: list[SnapshotRow] | None
    error: str | None = None


StreamItem = WarehouseSnapshot | PublishedEvent | Feedback | Visit
# At equal times a snapshot lands first and a visit last: a visit at t may use
# everything published at or before t.
_time = itemgetter(0)


def _safe_path(root: Path, name: str, what: str) -> Path:
    rel = Path(name)
    if rel.is_absolute() or ".." in rel.parts:
        raise DatasetError(
            f"manifest.json: {what} path {name!r} must be relative, inside the dataset"
        )
    path = root / rel
    if not path.is_file():
        raise DatasetError(f"manifest.json: {what} file {name!r} does not exist")
    return path


def _where(exc: msgspec.ValidationError) -> tuple[int | None, str]:
    """Row index and message from a msgspec path like ``$[12].qty``."""
    m = re.search(r"`\$\[(\d+)\]", str(exc))
    return (int(m.group(1)) if m else None), str(exc)


def _convert_rows(
    rows: list[dict[str, Any]], type_: type[T], path: Path, first_line: int
) -> list[T]:
    try:
        return msgspec.convert(rows, list[type_], strict=False)  # type: ignore[valid-type]
    except msgspec.ValidationError as exc:
        index, message = _where(exc)
        line = f":{first_line + index}" if index is not None else ""
        raise DatasetError(f"{path.name}{line}: {message}") from None


def _read_csv(
    path: Path, columns: Sequence[str], optional: Sequence[str] = ()
) -> list[dict[str, Any]]:
    """CSV rows as dicts; empty optional cells become absent (their default)."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:  # a leading BOM is allowed
            reader = csv.reader(f)
            header = next(reader, None)
            if header is None:
                raise DatasetError(f"{path.name}: empty file, expected header {','.join(columns)}")
            header = [h.strip() for h in header]
            missing = [c for c in columns if c not in header and c not in optional]
            if missing:
                raise DatasetError(f"{path.name}:1: missing column(s) {', '.join(missing)}")
            rows: list[dict[str, Any]] = []
            width = len(header)
            for n, rec in enumerate(reader, start=2):
                if not rec:
                    rows.append({"__blank__": n})
                    continue
                if len(rec) != width:
                    raise DatasetError(
                        f"{path.name}:{n}: expected {width} fields, found {len(rec)}"
                    )
                row = dict(zip(header, rec, strict=True))
                for c in optional:
                    if row.get(c) == "":
                        del row[c]
                rows.append(row)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path.name}: not UTF-8 ({exc.reason})") from None
    blanks = [r["__blank__"] for r in rows if "__blank__" in r]
    if blanks:
        raise DatasetError(f"{path.name}:{blanks[0]}: empty line")
    return rows


def _read_lines(path: Path, columns: Sequence[str]) -> list[list[str]]:
    """CSV rows as lists in ``columns`` order, without a dict per row.

    Plain files (no quotes, no carriage returns: what the writer produces) are split
    on newlines and commas; anything else goes through the ``csv`` module. The same
    errors as ``_read_csv`` (first wrong-width line, else first blank line).
    """
    try:
        text = path.read_text(encoding="utf-8-sig")  # a leading BOM is allowed
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{path.name}: not UTF-8 ({exc.reason})") from None
    if '"' in text or "\r" in text:
        records: list[list[str]] = list(csv.reader(text.splitlines(keepends=True)))
    else:
        lines = text.split("\n")
        if lines[-1] == "":
            lines.pop()
        records = [ln.split(",") if ln else [] for ln in lines]
    if not records:
        raise DatasetError(f"{path.name}: empty file, expected header {','.join(columns)}")
    header = [h.strip() for h in records[0]]
    missing = [c for c in columns if c not in header]
    if missing:
        raise DatasetError(f"{path.name}:1: missing column(s) {', '.join(missing)}")
    width = len(header)
    rows = records[1:]
    if any(len(rec) != width for rec in rows):
        blank = None
        for n, rec in enumerate(rows, start=2):
            if not rec:
                blank = n if blank is None else blank
            elif len(rec) != width:
                raise DatasetError(f"{path.name}:{n}: expected {width} fields, found {len(rec)}")
        raise DatasetError(f"{path.name}:{blank}: empty line")
    if header != list(columns):
        where = {h: i for i, h in enumerate(header)}  # the last of repeated names, as a dict
        pick = [where[c] for c in columns]
        rows = [[rec[i] for i in pick] for rec in rows]
    return rows


def _convert_lines(
    rows: list[list[str]], type_: type[T], by_name: type[Any], columns: Sequence[str], path: Path,
    identifiers: Sequence[int],
) -> list[T]:  # fmt: skip
    """Rows from ``_read_lines`` into an ``array_like`` Struct; on a bad row, the error
    comes from ``by_name`` (the same Struct from dicts) so it names the column. The
    ``identifiers`` columns (plain ``str`` in ``type_``) are checked in one pattern pass
    over their distinct values; ``by_name`` checks them per field, so it judges a miss."""
    try:
        out = msgspec.convert(rows, list[type_], strict=False)  # type: ignore[valid-type]
    except msgspec.ValidationError as exc:
        _convert_rows([dict(zip(columns, r, strict=True)) for r in rows], by_name, path, 2)
        index, message = _where(exc)  # not reached: the same checks fail by name
        line = f":{2 + index}" if index is not None else ""
        raise DatasetError(f"{path.name}{line}: {message}") from None
    names: set[str] = set()
    for i in identifiers:
        names.update(map(itemgetter(i), rows))
    if _IDENTIFIERS.fullmatch("\n".join([*names, ""])) is None:
        _convert_rows([dict(zip(columns, r, strict=True)) for r in rows], by_name, path, 2)
    return out


def read_manifest(root: Path) -> Manifest:
    path = root / "manifest.json"
    try:
        data = path.read_bytes().removeprefix(BOM_UTF8)
    except FileNotFoundError:
        raise DatasetError(f"{root}: no manifest.json (not a backtest dataset)") from None
    try:
        return msgspec.json.decode(data, type=Manifest)
    except msgspec.ValidationError as exc:
        raise DatasetError(f"manifest.json: {exc}") from None
    except msgspec.DecodeError as exc:
        raise DatasetError(f"manifest.json: not JSON ({exc})") from None


def read_pos_events(path: Path, ahead: list[int] | None = None) -> Iterator[PublishedEvent]:
    """POS events in file order, decoded a chunk of lines per msgspec call."""
    for events in read_pos_chunks(path, ahead):
        yield from events


def read_pos_chunks(path: Path, ahead: list[int] | None = None) -> Iterator[list[PublishedEvent]]:
    """``read_pos_events`` a decoded chunk at a time (no generator step per event).

    An event dated more than ``MAX_AHEAD`` after its ``published_at`` (a till's clock
    wrong) is left out, as the live pull rejects its page; its line number goes to
    ``ahead``. One dated less far ahead is taken, as the live pull takes it."""
    with path.open("rb") as f:
        first_line = 1
        while True:
            chunk = f.readlines(CHUNK_BYTES)
            if not chunk:
                return
            if first_line == 1 and chunk[0].startswith(BOM_UTF8):
                chunk[0] = chunk[0].removeprefix(BOM_UTF8)
            yield _decode_pos_chunk(path, chunk, first_line, ahead)
            first_line += len(chunk)


def _numbered(lines: list[bytes], first_line: int) -> list[tuple[int, bytes]]:
    return [(first_line + i, ln) for i, ln in enumerate(lines) if ln.strip()]


def _decode_pos_chunk(
    path: Path, chunk: list[bytes], first_line: int, ahead: list[int] | None = None
) -> list[PublishedEvent]:
    try:  # the common case: no blank lines, every line valid
        lines = _LINES.decode(b"[" + b",".join(chunk) + b"]")
        numbered: list[tuple[int, bytes]] | None = None
    except (msgspec.ValidationError, msgspec.DecodeError):
        numbered = _numbered(chunk, first_line)  # blank lines are skipped, not errors
        try:
            lines = _LINES.decode(b"[" + b",".join(ln for _, ln in numbered) + b"]")
        except (msgspec.ValidationError, msgspec.DecodeError):
            _raise_first_bad_line(path, numbered)
            raise  # unreachable: a chunk that fails has a line that fails
    names = {e.store_id for e in lines} | {e.sku for e in lines}
    ids = "\n".join([*(e.event_id for e in lines), *names, ""])
    if _IDENTIFIERS.fullmatch(ids) is None:
        _raise_first_bad_line(path, numbered or _numbered(chunk, first_line))
    if any([e.published_at < e.occurred_at for e in lines]):  # (a list: no generator steps)
        kept = []
        for (n, _), e in zip(numbered or _numbered(chunk, first_line), lines, strict=True):
            if e.occurred_at - e.published_at > MAX_AHEAD:
                if ahead is not None:
                    ahead.append(n)
            else:
                kept.append(e)
        lines = kept
    return [PublishedEvent(e, e.published_at) for e in lines]


def _raise_first_bad_line(path: Path, numbered: list[tuple[int, bytes]]) -> None:
    for n, line in numbered:
        try:
            msgspec.json.decode(line, type=PosEvent)
            msgspec.json.decode(line, type=_PublishedAt)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise DatasetError(f"{path.name}:{n}: {exc}") from None


def read_snapshot(root: Path, ref: SnapshotRef) -> WarehouseSnapshot:
    """A snapshot file; a malformed one comes back with ``error`` set, not raised."""
    path = _safe_path(root, ref.path, "warehouse snapshot")
    rows: list[SnapshotRow] | None = None
    error: str | None = None
    columns = ("location_id", "sku", "on_hand", "reserved", "in_transit", "as_of")
    try:
        rows = _convert_lines(
            _read_lines(path, columns), _SnapshotLine, SnapshotRow, columns, path, (0, 1)
        )
    except DatasetError as exc:
        error = str(exc)
    return WarehouseSnapshot(
        path=path, as_of=ref.as_of, published_at=ref.published_at, rows=rows, error=error
    )


class Dataset:
    """An opened dataset: manifest checked, stores and products loaded, the rest on demand."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.manifest = read_manifest(root)
        # Line numbers of the POS events left out of the last read: dated more than
        # MAX_AHEAD after their publication (``read_pos_chunks``).
        self.ahead: list[int] = []
        m = self.manifest
        self.stores_path = _safe_path(root, m.stores, "stores")
        self.pos_path = _safe_path(root, m.pos_events, "pos_events")
        self.visits_path = _safe_path(root, m.visits, "visits")
        self.products_path = _safe_path(root, m.products, "products") if m.products else None
        self.feedback_path = _safe_path(root, m.feedback, "feedback") if m.feedback else None
        for ref in m.warehouse_snapshots:
            _safe_path(root, ref.path, "warehouse snapshot")
        self.stores = _convert_rows(
            _read_csv(
                self.stores_path,
                ("store_id", "name", "lat", "lon", "postal_code", "timezone"),
                optional=("postal_code", "timezone"),
            ),
            Store,
            self.stores_path,
            2,
        )
        seen: set[str] = set()
        for i, s in enumerate(self.stores):
            if s.store_id in seen:
                raise DatasetError(
                    f"{self.stores_path.name}:{i + 2}: duplicate store_id {s.store_id}"
                )
            seen.add(s.store_id)
        self.products: list[Product] = []
        if self.products_path is not None:
            self.products = _convert_rows(
                _read_csv(
                    self.products_path, ("sku", "name", "category"), optional=("name", "category")
                ),
                Product,
                self.products_path,
                2,
            )

    @property
    def start(self) -> datetime:
        return self.manifest.start

    @property
    def end(self) -> datetime:
        return self.manifest.end

    def pos_events(self) -> Iterator[PublishedEvent]:
        self.ahead.clear()
        return read_pos_events(self.pos_path, self.ahead)

    def snapshots(self) -> list[WarehouseSnapshot]:
        return [read_snapshot(self.root, ref) for ref in self.manifest.warehouse_snapshots]

    def feedback(self) -> list[Feedback]:
        if self.feedback_path is None:
            return []
        columns = ("observed_at", "store_id", "sku", "kind", "qty", "published_at")
        path = self.feedback_path
        return _convert_lines(
            _read_lines(path, columns), Feedback, _FeedbackByName, columns, path, (1, 2)
        )

    def visits(self) -> list[Visit]:
        columns = ("viewed_at", "arrived_at", "store_id", "sku", "qty_wanted", "on_shelf_qty")
        path = self.visits_path
        return _convert_lines(
            _read_lines(path, columns), Visit, _VisitByName, columns, path, (2, 3)
        )

    def stream(self) -> Iterator[tuple[datetime, StreamItem]]:
        """Everything as ``(time, item)`` in time order: ``published_at`` (visits: ``viewed_at``).

        Ties keep snapshots first and visits last, then file order, so a visit
        sees all data published at or before its ``viewed_at``.
        """
        return iter(self.ordered())

    def ordered(self) -> list[tuple[datetime, StreamItem]]:
        """``stream()`` as one list, built without a generator step per item."""
        # Concatenated in rank order, each source in file order, then a stable sort on
        # the time alone: the same order as sorting on (time, rank, index).
        items: list[tuple[datetime, StreamItem]] = [(s.published_at, s) for s in self.snapshots()]
        self.ahead.clear()
        for events in read_pos_chunks(self.pos_path, self.ahead):
            items += [(e.published_at, e) for e in events]
        items += [(f.published_at, f) for f in self.feedback()]
        items += [(v.viewed_at, v) for v in self.visits()]
        items.sort(key=_time)
        return items


def open_dataset(root: Path | str) -> Dataset:
    """Open and validate a dataset directory (manifest, stores, products)."""
    return Dataset(Path(root))
