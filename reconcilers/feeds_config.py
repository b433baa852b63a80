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
    max_drop = 0.5               # warehouse only: largest allowed fall in row count
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

import msgspec

from app.domain.model import Identifier
from app.settings import SettingsError, convert


class FeedConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    name: Identifier
    kind: Literal["pos", "warehouse"]
    url: Annotated[str, msgspec.Meta(pattern=r"^https?://")]
    interval: timedelta = timedelta(seconds=60)
    timeout: timedelta = timedelta(seconds=10)
    auth_header: str | None = None
    auth_env: str | None = None
    max_drop: Annotated[float, msgspec.Meta(ge=0, le=1)] | None = None

    def __post_init__(self) -> None:
        if self.interval <= timedelta(0) or self.timeout <= timedelta(0):
            raise ValueError("interval and timeout must be positive")
        if (self.auth_header is None) != (self.auth_env is None):
            raise ValueError("auth_header and auth_env go together")

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
        return {self.auth_header: value}


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
    return parse_feeds(data, where=f"feeds file {path}")
