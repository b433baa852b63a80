"""Stores and products: strict CSV parsing and the start-up loader.

The same parser serves ``settings.stores_file`` / ``settings.products_file`` at
start-up and ``POST /v1/stores`` / ``POST /v1/products``, so a file is judged the
same way whichever door it comes through. Parsing is all-or-nothing: every row is
checked and one bad row rejects the whole file, with line numbers and reasons.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterator, Sequence
from functools import cache
from pathlib import Path
from typing import Any, Final, TypeVar
from zoneinfo import available_timezones

import asyncpg
import msgspec
import structlog

from app.db import stores as store_db
from app.domain.model import ID_PATTERN, Product, Store
from app.settings import Settings

log = structlog.get_logger(__name__)

STORES_HEADER: Final = ("store_id", "name", "lat", "lon", "postal_code", "timezone")
PRODUCTS_HEADER: Final = ("sku", "name", "category")
MAX_NAME = 200
MAX_SHORT_TEXT = 64
SHOWN_PROBLEMS = 20

_IDENT = re.compile(ID_PATTERN)
T = TypeVar("T")


class LineProblem(msgspec.Struct, frozen=True):
    """One reason a line of a CSV file was refused."""

    line: int
    reason: str


class CsvRejected(ValueError):
    """A CSV file was refused whole; ``problems`` says where and why."""

    def __init__(self, source: str, problems: Sequence[LineProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        super().__init__(self.message)

    @property
    def message(self) -> str:
        shown = "; ".join(f"line {p.line}: {p.reason}" for p in self.problems[:SHOWN_PROBLEMS])
        more = len(self.problems) - SHOWN_PROBLEMS
        tail = f"; and {more} more" if more > 0 else ""
        n = len(self.problems)
        return (
            f"{self.source} rejected, nothing applied ({n} problem{'s' * (n != 1)}): {shown}{tail}"
        )


class ReferenceDataError(RuntimeError):
    """A configured reference file could not be read or was rejected."""


# --- validation shared by CSV rows and JSON bodies ---------------------------------


def identifier_problem(field: str, value: str) -> str | None:
    """Why ``value`` is not a contract identifier, or ``None`` when it is."""
    if _IDENT.fullmatch(value):
        return None
    if not value:
        return f"{field} is empty"
    return f"{field} {value!r} is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :)"


@cache
def _known_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def store_problems(store: Store) -> list[str]:
    """Everything wrong with a store, in words; empty when it may be stored."""
    problems: list[str] = []
    if bad_id := identifier_problem("store_id", store.store_id):
        problems.append(bad_id)
    if not store.name.strip():
        problems.append("name is empty")
    elif len(store.name) > MAX_NAME:
        problems.append(f"name is longer than {MAX_NAME} characters")
    for field, value, limit in (("lat", store.lat, 90.0), ("lon", store.lon, 180.0)):
        if not math.isfinite(value) or not -limit <= value <= limit:
            problems.append(f"{field} {value!r} is out of range -{limit:g}..{limit:g}")
    if store.postal_code is not None and len(store.postal_code) > MAX_SHORT_TEXT:
        problems.append(f"postal_code is longer than {MAX_SHORT_TEXT} characters")
    if store.timezone is not None and store.timezone not in _known_timezones():
        problems.append(f"timezone {store.timezone!r} is not an IANA time zone (e.g. Europe/Paris)")
    return problems


def product_problems(product: Product) -> list[str]:
    """Everything wrong with a product, in words; empty when it may be stored."""
    problems: list[str] = []
    if bad_id := identifier_problem("sku", product.sku):
        problems.append(bad_id)
    if product.name is not None and len(product.name) > MAX_NAME:
        problems.append(f"name is longer than {MAX_NAME} characters")
    if product.category is not None and len(product.category) > MAX_SHORT_TEXT:
        problems.append(f"category is longer than {MAX_SHORT_TEXT} characters")
    return problems


# --- CSV --------------------------------------------------------------------------


def optional_text(value: str | None) -> str | None:
    """``None`` for a missing or blank value (an empty CSV cell means "not given")."""
    return value if value is not None and value.strip() else None


def _number(field: str, value: str, problems: list[str]) -> float:
    """``value`` as a float; a problem (and a harmless 0.0) when it is not one."""
    try:
        number = float(value)
    except ValueError:
        problems.append(f"{field} {value!r} is not a number")
        return 0.0
    if not math.isfinite(number):
        problems.append(f"{field} {value!r} is not a finite number")
        return 0.0
    return number


def _read_rows(
    text: str, header: tuple[str, ...], source: str
) -> tuple[list[tuple[int, list[str]]], list[LineProblem]]:
    """Data rows with the line each starts on, and the lines that are not rows.

    A header other than exactly ``header`` rejects the file at once.
    """
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        first = next(reader, None)
    except csv.Error as exc:
        raise CsvRejected(source, [LineProblem(1, f"not valid CSV: {exc}")]) from None
    if first != list(header):
        got = "an empty file" if first is None else repr(",".join(first))
        expected = ",".join(header)
        raise CsvRejected(
            source, [LineProblem(1, f"header must be exactly {expected!r}, got {got}")]
        )
    rows: list[tuple[int, list[str]]] = []
    problems: list[LineProblem] = []
    for line, fields in csv_lines(reader, problems):
        if len(fields) == len(header):
            rows.append((line, fields))
        elif fields:  # a blank line carries nothing
            problems.append(LineProblem(line, f"expected {len(header)} fields, got {len(fields)}"))
    return rows, problems


def csv_lines(reader: Any, problems: list[LineProblem]) -> Iterator[tuple[int, list[str]]]:
    """The rows after the header with the line each starts on (quoted fields may span
    lines). Text that is not CSV ends the file with a problem on its line."""
    line = reader.line_num + 1
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            problems.append(LineProblem(line, f"not valid CSV: {exc}"))
            return
        yield line, fields
        line = reader.line_num + 1


def _parse(
    text: str,
    header: tuple[str, ...],
    source: str,
    build: Callable[[list[str], list[str]], T],
    check: Callable[[T], list[str]],
    key: Callable[[T], str],
) -> list[T]:
    """Build, check and de-duplicate every row; any problem rejects the file."""
    rows, problems = _read_rows(text, header, source)
    items: list[T] = []
    first_seen: dict[str, int] = {}
    for line, fields in rows:
        reasons: list[str] = []
        item = build(fields, reasons)
        reasons.extend(check(item))
        if not reasons and key(item) in first_seen:
            reasons = [f"{header[0]} {key(item)!r} repeats line {first_seen[key(item)]}"]
        if reasons:
            problems.extend(LineProblem(line, r) for r in reasons)
        else:
            first_seen[key(item)] = line
            items.append(item)
    if problems:
        raise CsvRejected(source, sorted(problems, key=lambda p: p.line))
    return items


def _store_from(fields: list[str], problems: list[str]) -> Store:
    store_id, name, lat, lon, postal_code, timezone = fields
    return Store(
        store_id=store_id,
        name=name,
        lat=_number("lat", lat, problems),
        lon=_number("lon", lon, problems),
        postal_code=optional_text(postal_code),
        timezone=optional_text(timezone),
    )


def _product_from(fields: list[str], problems: list[str]) -> Product:
    sku, name, category = fields
    return Product(sku=sku, name=optional_text(name), category=optional_text(category))


def parse_stores_csv(text: str, *, source: str = "stores.csv") -> list[Store]:
    """Every store in a ``stores.csv``; raises :class:`CsvRejected` if any row is bad."""
    return _parse(text, STORES_HEADER, source, _store_from, store_problems, lambda s: s.store_id)


def parse_products_csv(text: str, *, source: str = "products.csv") -> list[Product]:
    """Every product in a ``products.csv``; raises :class:`CsvRejected` if any row is bad."""
    return _parse(text, PRODUCTS_HEADER, source, _product_from, product_problems, lambda p: p.sku)


def decode_csv_bytes(body: bytes, source: str) -> str:
    """UTF-8 text of an uploaded or configured file (a leading BOM is allowed)."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        raise CsvRejected(
            source, [LineProblem(line, f"not UTF-8 text (byte {exc.start})")]
        ) from None


# --- start-up ---------------------------------------------------------------------


def _read(path: Path) -> str:
    try:
        return decode_csv_bytes(path.read_bytes(), str(path))
    except OSError as exc:
        raise ReferenceDataError(f"cannot read {path}: {exc.strerror or exc}") from None


async def load_reference_files(pool: asyncpg.Pool, settings: Settings) -> None:
    """Upsert ``settings.stores_file`` and ``settings.products_file`` at start-up.

    Both files are parsed before anything is written and applied in one
    transaction, so a bad file stops start-up and leaves the database as it was.
    """
    stores: list[Store] | None = None
    products: list[Product] | None = None
    try:
        if settings.stores_file is not None:
            stores = parse_stores_csv(_read(settings.stores_file), source=str(settings.stores_file))
        if settings.products_file is not None:
            products = parse_products_csv(
                _read(settings.products_file), source=str(settings.products_file)
            )
    except CsvRejected as exc:
        raise ReferenceDataError(exc.message) from None
    if stores is None and products is None:
        return
    async with pool.acquire() as conn, conn.transaction():
        if stores is not None:
            counts = await store_db.upsert_stores(conn, stores)
            log.info(
                "reference_data.stores_loaded", file=str(settings.stores_file), **counts.as_log()
            )
        if products is not None:
            counts = await store_db.upsert_products(conn, products)
            log.info(
                "reference_data.products_loaded",
                file=str(settings.products_file),
                **counts.as_log(),
            )
