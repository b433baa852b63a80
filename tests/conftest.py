"""Real PostgreSQL for every test: one server per session, a migrated template
database, and a fresh clone of it per test (fast isolation, no mocks).

Set ``TEST_DATABASE_URL`` to use an existing server; otherwise a private server
from the ``pgserver`` wheel is started in a temporary folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import pytest
import uvicorn
from litestar import Litestar

from app.api.app import create_app
from app.db.feeds import upsert_feeds
from app.db.migrate import migrate
from app.settings import Settings, load_settings
from reconcilers.feeds_config import FeedConfig
from tests.feedserver import FeedServer


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def pg_dsn() -> Iterator[str]:
    """DSN of the server the whole session uses (its maintenance database)."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    tmp = Path(tempfile.mkdtemp(prefix="availability-test-pg-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


async def _admin(dsn: str, *statements: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for sql in statements:
            await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def template_db(pg_dsn: str) -> Iterator[str]:
    """A database migrated once, cloned for each test."""
    name = f"availability_tmpl_{os.getpid()}"

    async def build() -> None:
        await _admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(pg_dsn, name))
        try:
            await migrate(conn)
        finally:
            await conn.close()

    asyncio.run(build())
    yield name
    asyncio.run(_admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def db_dsn(pg_dsn: str, template_db: str) -> Iterator[str]:
    """DSN of a fresh, migrated database for one test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(pg_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    yield with_database(pg_dsn, name)
    asyncio.run(_admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
async def pool(db_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    p = await asyncpg.create_pool(
        db_dsn, min_size=1, max_size=5, server_settings={"timezone": "UTC"}
    )
    assert p is not None
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings for tests: no scheduler unless a test asks, fast retries, and a read-model
    bound long enough that a loaded CI box does not expire cached badges mid-test (tests
    that count database loads would otherwise depend on timing; expiry itself is tested
    with a fake monotonic clock in tests/test_read_model.py)."""
    return load_settings(
        {},
        data_dir=tmp_path / "data",
        scheduler=False,
        badge_cache_max_age=timedelta(seconds=120),
        retry_attempts=3,
        retry_initial_wait=0.01,
        retry_timeout=2,
        log_format="console",
    )


def with_feeds_file(
    settings: Settings, tmp_path: Path, *feeds: dict[str, str | float], **changes: Any
) -> Settings:
    """``settings`` reading ``feeds`` (each one ``[[feeds]]`` table: name, kind, url, ...)
    from ``tmp_path/feeds.toml``; ``changes`` replace other fields."""
    lines: list[str] = []
    for feed in feeds:
        lines += ["[[feeds]]", *(f"{key} = {json.dumps(value)}" for key, value in feed.items())]
    path = tmp_path / "feeds.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return msgspec.structs.replace(settings, feeds_file=path, **changes)


async def stock_in_force(
    db: asyncpg.Pool | asyncpg.Connection,
    quantities: Sequence[str] = ("on_hand", "reserved", "in_transit"),
    *,
    then: str = "",
) -> list[tuple[Any, ...]]:
    """Every warehouse_stock row as (location_id, sku, *quantities, as_of[, then]) by location
    and sku. A row stores its as_of only when it is not its location's: the as_of here is the
    one in force, read through the location (``then``: a further column, e.g. its
    ``wl.snapshot_id``)."""
    rows = await db.fetch(
        f"SELECT ws.location_id, ws.sku, {', '.join(quantities)}, COALESCE(ws.as_of, wl.as_of)"
        + (f", {then}" if then else "")
        + " FROM warehouse_stock ws JOIN warehouse_location wl USING (location_id) ORDER BY 1, 2"
    )
    return [tuple(r) for r in rows]


def seed_database(dsn: str, seed: Callable[[asyncpg.Pool], Awaitable[None]]) -> None:
    """Run an async ``seed`` against the database at ``dsn``, for tests that then call a
    synchronous command (the CLI opens its own pool)."""

    async def run() -> None:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=1)
        try:
            await seed(pool)
        finally:
            await pool.close()

    asyncio.run(run())


@contextlib.asynccontextmanager
async def serve_in_loop(
    app: Litestar, *, headers: dict[str, str] | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and talk to it over ASGI in the test's own event loop,
    so the test and the app can share one asyncpg pool. ``headers`` go with every
    request (``headers=admin_auth`` for a client with an admin key)."""
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://testserver", headers=headers
        ) as client:
            yield client


@pytest.fixture
def make_app(pool: asyncpg.Pool, settings: Settings) -> Callable[..., Litestar]:
    """``make_app(**create_app_kwargs)`` bound to this test's pool and settings."""

    def build(**kwargs: Any) -> Litestar:
        kwargs.setdefault("pool", pool)
        return create_app(kwargs.pop("settings", settings), **kwargs)

    return build


async def create_api_key(pool: asyncpg.Pool, role: str, *stores: str) -> dict[str, str]:
    """A new API key of ``role`` in the test's database, as request headers."""
    from app.clock import utc_now
    from app.db import keys as keys_db

    async with pool.acquire() as conn:
        new = await keys_db.create_key(
            conn, name=f"test {role}", role=role, store_ids=stores, now=utc_now()
        )
    return {"authorization": f"Bearer {new.secret}"}


@pytest.fixture
async def admin_auth(pool: asyncpg.Pool) -> dict[str, str]:
    """Headers carrying a fresh admin API key: access control is always on, so tests of
    guarded endpoints send one (``serve_in_loop(app, headers=admin_auth)``)."""
    return await create_api_key(pool, "admin")


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    """A scriptable HTTP server on 127.0.0.1 (``tests/feedserver.py``)."""
    with FeedServer() as server:
        yield server


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for a puller to fetch feeds with (from ``feed_server``)."""
    async with httpx.AsyncClient() as c:
        yield c


@pytest.fixture
async def db(pool: asyncpg.Pool, feed: FeedConfig) -> asyncpg.Pool:
    """The test's pool with the test module's ``feed`` fixture in the feed table."""
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [feed])
    return pool


async def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Until ``condition()`` holds, polled every 20 ms; fails after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def _restore_logging_config() -> Iterator[None]:
    """A test that runs the CLI configures structlog to print to pytest's captured
    stderr, which is closed after that test; put the previous config back so later
    log calls do not write to a closed file."""
    import logging

    import structlog

    saved = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    structlog.configure(**saved)
    root.handlers[:] = handlers
    root.setLevel(level)


@contextlib.contextmanager
def uvicorn_in_thread(app: Litestar, *, start_timeout: float = 30) -> Iterator[str]:
    """The app under uvicorn on an ephemeral port of 127.0.0.1, in a thread of its own
    (for clients that block: a browser, schemathesis); yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
