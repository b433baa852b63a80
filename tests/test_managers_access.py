"""API keys and roles, store scoping, and counts uploaded from a manager's spreadsheet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar
from structlog.testing import capture_logs

from app.db import keys as keys_db
from app.settings import Settings
from tests.conftest import serve_in_loop
from tests.managers_scenario import NOW, POLICY, seed

CSV = {"content-type": "text/csv"}


async def make_key(pool: asyncpg.Pool, role: str, *stores: str) -> dict[str, str]:
    async with pool.acquire() as conn:
        new = await keys_db.create_key(conn, name=f"test {role}", role=role, store_ids=stores,
                                       now=NOW)  # fmt: skip
    return {"authorization": f"Bearer {new.secret}"}


@pytest.fixture
def app(make_app: Callable[..., Litestar]) -> Litestar:
    return make_app(clock=lambda: NOW, policy=POLICY)


async def state(pool: asyncpg.Pool) -> dict[str, list[Any]]:
    """Everything an upload could change."""
    return {
        table: [tuple(r.values()) for r in await pool.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")]
        for table in ("feedback", "manager_count", "book_position", "pos_event")
    }


# -- keys ------------------------------------------------------------------------------


async def test_a_key_is_shown_once_and_stored_as_a_hash(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        new = await keys_db.create_key(conn, name="Lyon", role="store_manager",
                                       store_ids=["S1", "S1", "S2"], now=NOW)  # fmt: skip
        row = await conn.fetchrow("SELECT * FROM api_key WHERE key_id = $1", new.key.key_id)
        assert row is not None
        assert new.secret.startswith(f"sak_{new.key.key_id}_")
        # The random part follows the prefix whole (it may hold "_" itself).
        random_part = new.secret.removeprefix(f"sak_{new.key.key_id}_")
        assert len(random_part) >= 20
        assert new.secret not in str(dict(row)) and random_part not in str(dict(row))
        assert bytes(row["secret_hash"]) == keys_db.hash_key(new.secret)
        assert new.key.store_ids == ("S1", "S2")
        assert (await keys_db.verify_key(conn, new.secret, now=NOW)) == new.key
        used = await conn.fetchval("SELECT last_used_at FROM api_key")
        assert used == NOW
        # One character off, and a well-formed key that was never made: no.
        wrong = new.secret[:-1] + ("A" if new.secret[-1] != "A" else "B")
        assert await keys_db.verify_key(conn, wrong, now=NOW) is None
        assert await keys_db.verify_key(conn, "sak_aaaaaaaaaaaa_" + "x" * 43, now=NOW) is None
        revoked = await keys_db.revoke_key(conn, new.key.key_id, now=NOW + timedelta(hours=1))
        assert revoked.revoked_at == NOW + timedelta(hours=1)
        assert await keys_db.verify_key(conn, new.secret, now=NOW) is None
        with pytest.raises(keys_db.KeyRefused, match="no key with id 'nope'"):
            await keys_db.revoke_key(conn, "nope", now=NOW)


@pytest.mark.parametrize(
    ("role", "stores", "message"),
    [
        ("store_manager", [], "needs at least one store"),
        ("ingest", ["S1"], "only store_manager keys are bound to stores"),
        ("owner", [], "role 'owner' is not one of"),
        ("store_manager", ["bad store"], "store 'bad store' is not an identifier"),
    ],
)
async def test_bad_key_requests_are_refused(
    pool: asyncpg.Pool, role: str, stores: list[str], message: str
) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(keys_db.KeyRefused, match=message):
            await keys_db.create_key(conn, name="x", role=role, store_ids=stores, now=NOW)
        assert await conn.fetchval("SELECT count(*) FROM api_key") == 0


# -- roles and stores -----------------------------------------------------------------


async def test_every_endpoint_checks_role_and_store(app: Litestar, pool: asyncpg.Pool) -> None:
    await seed(pool)
    m1 = await make_key(pool, "store_manager", "S1")
    m2 = await make_key(pool, "store_manager", "S2")
    ingest = await make_key(pool, "ingest")
    app_key = await make_key(pool, "app")
    admin = await make_key(pool, "admin")
    count = "sku,counted_qty,counted_at\nSKU-DIS,3,2026-11-23T11:30:00Z\n"
    feedback = {"feedback": [{"observed_at": "2026-11-23T11:00:00Z", "store_id": "S1",
                              "sku": "SKU-SP", "kind": "pick_found", "qty": 1}]}  # fmt: skip
    before = await state(pool)

    async def codes(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, int]:
        calls = {
            "report S1": client.get("/v1/stores/S1/reconciliation.csv", headers=headers),
            "report S2": client.get("/v1/stores/S2/reconciliation.csv", headers=headers),
            "summary S2": client.get("/v1/stores/S2/reconciliation/summary", headers=headers),
            "counts S2": client.post(
                "/v1/stores/S2/counts", content=count, headers={**headers, **CSV}
            ),
            "feedback": client.post("/v1/feedback", json=feedback, headers=headers),
            "store put": client.put(
                "/v1/stores/S3", json={"name": "x", "lat": 1, "lon": 2}, headers=headers
            ),
            "badge": client.get("/v1/stores/S1/availability/SKU-OK", headers=headers),
        }
        return {name: (await call).status_code for name, call in calls.items()}

    async with serve_in_loop(app) as client:
        anonymous = await codes(client, {})
        manager = await codes(client, m1)
        partner = await codes(client, app_key)
        bogus = await codes(client, {"authorization": "Bearer sak_aaaaaaaaaaaa_" + "x" * 43})
        lowercase = await client.get("/v1/stores/s1/reconciliation.csv", headers=m1)
        r401 = await client.get("/v1/stores/S1/reconciliation.csv")
        r403 = await client.get("/v1/stores/S2/reconciliation.csv", headers=m1)
        assert (await state(pool)) == before  # no refused call wrote anything
        other = await codes(client, m2)
        ingester = await codes(client, ingest)
        root = await codes(client, admin)
    assert anonymous == {"report S1": 401, "report S2": 401, "summary S2": 401, "counts S2": 401,
                         "feedback": 401, "store put": 401, "badge": 200}  # fmt: skip
    assert manager == {"report S1": 200, "report S2": 403, "summary S2": 403, "counts S2": 403,
                       "feedback": 403, "store put": 403, "badge": 200}  # fmt: skip
    assert other == {"report S1": 403, "report S2": 200, "summary S2": 200, "counts S2": 200,
                     "feedback": 403, "store put": 403, "badge": 200}  # fmt: skip
    assert ingester == {"report S1": 403, "report S2": 403, "summary S2": 403, "counts S2": 403,
                        "feedback": 200, "store put": 403, "badge": 200}  # fmt: skip
    assert partner == {"report S1": 403, "report S2": 403, "summary S2": 403, "counts S2": 403,
                       "feedback": 403, "store put": 403, "badge": 200}  # fmt: skip
    assert set(bogus.values()) == {403, 200} and bogus["badge"] == 200
    assert root == {"report S1": 200, "report S2": 200, "summary S2": 200, "counts S2": 200,
                    "feedback": 200, "store put": 201, "badge": 200}  # fmt: skip
    assert lowercase.status_code == 403  # store ids are exact: s1 is not S1
    assert r401.json() == {
        "status": 401,
        "error": "API key required (role admin or store_manager): send "
        "'Authorization: Bearer <key>'",
    }
    assert r403.json()["error"] == "this key may not access store 'S2' (it is bound to S1)"


async def test_store_ids_in_the_body_must_be_the_urls(app: Litestar, pool: asyncpg.Pool) -> None:
    await seed(pool)
    m1 = await make_key(pool, "store_manager", "S1")
    admin = await make_key(pool, "admin")
    body = (
        "store_id,sku,counted_qty,counted_at\n"
        "S1,SKU-DIS,3,2026-11-23T11:30:00Z\n"
        "S2,SKU-DIS,1,2026-11-23T11:30:00Z\n"
    )
    before = await state(pool)
    async with serve_in_loop(app) as client:
        as_manager = await client.post("/v1/stores/S1/counts", content=body, headers={**m1, **CSV})
        as_admin = await client.post("/v1/stores/S1/counts", content=body,
                                     headers={**admin, **CSV})  # fmt: skip
    assert as_manager.status_code == 403
    assert as_manager.json()["error"] == "this key may not access store 'S2' (it is bound to S1)"
    assert as_admin.status_code == 422
    assert as_admin.json()["detail"]["problems"] == [
        {"line": 3, "reason": "store_id 'S2' is not the store of the URL ('S1')"}
    ]
    assert await state(pool) == before


async def test_closed_on_a_fresh_install_until_a_credential_is_sent(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, settings: Settings
) -> None:
    await seed(pool)
    url = "/v1/stores/S1/reconciliation/summary"
    async with serve_in_loop(make_app(clock=lambda: NOW, policy=POLICY)) as client:
        assert (await client.get(url)).status_code == 401  # no token, no key: still closed
        admin = await make_key(pool, "admin")  # what `availability keys create` does
        assert (await client.get(url, headers=admin)).status_code == 200
    await pool.execute("UPDATE api_key SET revoked_at = $1", NOW)
    async with serve_in_loop(make_app(clock=lambda: NOW, policy=POLICY)) as client:
        assert (await client.get(url)).status_code == 401  # revoking all keys opens nothing
        assert (await client.get(url, headers=admin)).status_code == 403
    booted = msgspec.structs.replace(settings, admin_token="boot")
    async with serve_in_loop(make_app(settings=booted, clock=lambda: NOW, policy=POLICY)) as c:
        assert (await c.get(url, headers={"authorization": "Bearer boot"})).status_code == 200


async def test_app_keys_get_their_own_higher_rate_limit(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, settings: Settings
) -> None:
    await seed(pool)
    partner = await make_key(pool, "app")
    limited = msgspec.structs.replace(settings, rate_limit_per_minute=2,
                                      app_rate_limit_per_minute=5)  # fmt: skip
    url = "/v1/stores/S1/availability/SKU-OK"
    async with serve_in_loop(make_app(settings=limited, clock=lambda: NOW, policy=POLICY)) as c:
        anonymous = [(await c.get(url)).status_code for _ in range(3)]
        with_key = [(await c.get(url, headers=partner)).status_code for _ in range(6)]
        last = await c.get(url, headers=partner)
    assert anonymous == [200, 200, 429]
    assert with_key == [200] * 5 + [429]  # counted per key, not with the IP's requests
    assert "the limit is 5 a minute per app key" in last.json()["error"]


# -- counts ----------------------------------------------------------------------------


async def test_counts_apply_once_and_say_what_changed(app: Litestar, pool: asyncpg.Pool) -> None:
    await seed(pool)
    m1 = await make_key(pool, "store_manager", "S1")
    body = (
        "\ufeffsku;counted_qty;counted_at;note\r\n"
        "SKU-DIS;2;2026-11-23T11:30:00Z;shelf and back room\r\n"
        "SKU-PH;0;2026-11-23T12:30:00+01:00;'=not a formula\r\n"
        "SKU-PH;0;2026-11-23T12:30:00+01:00;'=not a formula\r\n"
        "\r\n"
        "SKU-NEW;5;2026-11-23T11:00:00Z;\r\n"
    )
    async with serve_in_loop(app) as client:
        with capture_logs() as logs:
            first = await client.post("/v1/stores/S1/counts", content=body.encode(),
                                      headers={**m1, **CSV})  # fmt: skip
        after_first = await state(pool)
        again = await client.post("/v1/stores/S1/counts", content=body.encode(),
                                  headers={**m1, **CSV})  # fmt: skip
        badge = await client.get("/v1/stores/S1/availability/SKU-PH")
    assert first.status_code == 200, first.text
    result = first.json()
    assert (result["received"], result["stored"], result["duplicates"]) == (3, 3, 0)
    assert result["records_changed"] == 3
    changes = {c["sku"]: c for c in result["changes"]}
    assert changes["SKU-DIS"] == {"sku": "SKU-DIS", "book_before": 9, "book_after": 2,
                                  "change": -7, "badge_before": "in_stock",
                                  "badge_after": "unavailable"}  # fmt: skip
    assert (changes["SKU-PH"]["book_before"], changes["SKU-PH"]["book_after"]) == (6, 0)
    assert (changes["SKU-NEW"]["book_before"], changes["SKU-NEW"]["book_after"]) == (None, 5)
    assert (result["units_added"], result["units_removed"]) == (5, 13)
    notes = await pool.fetch("SELECT sku, note, key_id FROM manager_count ORDER BY sku")
    assert [(r["sku"], r["note"]) for r in notes] == [
        ("SKU-DIS", "shelf and back room"),
        ("SKU-NEW", None),
        ("SKU-PH", "=not a formula"),
    ]
    assert all(r["key_id"] == m1["authorization"].split("_")[1] for r in notes)
    assert [e["event"] for e in logs if e["event"].startswith("counts.")] == ["counts.applied"]
    assert badge.json()["state"] == "unavailable"
    # The same file again: nothing stored, nothing changed.
    assert again.status_code == 200
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 3)
    assert (again.json()["records_changed"], again.json()["changes"]) == (0, [])
    assert await state(pool) == after_first


async def test_a_bad_file_applies_nothing_and_lists_every_line(
    app: Litestar, pool: asyncpg.Pool
) -> None:
    await seed(pool)
    m1 = await make_key(pool, "store_manager", "S1")
    body = (
        "sku,counted_qty,counted_at,note\n"
        "SKU-DIS,2,2026-11-23T11:30:00Z,fine\n"
        "SKU-PH,-1,2026-11-23T11:30:00Z,\n"
        "bad sku,two,2026-11-23 11:30,\n"
        "SKU-OK,3,2026-11-24T11:30:00Z\n"
        "SKU-DIS,4,2026-11-23T11:30:00Z,same time other qty\n"
    )
    before = await state(pool)
    async with serve_in_loop(app) as client:
        r = await client.post("/v1/stores/S1/counts", content=body, headers={**m1, **CSV})
        as_csv = await client.post("/v1/stores/S1/counts", content=body,
                                   headers={**m1, **CSV, "accept": "text/csv"})  # fmt: skip
        header = await client.post("/v1/stores/S1/counts", content="sku,qty\nA,1\n",
                                   headers={**m1, **CSV})  # fmt: skip
        empty = await client.post("/v1/stores/S1/counts", content="sku,counted_qty,counted_at\n",
                                  headers={**m1, **CSV})  # fmt: skip
        json_body = await client.post("/v1/stores/S1/counts", json={"sku": "A"}, headers=m1)
    assert r.status_code == 422
    assert r.json()["detail"]["problems"] == [
        {"line": 3, "reason": "counted_qty '-1' is not a whole number ≥ 0"},
        {"line": 4, "reason": "sku 'bad sku' is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :)"},
        {"line": 4, "reason": "counted_qty 'two' is not a whole number ≥ 0"},
        {"line": 4, "reason": "counted_at '2026-11-23 11:30' is not an RFC 3339 time with an "
                              "offset (e.g. 2026-11-23T10:01:02Z or 2026-11-23T11:01:02+01:00)"},
        {"line": 5, "reason": "expected 4 fields, got 3"},
        {"line": 6, "reason": "sku SKU-DIS counted at 2026-11-23T11:30:00Z is also on line 2 "
                              "with counted_qty 2"},
    ]  # fmt: skip
    assert r.json()["error"].startswith("counts.csv rejected, nothing applied (6 problems)")
    assert as_csv.status_code == 422 and as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[:2] == [
        "line,reason",
        "3,counted_qty '-1' is not a whole number ≥ 0",
    ]
    assert header.status_code == 422
    assert "header is missing counted_qty, counted_at" in header.json()["error"]
    assert "unknown columns qty" in header.json()["error"]
    assert empty.status_code == 422 and "no counts in the file" in empty.json()["error"]
    assert json_body.status_code == 415
    assert await state(pool) == before


async def test_a_future_count_is_refused(app: Litestar, pool: asyncpg.Pool) -> None:
    await seed(pool)
    m1 = await make_key(pool, "store_manager", "S1")
    body = "sku,counted_qty,counted_at\nSKU-DIS,2,2026-11-23T12:06:00Z\n"
    async with serve_in_loop(app) as client:
        r = await client.post("/v1/stores/S1/counts", content=body, headers={**m1, **CSV})
    assert r.status_code == 422
    assert r.json()["detail"]["problems"] == [
        {"line": 2, "reason": "counted_at 2026-11-23T12:06:00Z is in the future"}
    ]
