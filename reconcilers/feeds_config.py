"""The feeds file: which feeds to pull, how often, with what credentials.

TOML, one ``[[feeds]]`` table per feed (documented in docs/feeds.md)::

    [[feeds]]
    name = "pos-main"            # 1-64 of A-Z a-z 0-9 . _ - :
    kind = "pos"                 # "pos" or "warehouse"
    url = "https://pos.example/events"
    interval = "30s"             # pull interval (30s, 5m, 1h, or seconds)
    timeout = "10s"              # per-request timeout
    auth_header = "Authorization"   # optional header ...
    auth_env = "POS_TOKEN"          # ... whose value is read from this env variable
    max_drop = 0.5               # warehouse only: largest allowed fall in a location's rows
    format = "contract"          # or "square" (pos), "shopify", "csv_mapping" (warehouse)

Vendor formats (docs/adapters.md) add an id mapping (``locations``/``items`` tables or
an ``ids_file`` CSV) and, for ``csv_mapping``, a ``[feeds.csv]`` table.
"""

from __future__ import annotations

import csv
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from app.domain.model import Identifier
from app.settings import SettingsError, convert

FeedFormat = Literal["contract", "square", "shopify", "csv_mapping"]
# Which kind each format feeds: a vendor adapter translates into that kind's contract.
FORMAT_KIND: dict[str, str] = {"square": "pos", "shopify": "warehouse", "csv_mapping": "warehouse"}
Positive = Annotated[int, msgspec.Meta(gt=0)]


class CsvColumns(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Source column name for each contract column (``reserved``/``in_transit`` optional)."""

    location_id: str
    sku: str
    on_hand: str
    as_of: str
    reserved: str | None = None
    in_transit: str | None = None


class CsvDefaults(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Values for contract columns the source does not have (or leaves empty)."""

    reserved: Annotated[int, msgspec.Meta(ge=0)] | None = None
    in_transit: Annotated[int, msgspec.Meta(ge=0)] | None = None


class CsvMapping(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """How to read a warehouse CSV that is not in the contract's shape (format csv_mapping)."""

    columns: CsvColumns
    delimiter: Annotated[str, msgspec.Meta(min_length=1, max_length=1)] = ","
    encoding: str = "utf-8"
    date_format: str | None = None  # strptime; None: ISO 8601
    timezone: str | None = None  # IANA zone for dates without an offset
    units_multiplier: Positive = 1  # contract units = source units * multiplier / divisor
    units_divisor: Positive = 1
    defaults: CsvDefaults = msgspec.field(default_factory=CsvDefaults)

    def __post_init__(self) -> None:
        if self.delimiter in ('"', "\n", "\r"):
            raise ValueError(f"delimiter {self.delimiter!r} cannot separate fields")
        if self.timezone is not None:
            try:
                ZoneInfo(self.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"timezone {self.timezone!r} is not an IANA zone") from None
        for column in ("reserved", "in_transit"):
            if getattr(self.columns, column) is None and getattr(self.defaults, column) is None:
                raise ValueError(f"{column}: name a source column or give a default")
        try:
            "".encode(self.encoding)
        except LookupError:
            raise ValueError(f"encoding {self.encoding!r} is not known") from None


class FeedConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Identifier
    kind: Literal["pos", "warehouse"]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    interval: timedelta = timedelta(seconds=60)
    timeout: timedelta = timedelta(seconds=10)
    auth_header: str | None = None
    auth_env: str | None = None
    auth_scheme: str | None = None  # e.g. "Bearer": the header is "<scheme> <env value>"
    max_drop: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None
    format: FeedFormat = "contract"
    # Vendor id -> our id (square, shopify; optional for csv_mapping). ids_file (a CSV
    # ``type,vendor_id,id`` with type location or item) is merged in by load_feeds.
    locations: dict[str, Identifier] = msgspec.field(default_factory=dict)
    items: dict[str, Identifier] = msgspec.field(default_factory=dict)
    ids_file: Path | None = None
    csv: CsvMapping | None = None

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or self.timeout <= timedelta(0):
            raise ValueError("interval and timeout must be positive")
        if (self.auth_header is None) != (self.auth_env is None):
            raise ValueError("auth_header and auth_env go together")
        if self.auth_scheme is not None and self.auth_header is None:
            raise ValueError("auth_scheme needs auth_header and auth_env")
        wanted = FORMAT_KIND.get(self.format)
        if wanted is not None and self.kind != wanted:
            raise ValueError(f"format {self.format!r} needs kind {wanted!r}")
        if (self.format == "csv_mapping") != (self.csv is not None):
            raise ValueError(
                "a [feeds.csv] table goes with format 'csv_mapping' (and only with it)"
            )
        if self.format == "contract" and (self.locations or self.items or self.ids_file):
            raise ValueError("locations, items and ids_file are for vendor formats")

    def headers(self, env: Mapping[str, str] | None = None) -> dict[str, str]:
        """Request headers, with the auth header's value taken from the environment."""
        if self.auth_header is None or self.auth_env is None:
            return {}
        env = os.environ if env is None else env
        value = env.get(self.auth_env)
        if not value:
            raise SettingsError(
                f"feed {self.name}: environment variable {self.auth_env} is not set"
            )
        if self.auth_scheme:
            value = f"{self.auth_scheme} {value}"
        return {self.auth_header: value}

    @property
    def has_id_mapping(self) -> bool:
        return bool(self.locations or self.items or self.ids_file)


def parse_feeds(data: Mapping[str, object], *, where: str) -> list[FeedConfig]:
    raw = data.get("feeds", [])
    if not isinstance(raw, list):
        raise SettingsError(f"{where}: 'feeds' must be a list of [[feeds]] tables")
    feeds = [convert(item, FeedConfig, where=f"{where}: feeds[{i}]") for i, item in enumerate(raw)]
    names = [f.name for f in feeds]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise SettingsError(f"{where}: feed names must be unique, repeated: {', '.join(dupes)}")
    return feeds


def load_feeds(path: Path | None) -> list[FeedConfig]:
    """Feeds from the TOML file at ``path`` (none when no file is configured)."""
    if path is None:
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"feeds file {path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"feeds file {path}: not valid TOML: {exc}") from None
    feeds = parse_feeds(data, where=f"feeds file {path}")
    return [_with_ids_file(f, base=path.parent, where=f"feeds file {path}") for f in feeds]


def _with_ids_file(feed: FeedConfig, *, base: Path, where: str) -> FeedConfig:
    """``feed`` with its ``ids_file`` rows merged into ``locations``/``items``.

    Inline entries win over the file's; a relative path is relative to the feeds file.
    """
    if feed.ids_file is None:
        return feed
    path = feed.ids_file if feed.ids_file.is_absolute() else base / feed.ids_file
    locations, items = read_ids_file(path, where=f"{where}: feed {feed.name}: ids_file {path}")
    return msgspec.structs.replace(
        feed,
        ids_file=path,
        locations={**locations, **feed.locations},
        items={**items, **feed.items},
    )


def read_ids_file(path: Path, *, where: str) -> tuple[dict[str, str], dict[str, str]]:
    """(locations, items) from a CSV ``type,vendor_id,id`` (type ``location`` or ``item``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SettingsError(f"{where}: cannot read: {exc.strerror}") from None
    rows = csv.reader(text.splitlines())
    header = next(rows, None)
    if header != ["type", "vendor_id", "id"]:
        raise SettingsError(f"{where}: line 1: expected header 'type,vendor_id,id', got {header!r}")
    tables: dict[str, dict[str, str]] = {"location": {}, "item": {}}
    for line, row in enumerate(rows, start=2):
        if not row:
            continue
        if len(row) != 3 or row[0] not in tables:
            raise SettingsError(
                f"{where}: line {line}: expected 'location|item,<vendor id>,<our id>', got {row!r}"
            )
        kind, vendor_id, our_id = row
        try:
            msgspec.convert(our_id, Identifier)
        except msgspec.ValidationError:
            raise SettingsError(
                f"{where}: line {line}: {our_id!r} is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :)"
            ) from None
        if not vendor_id or vendor_id in tables[kind]:
            raise SettingsError(f"{where}: line {line}: {kind} {vendor_id!r} is empty or repeated")
        tables[kind][vendor_id] = our_id
    return tables["location"], tables["item"]
