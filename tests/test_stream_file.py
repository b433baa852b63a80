"""A streamed read lands whole or not at all (reports, exports)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from app.db.stream_file import stream_to


async def _chunks(conn: asyncpg.Connection, fail_after: int | None = None) -> AsyncIterator[bytes]:
    for i in range(3):
        if fail_after is not None and i == fail_after:
            raise RuntimeError("the read broke")
        # Inside the transaction stream_to opened: read-only.
        assert await conn.fetchval("SHOW transaction_read_only") == "on"
        yield f"line {i}\n".encode()


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


async def test_a_file_is_written_whole_and_counted(pool: asyncpg.Pool, tmp_path: Path) -> None:
    out = tmp_path / "feed.tsv"
    async with pool.acquire() as conn:
        size, lines = await stream_to(conn, _chunks(conn), out)
    assert out.read_bytes() == b"line 0\nline 1\nline 2\n"
    assert (size, lines) == (21, 3)
    assert _names(tmp_path) == ["feed.tsv"]


async def test_a_broken_read_keeps_the_old_file_and_leaves_no_temp(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    out = tmp_path / "feed.tsv"
    out.write_bytes(b"yesterday\n")
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="the read broke"):
            await stream_to(conn, _chunks(conn, fail_after=2), out)
    assert out.read_bytes() == b"yesterday\n"
    assert _names(tmp_path) == ["feed.tsv"]


async def test_dash_is_stdout(
    pool: asyncpg.Pool, tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    async with pool.acquire() as conn:
        await stream_to(conn, _chunks(conn), Path("-"))
    assert capsysbinary.readouterr().out == b"line 0\nline 1\nline 2\n"
    assert _names(tmp_path) == []
