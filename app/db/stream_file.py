"""A read streamed to a file whole or not at all: one consistent snapshot, a temp file renamed."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from app.db import Connection


async def stream_to(conn: Connection, chunks: AsyncIterator[bytes], out: Path) -> tuple[int, int]:
    """Write ``chunks``, read inside one read-only repeatable-read transaction on ``conn``,
    to ``out`` (``-``: stdout) through a temporary file renamed at the end, so a reader never
    sees half a file and a failure leaves none; the bytes and lines written."""
    tmp = None if str(out) == "-" else out.with_name(f".{out.name}.tmp")
    size = lines = 0
    try:
        target = sys.stdout.buffer if tmp is None else tmp.open("wb")
        try:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                async for chunk in chunks:
                    target.write(chunk)
                    size += len(chunk)
                    lines += chunk.count(b"\n")
        finally:
            if tmp is None:
                target.flush()
            else:
                target.close()
        if tmp is not None:
            os.replace(tmp, out)
    except BaseException:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        raise
    return size, lines
