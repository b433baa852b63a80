"""The engine on a world it was not built on: ``scripts/toy_world.py`` writes a dataset
from the contract alone (no back room, unrecorded theft, rare shelf counts), sharing no
code or parameter with the project's simulator. The scorer of issue 3 runs on datasets
made elsewhere; these are the guarantees that carried over there (docs/engine.md, "stop 29")."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.backtest.replay import replay

ROOT = Path(__file__).resolve().parent.parent


def toy_world(out: Path, *, seed: int, theft: float) -> Path:
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "toy_world.py"), str(out), "--seed", str(seed),
         "--theft", str(theft), "--stores", "5", "--skus", "60", "--days", "7"],
        check=True, capture_output=True,
    )  # fmt: skip
    return out


@pytest.mark.parametrize(("seed", "theft"), [(3, 0.03), (4, 0.03), (3, 0.005)])
def test_a_foreign_world_keeps_false_promises_far_below_the_book_rules(
    tmp_path: Path, seed: int, theft: float
) -> None:
    report, _ = replay(toy_world(tmp_path / "world", seed=seed, theft=theft))
    service = report.policies["service"]
    naive, static = report.policies["naive"], report.policies["static_buffer"]
    assert report.visits > 500
    assert service.promises > report.visits / 2  # it does promise
    assert service.false_promise_rate < naive.false_promise_rate / 2
    assert service.false_promise_rate <= static.false_promise_rate
    assert service.brier < static.brier
    if theft >= 0.03:  # where the record drifts, the confidence beats the book's 0/1 too
        assert service.brier < naive.brier
