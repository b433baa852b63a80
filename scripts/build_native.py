"""Compile the engine's hot modules with mypyc into ``app/domain/native/``.

    .venv/bin/python scripts/build_native.py [--force] [--require]

``make test`` and ``make demo`` run it. Up to date (the stamp matches the sources):
nothing to do. No C compiler or no mypyc: it says so and exits 0, and the package
stays plain Python (``--require`` makes that an error). The modules are those of
``app.domain.NATIVE``; ``app/domain/__init__.py`` uses the build only while its
stamp matches the sources. Builds in a scratch copy of ``app/``, so nothing but
``app/domain/native/`` is written in the tree (~40 s on two cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ["AVAILABILITY_PURE"] = "1"  # read the sources' fingerprint, not a build's
from app.domain import (  # noqa: E402
    NATIVE,
    NATIVE_DIR,
    NATIVE_STAMP,
    native_fresh,
    source_fingerprint,
)

SETUP = """
import sys
from mypyc.build import mypycify
from setuptools import setup

paths = [f"app/domain/{name}.py" for name in sys.argv[1].split(",")]
setup(
    name="availability-native",
    py_modules=[],
    packages=[],
    ext_modules=mypycify(paths, opt_level="3", group_name="app.domain.native"),
    script_args=["build_ext", "--build-lib", sys.argv[2], "--build-temp", sys.argv[3]],
)
"""


def compiler() -> str | None:
    """The C compiler extensions are built with, if there is one."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    return shutil.which(cc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--force", action="store_true", help="build even when up to date")
    ap.add_argument("--require", action="store_true", help="fail when it cannot build")
    args = ap.parse_args()
    if not args.force and native_fresh():
        print("native: up to date")
        return 0
    missing = []
    if compiler() is None:
        missing.append("a C compiler (e.g. apt install gcc)")
    try:
        import mypyc  # noqa: F401  (part of mypy, a dev dependency)
    except ImportError:
        missing.append("mypyc (pip install mypy)")
    if missing:
        print(f"native: not built, no {' and no '.join(missing)}; the engine runs as plain Python")
        return 1 if args.require else 0
    with tempfile.TemporaryDirectory(prefix="availability-native-") as tmp:
        work = Path(tmp)
        shutil.copytree(ROOT / "app", work / "app",
                        ignore=shutil.ignore_patterns("native", "__pycache__", "*.so"))  # fmt: skip
        print(f"native: compiling {len(NATIVE)} modules with mypyc ...", flush=True)
        run = subprocess.run(
            [sys.executable, "-c", SETUP, ",".join(NATIVE), str(work / "lib"), str(work / "tmp")],
            cwd=work, capture_output=True, text=True, check=False,
        )  # fmt: skip
        if run.returncode != 0:
            print(run.stdout[-4000:], run.stderr[-4000:], sep="\n", file=sys.stderr)
            print("native: the build failed; the engine runs as plain Python", file=sys.stderr)
            return 1 if args.require else 0
        built = sorted((work / "lib" / "app" / "domain").glob("*.so"))
        shutil.rmtree(NATIVE_DIR, ignore_errors=True)
        NATIVE_DIR.mkdir()
        for so in built:
            shutil.copy2(so, NATIVE_DIR / so.name)
        # last: a build without its stamp is never used (the sources as they were copied)
        NATIVE_STAMP.write_text(source_fingerprint(work / "app" / "domain") + "\n")
    print(f"native: built {len(built)} extension modules into {NATIVE_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
