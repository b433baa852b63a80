"""Python's cyclic garbage collector paused around long batch computations.

A live recompute or a backtest replay allocates object after object while the
engine holds millions of long-lived containers; every collection those allocations
trigger walks them again (docs/scaling.md: 0.2 s of a 10k-event POS pull; ~10 % of
a replay). Reference counting still frees nearly everything (the engine's records
hold no cycles), so the collector is off for the block and runs as usual after it.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

_paused = [0, False]  # blocks inside collector_paused(), whether it was enabled before


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """The cyclic collector off for the block. Overlapping blocks (tasks) count: it is
    back on, if it was on, when the last ends."""
    if _paused[0] == 0:
        _paused[1] = gc.isenabled()
        gc.disable()
    _paused[0] += 1
    try:
        yield
    finally:
        _paused[0] -= 1
        if _paused[0] == 0 and _paused[1]:
            gc.enable()
