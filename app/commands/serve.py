"""``availability serve``: the API and the scheduled reconcilers.

Before anything starts (database, uvicorn), :func:`preflight` loads and checks
every file the service reads at start-up: the policy, the feeds file, and the
stores and products files (parsed only; loading them happens in the app's
lifespan). A bad file stops the command with one line naming the file and the
problem, and exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from app.commands import database
from app.domain.policy import Policy
from app.settings import Settings, SettingsError

T = TypeVar("T")
SHOWN_PROBLEMS = 5


class PreflightError(RuntimeError):
    """A start-up file is missing or wrong; the message is one line saying which and why."""


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the API and the scheduled reconcilers",
        description="Run the HTTP API and the feed reconcilers. Uses DATABASE_URL, or an embedded "
        "PostgreSQL in AVAILABILITY_DATA_DIR (default ./.data) when it is unset. The policy, "
        "feeds, stores and products files are checked first; a bad one stops the command "
        "(exit code 2) with a line naming it.",
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1; env AVAILABILITY_HOST)")
    p.add_argument("--port", type=int, help="port (default 8000; env PORT)")
    p.set_defaults(func=run, settings_overrides=("host", "port"))


def run(args: argparse.Namespace, settings: Settings) -> int:
    try:
        policy = preflight(settings)
    except PreflightError as exc:
        print(f"availability serve: {exc}", file=sys.stderr)
        return 2

    import uvicorn

    from app.api.app import create_app

    with database(settings) as dsn:
        app = create_app(settings, dsn=dsn, policy=policy)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0


def preflight(settings: Settings) -> Policy:
    """Load and check every start-up file; the policy, or :class:`PreflightError`."""
    import structlog

    from app.policy_file import load_policy
    from app.reference_data import parse_products_csv, parse_stores_csv
    from reconcilers.feeds_config import load_feeds

    policy = _step("policy file", settings.policy_file, load_policy)
    feeds = _step("feeds file", settings.feeds_file, load_feeds)
    stores = _csv("stores file", settings.stores_file, parse_stores_csv)
    products = _csv("products file", settings.products_file, parse_products_csv)
    structlog.get_logger(__name__).info(
        "serve.preflight_passed",
        policy_file=_name(settings.policy_file),
        feeds=len(feeds),
        stores=stores,
        products=products,
    )
    return policy


def _step(what: str, path: Path | None, load: Callable[[Path | None], T]) -> T:
    """``load(path)``; any failure becomes one line naming the file."""
    try:
        return load(path)
    except SettingsError as exc:  # the loaders' own messages name the file already
        raise PreflightError(_one_line(str(exc))) from None
    except Exception as exc:  # a shape the loader did not foresee: still one clear line
        raise PreflightError(
            _one_line(f"{what} {path}: cannot be loaded: {type(exc).__name__}: {exc}")
        ) from None


def _csv(what: str, path: Path | None, parse: Callable[..., list[Any]]) -> int | None:
    """Rows in the CSV at ``path`` (``None`` when not configured), or :class:`PreflightError`."""
    from app.reference_data import CsvRejected, decode_csv_bytes

    if path is None:
        return None
    try:
        text = decode_csv_bytes(path.read_bytes(), str(path))
        return len(parse(text, source=str(path)))
    except OSError as exc:
        raise PreflightError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None
    except CsvRejected as exc:
        shown = "; ".join(f"line {p.line}: {p.reason}" for p in exc.problems[:SHOWN_PROBLEMS])
        more = len(exc.problems) - SHOWN_PROBLEMS
        tail = f"; and {more} more" if more > 0 else ""
        raise PreflightError(_one_line(f"{what} {path}: {shown}{tail}")) from None


def _name(path: Path | None) -> str | None:
    return None if path is None else str(path)


def _one_line(message: str) -> str:
    return " ".join(line.strip() for line in message.splitlines())
