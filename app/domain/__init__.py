"""The pure core: book position, safety buffer, badge, geo.

Nothing here does I/O or reads a clock; callers pass ``now``. An import-linter
contract (pyproject.toml) keeps drivers, clients and frameworks out.

The one exception is this file, at import: the hot modules named in ``NATIVE`` may
also run compiled to C by mypyc (``scripts/build_native.py``, run by ``make``). The
same source, the same results (tests/test_native.py), 1.4-1.6× the replay's speed.
The build in ``native/`` is used when its stamp matches these sources byte for byte
and ``AVAILABILITY_PURE`` is not set; otherwise, or without a C compiler, the
package is plain Python. A stale build is never used: edit a module and it runs as
written until the next build.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

# The modules mypyc compiles: the engine's per-event and per-visit path. None of them
# defines a msgspec Struct (mypyc drops a Struct's class options; those live in
# ``records``, ``model``, ``badge``, ``policy``).
NATIVE = (
    "pooled",
    "rhythm",
    "confidence",
    "loss",
    "shelf",
    "runout",
    "sales",
    "calibration",
    "ledger",
    "engine",
)
NATIVE_DIR = Path(__file__).with_name("native")
NATIVE_STAMP = NATIVE_DIR / "stamp"  # written last by a build: ``source_fingerprint``


def source_fingerprint(package_dir: Path = Path(__file__).parent) -> str:
    """What a build is of: the Python it was built for and each compiled module's source."""
    digest = hashlib.sha256(sys.implementation.cache_tag.encode())
    for name in NATIVE:
        digest.update(f"\n{name}\n".encode())
        digest.update((package_dir / f"{name}.py").read_bytes())
    return digest.hexdigest()


def native_fresh() -> bool:
    """Whether ``native/`` holds a build of exactly these sources (its stamp matches)."""
    try:
        stamp = NATIVE_STAMP.read_text().strip()
    except OSError:
        return False
    return stamp == source_fingerprint()


NATIVE_IN_USE = not os.environ.get("AVAILABILITY_PURE") and native_fresh()
if NATIVE_IN_USE:  # the build's modules are found before the sources beside this file
    __path__.insert(0, str(NATIVE_DIR))
