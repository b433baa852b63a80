"""The engine's hot modules compiled by mypyc (``app.domain.NATIVE``): used only while
fresh, and the same answers as the plain Python they are compiled from."""

from __future__ import annotations

import importlib
import inspect
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

import app.domain as domain
from app.backtest.params import profile
from app.backtest.simulator import simulate
from app.backtest.writer import write_dataset

ROOT = Path(__file__).resolve().parent.parent
REPLAY = """
import sys
import app.domain
from app.backtest.replay import replay
import msgspec
report, _ = replay(sys.argv[1])
sys.stdout.write(f"{app.domain.NATIVE_IN_USE}\\n" + msgspec.json.encode(report).decode())
"""
needs_build = pytest.mark.skipif(
    not domain.native_fresh(), reason="no native build (scripts/build_native.py: no C compiler?)"
)


def test_a_build_is_of_its_sources_byte_for_byte(tmp_path: Path) -> None:
    """The stamp a build records changes with any compiled module's source, so an edited
    module never runs from a build of its old text."""
    package = Path(domain.__file__).parent
    for name in domain.NATIVE:
        shutil.copy(package / f"{name}.py", tmp_path / f"{name}.py")
    assert domain.source_fingerprint(tmp_path) == domain.source_fingerprint()
    engine = tmp_path / "engine.py"
    engine.write_text(engine.read_text() + "\n# edited\n")
    assert domain.source_fingerprint(tmp_path) != domain.source_fingerprint()


def test_no_compiled_module_defines_a_struct() -> None:
    """mypyc drops a Struct's class options (frozen, kw_only, gc) in a module it
    compiles, so the Structs live elsewhere (``app.domain.records``, ``model``)."""
    for name in domain.NATIVE:
        module = importlib.import_module(f"app.domain.{name}")
        defined = [
            cls
            for _, cls in inspect.getmembers(module, inspect.isclass)
            if issubclass(cls, msgspec.Struct) and cls.__module__ == module.__name__
        ]
        assert defined == [], f"app.domain.{name} defines {defined}"


@needs_build
def test_a_fresh_build_is_what_runs() -> None:
    if os.environ.get("AVAILABILITY_PURE"):
        assert not domain.NATIVE_IN_USE
        return
    assert domain.NATIVE_IN_USE
    for name in domain.NATIVE:
        path = Path(importlib.import_module(f"app.domain.{name}").__file__ or "")
        assert path.suffix == ".so" and domain.NATIVE_DIR in path.parents, path


@needs_build
def test_compiled_and_plain_python_replay_to_the_same_report(tmp_path: Path) -> None:
    """The same dataset replayed by the compiled engine and by the plain one: the same
    report, byte for byte (the backtest is where every learner and answer is exercised)."""
    start = datetime(2026, 11, 2, tzinfo=UTC)
    ds = simulate(stores=3, skus=25, days=4, seed=11, start=start, params=profile("default"))
    write_dataset(ds, tmp_path / "ds", generator={"name": "test"})
    reports = {}
    for pure in ("", "1"):
        env = {**os.environ, "AVAILABILITY_PURE": pure, "PYTHONPATH": str(ROOT)}
        run = subprocess.run(
            [sys.executable, "-c", REPLAY, str(tmp_path / "ds")],
            capture_output=True, text=True, env=env, cwd=ROOT, check=True, timeout=300,
        )  # fmt: skip
        native, report = run.stdout.split("\n", 1)
        assert native == str(not pure)
        reports[pure] = report
    assert reports[""] == reports["1"]
    assert '"visits":' in reports[""]
