"""Settings from the environment and an optional TOML file, validated at start-up.

Precedence: environment > file named by ``AVAILABILITY_CONFIG`` > defaults. A bad
value stops start-up with a message naming the variable and what it expects.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_type_hints

import msgspec

from app.domain.truncation import DEFAULT_MAX_DROP

T = TypeVar("T")
Seconds = Annotated[float, msgspec.Meta(gt=0)]
Share = Annotated[float, msgspec.Meta(ge=0, le=1)]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
# EMBEDDED_PG_SETTINGS items: a parameter name and a plain value (a size, number, word).
_PG_NAME = re.compile(r"^[a-z_][a-z0-9_.]*$")
_PG_VALUE = re.compile(r"^[A-Za-z0-9_.+-]+$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


# The reconciliation report reads 28 days of sales (reports.sql: sales_28d): events
# younger than that are never deleted (app/db/retention.py).
MIN_EVENT_RETENTION = timedelta(days=28)


class SettingsError(ValueError):
    """A setting is missing or malformed; the message says which and why."""


def parse_duration(value: object) -> timedelta:
    """``90``, ``"90s"``, ``"5m"``, ``"6h"``, ``"1d"``, ``"250ms"`` or ISO ``"PT6H"``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    if isinstance(value, str):
        m = _DURATION.match(value)
        if m:
            return timedelta(seconds=float(m.group(1)) * _UNIT_SECONDS[m.group(2)])
        try:
            return msgspec.convert(value, timedelta)
        except msgspec.ValidationError:
            pass
    raise ValueError(f"not a duration: {value!r} (use e.g. 30s, 5m, 6h, 1d or PT6H)")


def parse_pg_settings(text: str) -> dict[str, str]:
    """``"shared_buffers=2GB,random_page_cost=1.1"`` as a dict; a malformed item raises.

    Values are written with ALTER SYSTEM, so only plain tokens are accepted (no quotes,
    spaces or commas): sizes, numbers, booleans and enum words.
    """
    out: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, eq, value = (x.strip() for x in item.partition("="))
        if not eq or not _PG_NAME.match(name) or not _PG_VALUE.match(value):
            raise ValueError(
                f"{item!r} is not name=value (a PostgreSQL parameter and a plain value, "
                "e.g. shared_buffers=256MB,random_page_cost=1.1)"
            )
        out[name] = value
    return out


def _dec_hook(type_: type, obj: Any) -> Any:
    if type_ is timedelta:
        return parse_duration(obj)
    if type_ is Path:
        return Path(obj)
    raise NotImplementedError(type_)


def _with_durations(data: Any, type_: Any) -> Any:
    """Parse human durations ("30s", "6h") in a mapping bound for a Struct."""
    if not (
        isinstance(data, dict) and isinstance(type_, type) and issubclass(type_, msgspec.Struct)
    ):
        return data
    hints = get_type_hints(type_, include_extras=True)
    out = dict(data)
    for key, value in data.items():
        if hints.get(key) in (timedelta, timedelta | None) and value is not None:
            out[key] = parse_duration(value)
    return out


def convert(data: Any, type_: type[T], *, where: str) -> T:
    """msgspec.convert with durations, paths and a message that says where."""
    try:
        if type_ in (timedelta, timedelta | None) and data is not None:
            return parse_duration(data)  # type: ignore[return-value]
        return msgspec.convert(
            _with_durations(data, type_), type_, dec_hook=_dec_hook, strict=False
        )
    except (msgspec.ValidationError, ValueError) as exc:
        raise SettingsError(f"{where}: {exc}") from None


class Settings(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Everything the service reads at start-up. Env names in ``ENV_NAMES``."""

    database_url: str | None = None
    data_dir: Path = Path(".data")
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=0, le=65535)] = 8000
    feeds_file: Path | None = None
    policy_file: Path | None = None
    stores_file: Path | None = None
    products_file: Path | None = None
    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    scheduler: bool = True
    pool_min_size: Annotated[int, msgspec.Meta(ge=0)] = 1
    pool_max_size: Annotated[int, msgspec.Meta(ge=1)] = 10
    retry_attempts: Annotated[int, msgspec.Meta(ge=1, le=20)] = 4
    retry_timeout: timedelta = timedelta(seconds=30)
    retry_initial_wait: timedelta = timedelta(milliseconds=200)
    max_snapshot_drop: Share = DEFAULT_MAX_DROP  # per location (app/domain/truncation.py)
    max_feed_bytes: Annotated[int, msgspec.Meta(gt=0)] = 512 * 1024 * 1024
    admin_token: str | None = None
    # GET /v1/exports/google-local-inventory.tsv: this token (Bearer, or the password of
    # HTTP Basic, as Merchant Center's scheduled fetch sends) is accepted besides the admin's.
    export_token: str | None = None
    google_pickup_method: Literal["buy", "reserve", "ship to store", "not supported"] | None = None
    google_pickup_sla: (
        Literal[
            "same day",
            "next day",
            "2-day",
            "3-day",
            "4-day",
            "5-day",
            "6-day",
            "7-day",
            "multi-week",
        ]
        | None
    ) = None
    # How often stored badges that time alone can change are recomputed (docs/feedback.md).
    refresh_interval: timedelta = timedelta(seconds=60)
    # Public API edge: seconds browsers/CDNs may reuse a read; browser origins allowed
    # (comma-separated, e.g. "https://shop.example,https://www.shop.example"; none by
    # default); requests a minute per client IP (0: no limit).
    http_cache_max_age: Annotated[int, msgspec.Meta(ge=0, le=86400)] = 15
    cors_origins: str = ""
    rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=0)] = 600
    # Requests a minute per `app` API key (docs/managers.md), instead of the per-IP limit.
    app_rate_limit_per_minute: Annotated[int, msgspec.Meta(ge=1)] = 6000
    # Nightly reconciliation reports (docs/managers.md): one CSV per store written into
    # this folder every day at this UTC time (HH:MM); unset folder: no nightly export.
    report_export_dir: Path | None = None
    report_export_time: Annotated[str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] = (
        "02:30"
    )
    # The API's in-process cache of stores and stored badges: nothing older than this is
    # served (reconcilers' NOTIFY drops changed entries sooner; 0 disables the cache).
    badge_cache_max_age: timedelta = timedelta(seconds=5)
    # Operations (docs/operations.md): /ready answers 503 when a feed's last success is
    # older than this (unset: feeds do not affect readiness); the largest request body
    # accepted (JSON or CSV; 413 above it).
    ready_max_feed_age: timedelta | None = None
    max_request_body_bytes: Annotated[int, msgspec.Meta(gt=0)] = 10 * 1024 * 1024
    # Retention (docs/operations.md): POS events and feedback older than this that no
    # answer reads any more (before their pair's base, not its newest; old picks,
    # replaced shelf counts) and quarantined snapshots older than quarantine_retention
    # are deleted by an hourly job; 0 keeps them for good.
    event_retention: timedelta = timedelta(days=90)
    quarantine_retention: timedelta = timedelta(days=30)
    # The embedded PostgreSQL's settings over app/db/embedded.py's SERVER_SETTINGS
    # ("name=value,..."; ignored with DATABASE_URL).
    embedded_pg_settings: str = ""

    def __post_init__(self) -> None:
        if self.pool_min_size > self.pool_max_size:
            raise ValueError("pool_min_size must not exceed pool_max_size")
        if self.refresh_interval <= timedelta(0):
            raise ValueError("refresh_interval must be positive")
        if self.badge_cache_max_age < timedelta(0):
            raise ValueError("badge_cache_max_age must not be negative")
        if self.event_retention < timedelta(0) or (
            timedelta(0) < self.event_retention < MIN_EVENT_RETENTION
        ):
            raise ValueError(
                f"event_retention must be 0 (keep every event) or at least "
                f"{MIN_EVENT_RETENTION.days} days (the reconciliation report reads "
                f"{MIN_EVENT_RETENTION.days} days of sales)"
            )
        if self.quarantine_retention < timedelta(0):
            raise ValueError("quarantine_retention must not be negative (0 keeps them)")
        if self.ready_max_feed_age is not None and self.ready_max_feed_age <= timedelta(0):
            raise ValueError("ready_max_feed_age must be positive")
        try:
            parse_pg_settings(self.embedded_pg_settings)
        except ValueError as exc:
            raise ValueError(f"embedded_pg_settings: {exc}") from None
        for origin in self.cors_origin_list():
            if not _ORIGIN.match(origin):
                raise ValueError(
                    f"cors_origins: {origin!r} is not an origin (scheme://host[:port], no path)"
                )

    def embedded_pg_overrides(self) -> dict[str, str]:
        """``embedded_pg_settings`` as parameter → value (validated at start-up)."""
        return parse_pg_settings(self.embedded_pg_settings)

    def cors_origin_list(self) -> tuple[str, ...]:
        """The configured CORS origins, without blanks or trailing slashes."""
        return tuple(o.strip().rstrip("/") for o in self.cors_origins.split(",") if o.strip())


ENV_NAMES: dict[str, str] = {
    "database_url": "DATABASE_URL",
    "port": "PORT",
    "embedded_pg_settings": "EMBEDDED_PG_SETTINGS",
    **{
        name: f"AVAILABILITY_{name.upper()}"
        for name in Settings.__struct_fields__
        if name not in {"database_url", "port", "embedded_pg_settings"}
    },
}


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Build settings from ``AVAILABILITY_CONFIG`` (TOML), then env, then overrides."""
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    config_path = env.get("AVAILABILITY_CONFIG")
    if config_path:
        try:
            data.update(tomllib.loads(Path(config_path).read_text(encoding="utf-8")))
        except OSError as exc:
            raise SettingsError(
                f"AVAILABILITY_CONFIG={config_path}: cannot read: {exc.strerror}"
            ) from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(
                f"AVAILABILITY_CONFIG={config_path}: not valid TOML: {exc}"
            ) from None
    for field, var in ENV_NAMES.items():
        raw = env.get(var)
        if raw is not None and raw != "":
            data[field] = convert(raw, _field_type(field), where=f"{var}={raw!r}")
    data.update({k: v for k, v in overrides.items() if v is not None})
    return convert(data, Settings, where="settings")


def _field_type(field: str) -> Any:
    return get_type_hints(Settings, include_extras=True)[field]
