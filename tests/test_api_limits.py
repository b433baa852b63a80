"""CORS for configured origins only, and the per-client rate limit (429 + Retry-After)."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
import httpx
import msgspec
import pytest
from litestar import Litestar

from app.api.ratelimit import RateLimiter
from app.settings import Settings, SettingsError, load_settings
from tests.conftest import serve_in_loop
from tests.test_api_availability import (
    LAT,
    LON,
    NOW,
    POLICY,
    add_one_badge,
)

SHOP = "https://shop.example"


async def test_cors_allows_only_configured_origins(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, settings: Settings
) -> None:
    await add_one_badge(pool)
    configured = msgspec.structs.replace(
        settings, cors_origins=f"{SHOP}, https://www.shop.example/"
    )
    app = make_app(settings=configured, clock=lambda: NOW, policy=POLICY)
    url, params = "/v1/availability/SKU-1", {"lat": LAT, "lon": LON}
    async with serve_in_loop(app) as client:
        ok = await client.get(url, params=params, headers={"Origin": SHOP})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == SHOP
        assert "etag" in ok.headers["access-control-expose-headers"].lower()
        other = await client.get(url, params=params, headers={"Origin": "https://evil.example"})
        assert other.status_code == 200  # CORS is enforced by the browser: no allow header
        assert "access-control-allow-origin" not in other.headers
        pre = await client.options(
            "/v1/availability:batch",
            headers={
                "Origin": "https://www.shop.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        assert pre.status_code == 204
        assert pre.headers["access-control-allow-origin"] == "https://www.shop.example"
        bad_pre = await client.options(
            "/v1/availability:batch",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert bad_pre.status_code == 400
        assert "access-control-allow-origin" not in bad_pre.headers


async def test_no_cors_by_default(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, settings: Settings
) -> None:
    assert settings.cors_origins == ""
    await add_one_badge(pool)
    async with serve_in_loop(make_app(clock=lambda: NOW, policy=POLICY)) as client:
        r = await client.get(
            "/v1/availability/SKU-1", params={"lat": LAT, "lon": LON}, headers={"Origin": SHOP}
        )
    assert r.status_code == 200
    assert "access-control-allow-origin" not in r.headers


def test_cors_origins_setting_is_validated() -> None:
    assert load_settings(
        {"AVAILABILITY_CORS_ORIGINS": f"{SHOP},http://127.0.0.1:8000"}
    ).cors_origin_list() == (
        SHOP,
        "http://127.0.0.1:8000",
    )
    with pytest.raises(SettingsError, match=r"cors_origins: 'shop\.example/path'"):
        load_settings({"AVAILABILITY_CORS_ORIGINS": "shop.example/path"})


async def test_rate_limit_is_per_client_with_retry_after(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, settings: Settings
) -> None:
    await add_one_badge(pool)
    limited = msgspec.structs.replace(settings, rate_limit_per_minute=3)
    app = make_app(settings=limited, clock=lambda: NOW, policy=POLICY)
    url, params = "/v1/availability/SKU-1", {"lat": LAT, "lon": LON}
    async with serve_in_loop(app) as client:
        codes = [(await client.get(url, params=params)).status_code for _ in range(3)]
        assert codes == [200, 200, 200]
        r = await client.get(url, params=params)
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) == 20  # one request every 60/3 s
        assert r.json() == {
            "status": 429,
            "error": "too many requests: the limit is 3 a minute per client; retry in 20 s",
        }
        # Health, readiness (and metrics) are never limited.
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/ready")).status_code == 200
    # Another client (address) has its own allowance: a second ASGI client with another IP.
    async with app.lifespan():
        transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as other:
            assert (await other.get(url, params=params)).status_code == 200


def test_rate_limiter_refills_one_request_per_interval() -> None:
    t = [1000.0]
    limiter = RateLimiter(per_minute=2, clock=lambda: t[0])
    assert [limiter.hit("a"), limiter.hit("a")] == [0.0, 0.0]
    assert limiter.hit("a") == pytest.approx(30.0)
    assert limiter.hit("b") == 0.0
    t[0] += 29.0
    assert limiter.hit("a") == pytest.approx(1.0)
    t[0] += 1.0
    assert limiter.hit("a") == 0.0
    assert limiter.hit("a") == pytest.approx(30.0)
