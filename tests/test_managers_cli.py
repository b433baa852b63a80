"""``availability keys`` and ``availability report``, and the nightly export job."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
import pytest
from litestar import Litestar

from app.commands import keys as keys_command
from app.commands import report as report_command
from app.settings import Settings
from reconcilers.report_export import export_reports, run_report_export, schedule_report_export
from tests.conftest import seed_database, serve_in_loop
from tests.managers_scenario import NOW, POLICY, seed

GOLDEN = Path(__file__).parent / "golden" / "reconciliation_S1.csv"


def test_keys_create_list_revoke(
    db_dsn: str,
    settings: Settings,
    capsys: pytest.CaptureFixture[str],
    make_app: Callable[..., Litestar],
) -> None:
    configured = msgspec.structs.replace(settings, database_url=db_dsn)
    ns = argparse.Namespace
    rc = keys_command.run(
        ns(action="create", role="store_manager", name="Lyon", store=["S1"]), configured
    )
    out, err = capsys.readouterr()
    key = out.strip().splitlines()[-1]  # (logs go to stderr once the CLI configured them)
    assert rc == 0 and key.startswith("sak_") and "cannot be shown again" in err
    key_id = key.split("_")[1]
    assert keys_command.run(ns(action="list"), configured) == 0
    listed = capsys.readouterr().out
    assert f"{key_id}\tstore_manager\tS1\tLyon\t" in listed and key not in listed
    bad = keys_command.run(ns(action="create", role="store_manager", name="x", store=[]),
                           configured)  # fmt: skip
    assert bad == 2 and "needs at least one store" in capsys.readouterr().err
    assert keys_command.run(ns(action="revoke", key_id=key), configured) == 0
    assert f"key {key_id} (store_manager, Lyon) revoked" in capsys.readouterr().err
    assert keys_command.run(ns(action="revoke", key_id="nope"), configured) == 2
    assert "no key with id 'nope'" in capsys.readouterr().err


def test_report_command_writes_the_golden_report(
    db_dsn: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    seed_database(db_dsn, seed)
    configured = msgspec.structs.replace(settings, database_url=db_dsn)
    out = tmp_path / "r.csv"
    # The command reports as of the real clock, so compare with today's report.
    assert report_command.run(argparse.Namespace(store="S1", out=out), configured) == 0
    err = capsys.readouterr().err
    assert f"report of S1 to {out}: check shelf and back room: " in err
    assert out.read_bytes().startswith(GOLDEN.read_bytes()[:300])  # BOM and header
    assert [p.name for p in tmp_path.iterdir()] == ["r.csv"]
    assert report_command.run(argparse.Namespace(store="NOPE", out=out), configured) == 2
    assert "unknown store 'NOPE'" in capsys.readouterr().err
    assert report_command.run(argparse.Namespace(store="bad id", out=out), configured) == 2


async def test_nightly_export_writes_every_store_and_a_summary(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, make_app: Callable[..., Litestar]
) -> None:
    await seed(pool)
    result = await export_reports(pool, tmp_path, now=NOW)
    day = tmp_path / "2026-11-23"
    assert result == {"stores": 2, "folder": str(day)}
    assert sorted(p.name for p in day.iterdir()) == [
        "reconciliation-S1-2026-11-23.csv",
        "reconciliation-S2-2026-11-23.csv",
        "summary-2026-11-23.csv",
    ]
    assert (day / "reconciliation-S1-2026-11-23.csv").read_bytes() == GOLDEN.read_bytes()
    summary = (day / "summary-2026-11-23.csv").read_text(encoding="utf-8-sig").splitlines()
    assert summary[0] == "store_id,suggested_action,items,priority"
    assert "S1,recount,3,6.5" in summary and "S2,recount,1,1.5" in summary
    # The same as the endpoint serves.
    guarded = msgspec.structs.replace(settings, admin_token="boot")
    async with serve_in_loop(make_app(settings=guarded, clock=lambda: NOW, policy=POLICY)) as c:
        served = await c.get("/v1/stores/S2/reconciliation.csv",
                             headers={"authorization": "Bearer boot"})  # fmt: skip
    assert served.content == (day / "reconciliation-S2-2026-11-23.csv").read_bytes()


async def test_the_job_is_scheduled_only_with_a_folder_and_never_raises(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    from apscheduler.schedulers.asyncio import AsyncIOScheduler

    scheduler = AsyncIOScheduler(timezone=UTC)
    schedule_report_export(scheduler, pool, settings, lambda: NOW)
    assert scheduler.get_jobs() == []
    assert await run_report_export(pool, settings, lambda: NOW) == "off"
    configured = msgspec.structs.replace(
        settings, report_export_dir=tmp_path / "reports", report_export_time="03:15"
    )
    schedule_report_export(scheduler, pool, configured, lambda: NOW)
    (job,) = scheduler.get_jobs()
    after = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    assert job.trigger.get_next_fire_time(None, after) == datetime(2026, 11, 24, 3, 15, tzinfo=UTC)
    assert await run_report_export(pool, configured, lambda: NOW) == "exported"
    assert (tmp_path / "reports" / "2026-11-23" / "summary-2026-11-23.csv").exists()
    # A folder that cannot be made: logged as failed, not raised.
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    broken = msgspec.structs.replace(settings, report_export_dir=blocked)
    assert await run_report_export(pool, broken, lambda: NOW) == "failed"
