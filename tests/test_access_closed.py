"""Access control is always on: a fresh install (no admin token, no API key) answers
401 on every guarded route, and the only unguarded routes are the allowed open ones.

The routes are enumerated from the app itself, so a new route without a guard fails
``test_the_only_unguarded_routes_are_the_public_ones`` until it is guarded or added to
``OPEN`` here (with a reason), and a new guarded route is called by the other tests.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import asyncpg
import httpx
import msgspec
from litestar import Litestar
from litestar.handlers import HTTPRouteHandler
from litestar.routes import HTTPRoute

from app.api.auth import ADMIN_SCHEME
from app.settings import Settings
from tests.conftest import create_api_key, serve_in_loop

# (method, path template): the routes anyone may call. Public badge and catalogue reads
# (rate-limited per IP), probes, the OpenAPI document, the widget and its demo page.
# /metrics stays open and is to be served on an internal network (docs/operations.md);
# the Google export is guarded (export token or admin, docs/managers.md).
OPEN = {
    ("GET", "/"),
    ("GET", "/widget.js"),
    ("GET", "/health"),
    ("GET", "/ready"),
    ("GET", "/metrics"),
    ("GET", "/v1/stores"),
    ("GET", "/v1/stores/{store_id:str}"),
    ("GET", "/v1/products/{sku:str}"),
    ("GET", "/v1/availability/{sku:str}"),
    ("GET", "/v1/stores/{store_id:str}/availability/{sku:str}"),
    ("POST", "/v1/availability:batch"),
}
SAMPLE_PARAMS = {"store_id": "S1", "sku": "SKU-1", "name": "pos", "snapshot_id": "1"}
# No credential at all, as far as the service is concerned: 401.
NO_CREDENTIAL = (
    {},
    {"authorization": "Bearer "},
    {"authorization": "Token abc"},
    {"x-api-key": "a"},
)
TABLES = ("store", "product", "feedback", "manager_count", "api_key")


def routes(app: Litestar) -> dict[tuple[str, str], HTTPRouteHandler]:
    """Every (method, path template) the app serves, but CORS preflights."""
    found: dict[tuple[str, str], HTTPRouteHandler] = {}
    for route in app.routes:
        assert isinstance(route, HTTPRoute), f"unexpected route type {route!r}"
        for handler in route.route_handlers:
            for method in handler.http_methods:
                if method != "OPTIONS":
                    found[(method, route.path)] = handler
    return found


def is_openapi(path: str) -> bool:
    return path == "/schema" or path.startswith("/schema/")


def guarded(app: Litestar) -> list[tuple[str, str]]:
    return sorted(key for key, handler in routes(app).items() if handler.resolve_guards())


def concrete(path: str) -> str:
    """A URL for a path template, with sample values for its parameters."""
    return re.sub(r"\{(\w+):\w+\}", lambda m: SAMPLE_PARAMS[m.group(1)], path)


async def counts(pool: asyncpg.Pool) -> dict[str, int]:
    return {t: await pool.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


async def call(
    client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]
) -> httpx.Response:
    body = b"sku,name\nSKU-1,x\n" if method in ("POST", "PUT") else None
    return await client.request(method, concrete(path), content=body, headers=headers)


def test_the_only_unguarded_routes_are_the_public_ones(make_app: Callable[..., Litestar]) -> None:
    app = make_app()
    unguarded = {key for key, handler in routes(app).items() if not handler.resolve_guards()}
    assert {key for key in unguarded if not is_openapi(key[1])} == OPEN
    assert all(method == "GET" for method, path in unguarded if is_openapi(path))
    # Every write is guarded but the batch read (a POST only for its long sku list).
    writes = {key for key in routes(app) if key[0] in ("POST", "PUT", "PATCH", "DELETE")}
    assert writes - set(guarded(app)) == {("POST", "/v1/availability:batch")}


async def test_a_fresh_install_answers_401_with_a_json_message_on_every_guarded_route(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    app = make_app()  # the test settings: no admin_token; the database: no key
    assert app.state.settings.admin_token is None
    assert await pool.fetchval("SELECT count(*) FROM api_key") == 0
    before = await counts(pool)
    to_call = guarded(app)
    assert len(to_call) >= 13  # admin, stores/products writes, feedback, reports, counts, export
    async with serve_in_loop(app) as client:
        for method, path in to_call:
            for headers in NO_CREDENTIAL:
                r = await call(client, method, path, headers=headers)
                assert r.status_code == 401, (method, path, headers, r.text)
                assert r.headers["content-type"].startswith("application/json")
                body = r.json()
                assert body["status"] == 401 and "required" in body["error"], (method, path)
                assert "www-authenticate" in r.headers
    assert await counts(pool) == before  # nothing written, no key made


async def test_a_key_that_does_not_exist_or_of_the_app_role_gets_403_everywhere(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    app = make_app()
    bogus = {"authorization": "Bearer sak_aaaaaaaaaaaa_" + "x" * 43}
    async with serve_in_loop(app) as client:
        partner = await create_api_key(pool, "app")  # public reads only
        before = await counts(pool)
        for method, path in guarded(app):
            for headers in (bogus, {"authorization": "Bearer not-a-key"}, partner):
                r = await call(client, method, path, headers=headers)
                assert r.status_code == 403, (method, path, headers, r.text)
                assert r.json()["status"] == 403 and r.json()["error"], (method, path)
    assert await counts(pool) == before


async def test_the_open_routes_need_no_credential(make_app: Callable[..., Litestar]) -> None:
    async with serve_in_loop(make_app()) as client:
        for method, path in sorted(OPEN):
            if method == "POST":
                r = await client.post(concrete(path), json={"skus": ["SKU-1"], "lat": 45, "lon": 4})
            else:
                r = await client.get(concrete(path), params={"lat": 45.76, "lon": 4.84})
            assert r.status_code not in (401, 403), (method, path, r.text)
        assert (await client.get("/schema/openapi.json")).status_code == 200


async def test_openapi_marks_every_guarded_route_as_needing_a_key(
    make_app: Callable[..., Litestar],
) -> None:
    app = make_app()
    async with serve_in_loop(app) as client:
        schema = (await client.get("/schema/openapi.json")).json()
    for method, path in guarded(app):
        doc_path = re.sub(r"\{(\w+):\w+\}", r"{\1}", path)
        operation = schema["paths"][doc_path][method.lower()]
        assert operation.get("security") == [{ADMIN_SCHEME: []}], (method, path)
        assert {"401", "403"} <= set(operation["responses"]), (method, path)
        assert "admin token" not in operation["responses"]["401"]["description"].lower()


async def test_the_demo_prints_a_fresh_admin_token_that_opens_the_guarded_routes(
    make_app: Callable[..., Litestar], settings: Settings
) -> None:
    from app.commands.demo import _banner, with_admin_token

    demo_settings, token = with_admin_token(settings)
    assert token and demo_settings.admin_token == token
    assert with_admin_token(settings)[1] != token  # a new one each run
    banner = _banner(demo_settings, "http://127.0.0.1:8001", "SKU-1", "demo", new_token=token)
    assert banner.count(token) == 2  # the token, and a curl with it
    url = "/v1/admin/feeds"
    async with serve_in_loop(make_app(settings=demo_settings)) as client:
        assert (await client.get(url)).status_code == 401
        assert (
            await client.get(url, headers={"authorization": f"Bearer {token}"})
        ).status_code == 200
    configured = msgspec.structs.replace(settings, admin_token="mine")
    assert with_admin_token(configured) == (configured, None)
    assert "mine" not in _banner(configured, "http://127.0.0.1:8001", "SKU-1", "demo")
