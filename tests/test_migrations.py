"""Migrations: applied once under a lock, recorded, and idempotent."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from app.db.migrate import MigrationError, check_server_version, discover, migrate, pending


async def test_migrated_template_is_up_to_date(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await pending(conn) == []
        versions = [
            r["version"]
            for r in await conn.fetch("SELECT version FROM schema_migration ORDER BY 1")
        ]
    assert versions == [m.version for m in discover()]


async def test_running_twice_changes_nothing(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        before = await conn.fetch("SELECT version, applied_at FROM schema_migration ORDER BY 1")
        assert await migrate(conn) == []
        after = await conn.fetch("SELECT version, applied_at FROM schema_migration ORDER BY 1")
    assert before == after


async def test_concurrent_migrations_on_empty_database_apply_once(pg_dsn: str) -> None:
    """Two processes starting at once: the advisory lock lets one apply, the other sees it done."""
    from tests.conftest import _admin, with_database

    name = "t_concurrent_migrate"
    await _admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"')
    dsn = with_database(pg_dsn, name)
    conns = [await asyncpg.connect(dsn) for _ in range(2)]
    try:
        results = await asyncio.gather(*(migrate(c) for c in conns))
        assert sorted(results, key=len) == [[], [m.version for m in discover()]]
        n = await conns[0].fetchval("SELECT count(*) FROM schema_migration")
        assert n == len(discover())
    finally:
        for c in conns:
            await c.close()
        await _admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_badge_writes_stay_hot_unless_the_unassessed_flag_flips(pool: asyncpg.Pool) -> None:
    """Migration 0010's partial index blocks HOT updates only when its generated flag
    changes: a badge write that keeps it (new confidence and evidence, another known
    state) stays on its page without index writes; turning a badge unknown does not."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO book_position (store_id, sku, badge_state, safety_buffer, evidence,"
            " computed_at) VALUES ('S1', 'K1', 'in_stock', 2, '\\x01', now())"
        )
        stats = (
            "SELECT pg_stat_get_xact_tuples_updated('book_position'::regclass),"
            " pg_stat_get_xact_tuples_hot_updated('book_position'::regclass)"
        )
        writes = [
            "UPDATE book_position SET confidence = 0.5, evidence = '\\x02'",
            "UPDATE book_position SET badge_state = 'low_stock', confidence = 0.4",
            "UPDATE book_position SET badge_state = 'unknown'",
            "UPDATE book_position SET evidence = NULL",
        ]
        seen = []
        for write in writes:
            await conn.execute(write)
            seen.append(tuple(await conn.fetchrow(stats)))
        flags = await conn.fetchval("SELECT unassessed FROM book_position")
    # updated, of them HOT: +1 HOT, +1 HOT, flag flips (not HOT), flag kept (HOT)
    assert seen == [(1, 1), (2, 2), (3, 2), (4, 3)]
    assert flags is True


def test_a_server_older_than_postgresql_13_is_refused_with_its_version() -> None:
    check_server_version(130000, "13.0")
    check_server_version(160002, "16.2")
    with pytest.raises(MigrationError, match=r"PostgreSQL 13 or later .* PostgreSQL 12\.19"):
        check_server_version(120019, "12.19")
