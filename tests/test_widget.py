"""The <store-availability> widget in real headless Chromium.

The page and widget.js are served by the real app under uvicorn on 127.0.0.1 (a
fresh test database); failure cases point the widget at a scripted HTTP server
(tests/feedserver.py) that answers 500 or never answers. Chromium is driven over
the DevTools protocol (websockets, already a uvicorn dependency). Screenshots go
to test-artifacts/. Skips only when no Chromium is installed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from websockets.sync.client import ClientConnection, connect

from app.api.app import create_app
from app.domain.geo import distance_km
from app.settings import Settings
from tests.conftest import uvicorn_in_thread
from tests.feedserver import FeedServer, json_reply

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
BELLECOUR = ("LYON-02", "Lyon Bellecour", 45.7578, 4.8320, "69002")
CONFLUENCE = ("LYON-03", "Lyon Confluence", 45.7413, 4.8180, "69002")
PART_DIEU = ("LYON-01", "Lyon Part-Dieu", 45.7606, 4.8590, "69003")
CORS = {"Access-Control-Allow-Origin": "*"}


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if found := shutil.which(name):
            return found
    return "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None


class Browser:
    """A headless Chromium with one page, over the DevTools protocol (flattened sessions)."""

    def __init__(self, executable: str) -> None:
        self._profile = tempfile.mkdtemp(prefix="widget-chromium-")
        self._proc = subprocess.Popen(
            [
                executable,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--disable-dev-shm-usage",
                f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0",
                "--window-size=900,600",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            # Chromium puts its singleton socket in a fresh directory under TMPDIR and
            # leaves it behind when terminated; inside the profile it goes with it.
            env={**os.environ, "TMPDIR": self._profile},
        )
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 20
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if time.monotonic() > deadline or self._proc.poll() is not None:
                self.close()
                raise RuntimeError("chromium did not start its DevTools endpoint")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._stack = contextlib.ExitStack()
        self._ws: ClientConnection = self._stack.enter_context(
            connect(f"ws://127.0.0.1:{port}{path}", max_size=None)
        )
        self._ids = itertools.count(1)
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.send("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.send("Page.enable", session=True)
        self.send("Runtime.enable", session=True)

    def send(self, method: str, session: bool = False, **params: Any) -> dict[str, Any]:
        msg_id = next(self._ids)
        msg: dict[str, Any] = {"id": msg_id, "method": method, "params": params}
        if session:
            msg["sessionId"] = self._session
        self._ws.send(json.dumps(msg))
        while True:
            reply = json.loads(self._ws.recv(timeout=30))
            if reply.get("id") == msg_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result

    def eval(self, expression: str) -> Any:
        out = self.send(
            "Runtime.evaluate",
            session=True,
            expression=expression,
            returnByValue=True,
            awaitPromise=True,
        )
        if "exceptionDetails" in out:
            raise RuntimeError(f"page error: {out['exceptionDetails']}")
        return out["result"].get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", session=True, url=url)
        self.wait_for(
            "document.readyState === 'complete' && !!customElements.get('store-availability')"
        )

    def wait_for(self, expression: str, timeout: float = 10.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = self.eval(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for: {expression}")
            time.sleep(0.05)

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        data = self.send("Page.captureScreenshot", session=True, format="png")["data"]
        path = ARTIFACTS / name
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        if hasattr(self, "_stack"):
            self._stack.close()
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
        shutil.rmtree(self._profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium found (install Debian's chromium to run the widget tests)")
    b = Browser(executable)
    try:
        yield b
    finally:
        b.close()


# Helpers reading the widget's state from the page (its shadow root is open).
STATE = "document.querySelector('store-availability').dataset.state"
TEXT = "document.querySelector('store-availability').shadowRoot.querySelector('[part=badge]').textContent"


def settled(b: Browser) -> tuple[str, str]:
    b.wait_for(f"{STATE} && {STATE} !== 'loading'")
    state, text = b.eval(f"[{STATE}, {TEXT}]")
    return state, text


async def _seed(dsn: str, now: datetime) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.executemany(
            "INSERT INTO store (store_id, name, lat, lon, postal_code) VALUES ($1, $2, $3, $4, $5)",
            [BELLECOUR, CONFLUENCE, PART_DIEU],
        )
        await conn.execute("INSERT INTO product (sku, name) VALUES ('SKU-1', 'Drill')")
        as_of = now - timedelta(minutes=10)
        for store_id, book, state, reason in [
            ("LYON-02", 12, "in_stock", "margin_ok"),
            ("LYON-03", 0, "unavailable", "out_of_stock"),
            ("LYON-01", 4, "low_stock", "few_left"),
        ]:
            await conn.execute(
                """INSERT INTO book_position (store_id, sku, book, base_source, base_at,
                       snapshot_as_of, last_event_at, badge_state, safety_buffer, reasons,
                       badge_as_of, computed_at)
                   VALUES ($1, 'SKU-1', $2, 'snapshot', $3, $3, $3, $4, 2, $5, $3, $3)""",
                store_id,
                book,
                as_of,
                state,
                [reason],
            )
            await conn.execute(
                "INSERT INTO store_freshness (store_id, last_pos_event_at, snapshot_as_of) "
                "VALUES ($1, $2, $2)",
                store_id,
                as_of,
            )
    finally:
        await conn.close()


@pytest.fixture
def live_app(db_dsn: str, settings: Settings) -> Iterator[str]:
    """The real app under uvicorn on an ephemeral port of 127.0.0.1; yields its base URL."""
    asyncio.run(_seed(db_dsn, datetime.now(UTC)))
    with uvicorn_in_thread(create_app(settings, dsn=db_dsn), start_timeout=20) as base:
        yield base


def _km(a: tuple[str, str, float, float, str], lat: float, lon: float) -> str:
    return f"{distance_km(lat, lon, a[2], a[3]):.1f} km"


def test_badge_renders_for_an_in_stock_store_and_updates_on_a_new_postal_code(
    browser: Browser, live_app: str
) -> None:
    browser.goto(f"{live_app}/?sku=SKU-1")
    state, text = settled(browser)
    centre = ((BELLECOUR[2] + CONFLUENCE[2]) / 2, (BELLECOUR[3] + CONFLUENCE[3]) / 2)
    assert (state, text) == ("promise", f"In stock at Lyon Bellecour, {_km(BELLECOUR, *centre)}")
    badge = browser.eval(
        "(() => { const p = document.querySelector('store-availability').shadowRoot"
        ".querySelector('[part=badge]'); return [p.getAttribute('role'), p.getAttribute('aria-live')]; })()"
    )
    assert badge == ["status", "polite"]
    browser.screenshot("widget-in-stock.png")

    # The shopper types another postal code: the widget asks again and updates.
    browser.eval(
        "(() => { const r = document.querySelector('store-availability').shadowRoot;"
        " r.querySelector('input').value = '69003'; r.querySelector('form').requestSubmit(); })()"
    )
    browser.wait_for(f"{TEXT}.startsWith('Only a few left')")
    assert settled(browser) == ("promise", "Only a few left at Lyon Part-Dieu, 0.0 km")
    browser.screenshot("widget-low-stock.png")


def test_no_store_with_a_promise_says_check_nearby_stores(
    browser: Browser, live_app: str, db_dsn: str
) -> None:
    asyncio.run(_execute(db_dsn, "UPDATE book_position SET badge_state = 'unavailable'"))
    browser.goto(f"{live_app}/?sku=SKU-1")
    assert settled(browser) == ("none", "Check nearby stores")


async def _execute(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def _mount(b: Browser, api: str, extra: str = "") -> None:
    """Replace the page's widget with one pointed at ``api``."""
    b.eval(
        "(() => { document.querySelector('store-availability').remove();"
        f" const w = document.createElement('div'); w.innerHTML = '<store-availability sku=\"SKU-1\""
        f' api="{api}" postal-code="69002" {extra}></store-availability>\';'
        " document.querySelector('main').append(w.firstChild); })()"
    )


def _promise_body(as_of: datetime, generated_at: datetime) -> dict[str, Any]:
    store = {"store_id": "X", "name": "Somewhere", "distance_km": 1.234}
    return {
        "sku": "SKU-1",
        "generated_at": generated_at.isoformat(),
        "lat": 45.0,
        "lon": 4.0,
        "radius_km": 25.0,
        "stores": [
            {
                "store": store,
                "state": "in_stock",
                "promise": True,
                "display_text": "In stock",
                "as_of": as_of.isoformat(),
            }
        ],
    }


def test_http_error_shows_no_badge(browser: Browser, live_app: str) -> None:
    with FeedServer() as fake:
        fake.always(
            "/v1/availability/SKU-1",
            json_reply({"status": 500, "error": "internal error"}, status=500, headers=CORS),
        )
        browser.goto(f"{live_app}/?sku=SKU-1")
        settled(browser)
        _mount(browser, fake.url("").rstrip("/"))
        assert settled(browser) == ("error", "")
        assert len(fake.requests_to("/v1/availability/SKU-1")) == 1
        browser.screenshot("widget-http-500.png")


def test_hung_request_times_out_and_shows_no_badge(browser: Browser, live_app: str) -> None:
    with FeedServer() as fake:
        now = datetime.now(UTC)
        fake.always(
            "/v1/availability/SKU-1",
            json_reply(_promise_body(now, now), headers=CORS, delay=8.0),
        )
        browser.goto(f"{live_app}/?sku=SKU-1")
        settled(browser)
        started = time.monotonic()
        _mount(browser, fake.url("").rstrip("/"), 'timeout-ms="600"')
        assert settled(browser) == ("error", "")
        assert time.monotonic() - started < 5  # gave up on its own, long before the reply
        assert len(fake.requests_to("/v1/availability/SKU-1")) == 1


def test_a_working_api_with_stale_data_gets_no_promise(browser: Browser, live_app: str) -> None:
    with FeedServer() as fake:
        now = datetime.now(UTC)
        fresh, stale = _promise_body(now, now), _promise_body(now - timedelta(hours=7), now)
        fake.sequence(
            "/v1/availability/SKU-1",
            json_reply(fresh, headers=CORS),
            json_reply(stale, headers=CORS),
        )
        browser.goto(f"{live_app}/?sku=SKU-1")
        settled(browser)
        _mount(browser, fake.url("").rstrip("/"))
        # The same fake answer with fresh data is shown: the check is on age, not origin.
        assert settled(browser) == ("promise", "In stock at Somewhere, 1.2 km")
        _mount(browser, fake.url("").rstrip("/"))
        assert settled(browser) == ("none", "Check nearby stores")
