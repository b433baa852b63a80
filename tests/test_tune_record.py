"""One recorded pass re-scores any candidate exactly as a full replay under it would; the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.backtest.params import profile
from app.backtest.replay import replay
from app.backtest.tune import Candidate, to_policy
from app.backtest.tune_record import Recording, record_visits, rescored_promise
from app.backtest.writer import write_dataset
from app.cli import main as cli_main
from app.domain.policy import BufferRule, Policy
from app.policy_file import load_policy

START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.backtest.simulator import simulate

    root = tmp_path_factory.mktemp("tune") / "ds"
    ds = simulate(stores=4, skus=30, days=6, seed=3, start=START, params=profile("default"))
    write_dataset(ds, root, generator={"name": "test"})
    return root


@pytest.fixture(scope="module")
def recorded(dataset: Path) -> Recording:
    return record_visits(dataset)


def test_every_visit_is_recorded_as_the_replay_answered_it(
    dataset: Path, recorded: Recording
) -> None:
    report, stats = replay(dataset)
    service = report.policies["service"]
    assert len(recorded.visits) == stats.visits > 100
    assert sum(v.promise for v in recorded.visits) == service.promises > 0
    assert sum(v.promise and not v.available for v in recorded.visits) == service.false_promises


@pytest.mark.parametrize(
    "candidate",
    [Candidate(0.8, 1), Candidate(0.95, 0), Candidate(0.6, 3, (("grocery", 0), ("toys", 5)))],
)
def test_rescoring_a_candidate_equals_replaying_under_it(
    dataset: Path, recorded: Recording, candidate: Candidate
) -> None:
    """The engine learns the same whatever the threshold and buffer: one pass is enough."""
    policy = to_policy(candidate, Policy())
    report, _ = replay(dataset, policy=policy)
    promised = [
        v
        for v in recorded.visits
        if rescored_promise(v, candidate.confidence_threshold, candidate.buffer(v.category))
    ]
    service = report.policies["service"]
    assert len(promised) == service.promises
    assert sum(not v.available for v in promised) == service.false_promises


def test_a_base_policy_with_rules_is_checked_visit_by_visit(dataset: Path) -> None:
    base = Policy(confidence_threshold=0.85, buffers=(BufferRule(units=4, category="grocery"),))
    rec = record_visits(dataset, policy=base)
    report, _ = replay(dataset, policy=base)
    assert sum(v.promise for v in rec.visits) == report.policies["service"].promises


def _tune(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = cli_main(["tune", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_writes_a_policy_that_loads_and_keeps_the_target_on_fit(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report = tmp_path / "policy.toml", tmp_path / "tune.json"
    rc, stdout, _ = _tune(
        capsys, str(dataset), "--max-false-promise-rate", "0.08",
        "--out", str(out), "--report", str(report), "--min-category-visits", "50",
    )  # fmt: skip
    assert rc == 0, stdout
    policy = load_policy(out)
    data = json.loads(report.read_text())
    chosen = data["chosen"]
    assert chosen["fit"]["false_promise_rate"] <= 0.08
    assert policy.confidence_threshold == chosen["confidence_threshold"]
    assert policy.safety_buffer == chosen["safety_buffer"]
    assert {r.category: r.units for r in policy.buffers} == chosen["category_buffers"]
    assert len(data["candidates"]) > 20
    assert all(c["fit"]["visits"] + c["validation"]["visits"] > 100 for c in data["candidates"])
    header = out.read_text().split("\n\n")[0]
    assert f"# dataset: {dataset}" in header and "<= 8.00%" in header
    assert "# fit:" in header and "# validation:" in header
    assert "chosen: " in stdout and "validation" in stdout
    # The written policy, replayed, gives the fit+validation promises the tuner counted.
    replayed, _ = replay(dataset, policy=policy)
    promises = chosen["fit"]["promises"] + chosen["validation"]["promises"]
    assert replayed.policies["service"].promises == promises


def test_cli_stricter_target_never_more_coverage(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    coverage = []
    for target in ("0.02", "0.05", "0.15"):
        report = tmp_path / f"{target}.json"
        rc, _, _ = _tune(capsys, str(dataset), "--max-false-promise-rate", target, "--report", str(report))  # fmt: skip
        chosen = json.loads(report.read_text())["chosen"]
        assert (rc == 0) == (chosen is not None)
        coverage.append(0.0 if chosen is None else chosen["fit"]["coverage"])
    assert coverage == sorted(coverage) and coverage[-1] > 0.0


def test_cli_missing_dataset_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = _tune(capsys, str(tmp_path / "nope"), "--max-false-promise-rate", "0.01")
    assert rc == 2
    assert "nope does not exist" in err
    rc, _, err = _tune(capsys, str(tmp_path), "--max-false-promise-rate", "0.01")
    assert rc == 2 and "no manifest.json" in err


@pytest.mark.parametrize("target", ["0", "1", "1.5", "-0.1", "nan", "one"])
def test_cli_target_outside_the_unit_interval_is_a_clear_error(
    dataset: Path, target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        cli_main(["tune", str(dataset), "--max-false-promise-rate", target])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--max-false-promise-rate" in err
    assert "between 0 and 1" in err or "not a number" in err


def test_cli_output_directory_must_exist(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc, _, err = _tune(
        capsys, str(dataset), "--max-false-promise-rate", "0.05",
        "--out", str(tmp_path / "missing" / "p.toml"),
    )  # fmt: skip
    assert rc == 2 and "does not exist" in err
