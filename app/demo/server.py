"""The feed simulator on HTTP, ticking in the background.

Routes: ``/pos/events`` (POS feed, ``?cursor=``), ``/warehouse/snapshot.csv``
(ETag, 304 on ``If-None-Match``), ``/stores.csv``, ``/products.csv``,
``/shelf/{store_id}/{sku}`` (the hidden truth, for curious demo users) and
``/health``. :class:`SimulatorServer` runs it in a thread with its own event
loop, so it never competes with the service or a test for theirs.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any

import structlog
from litestar import Litestar, Request, Response, get
from litestar.params import FromPath, FromQuery
from litestar.status_codes import HTTP_304_NOT_MODIFIED, HTTP_400_BAD_REQUEST, HTTP_404_NOT_FOUND

from app.clock import Clock, utc_now
from app.demo.catalog import products_csv, stores_csv
from app.demo.feed import BadCursor, FeedSimulator

log = structlog.get_logger(__name__)


def simulator_app(
    feed: FeedSimulator, *, clock: Clock = utc_now, tick_seconds: float = 2.0
) -> Litestar:
    """A Litestar app serving ``feed``; its lifespan ticks the simulation every ``tick_seconds``."""
    stores_body = stores_csv(feed.simulation.stores).encode()
    products_body = products_csv(feed.simulation.products).encode()

    @contextlib.asynccontextmanager
    async def ticking(app: Litestar) -> AsyncIterator[None]:
        async def run() -> None:
            while True:
                feed.tick(clock())
                await asyncio.sleep(tick_seconds)

        task = asyncio.create_task(run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    @get("/pos/events", sync_to_thread=False)
    def pos_events(cursor: FromQuery[str | None] = None) -> Response[Any]:
        try:
            page = feed.page(cursor)
        except BadCursor as exc:
            return Response({"error": str(exc)}, status_code=HTTP_400_BAD_REQUEST)
        return Response(page, media_type="application/json")

    @get("/warehouse/snapshot.csv", sync_to_thread=False)
    def warehouse_snapshot(request: Request[Any, Any, Any]) -> Response[bytes]:
        snapshot = feed.snapshot
        headers = {"ETag": snapshot.etag, "Cache-Control": "no-cache"}
        if snapshot.matches(request.headers.get("if-none-match")):
            return Response(b"", status_code=HTTP_304_NOT_MODIFIED, headers=headers)
        return Response(snapshot.body, media_type="text/csv", headers=headers)

    @get("/stores.csv", sync_to_thread=False)
    def stores() -> Response[bytes]:
        return Response(stores_body, media_type="text/csv")

    @get("/products.csv", sync_to_thread=False)
    def products() -> Response[bytes]:
        return Response(products_body, media_type="text/csv")

    @get("/shelf/{store_id:str}/{sku:str}", sync_to_thread=False)
    def shelf(store_id: FromPath[str], sku: FromPath[str]) -> Response[dict[str, Any]]:
        pair = (store_id, sku)
        sim = feed.simulation
        if pair not in sim.initial_book:
            return Response({"error": "no such store and sku"}, status_code=HTTP_404_NOT_FOUND)
        return Response(
            {
                "store_id": store_id,
                "sku": sku,
                "shelf": sim.shelf(pair),
                "book": sim.book(pair),
                "in_transit": sim.in_transit(pair),
                "at": sim.now.isoformat(),
            }
        )

    @get("/health", sync_to_thread=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        route_handlers=[pos_events, warehouse_snapshot, stores, products, shelf, health],
        lifespan=[ticking],
        openapi_config=None,
        logging_config=None,
    )


class SimulatorServer:
    """Run the simulator app under uvicorn in a background thread::

        with SimulatorServer(feed, port=0) as sim:
            sim.url("/pos/events")

    The socket is bound before the thread starts, so a busy port fails here and
    ``port=0`` picks a free one.
    """

    def __init__(
        self,
        feed: FeedSimulator,
        *,
        host: str = "127.0.0.1",
        port: int = 8001,
        clock: Clock = utc_now,
        tick_seconds: float = 2.0,
    ) -> None:
        self.feed = feed
        self.host = host
        self._app = simulator_app(feed, clock=clock, tick_seconds=tick_seconds)
        self._socket = socket.create_server((host, port), reuse_port=False)
        self.port: int = self._socket.getsockname()[1]
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def url(self, path: str = "") -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path}"

    def start(self, timeout: float = 15.0) -> None:
        import uvicorn

        config = uvicorn.Config(self._app, log_config=None, access_log=False, lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="feed-simulator", daemon=True)
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError(f"feed simulator failed to start: {self._error!r}")
            if waited >= timeout:
                self.stop()
                raise TimeoutError("feed simulator did not start in time")
            deadline.wait(0.02)
            waited += 0.02
        log.info("feed_simulator.started", url=self.url())

    def _run(self) -> None:
        try:
            asyncio.run(self._server.serve(sockets=[self._socket]))
        except BaseException as exc:  # reported by start(); the thread must not die silently
            self._error = exc

    def stop(self, timeout: float = 10.0) -> None:
        """Ask uvicorn to finish, wait for the thread, release the socket."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        self._socket.close()

    def __enter__(self) -> SimulatorServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
