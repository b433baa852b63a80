"""A real HTTP server on 127.0.0.1 that tests script per path (feeds, faults).

It runs in a background thread, so it works from sync and async tests alike and
never competes with the test's event loop. Usage::

    from tests.feedserver import FeedServer, Reply, json_reply

    with FeedServer() as server:                      # or the ``feed_server`` fixture
        server.sequence("/events",                    # one reply per request, in order;
            Reply(status=503),                        # the last one repeats
            Reply(status=503),
            json_reply({"events": [], "has_more": False}),
        )
        server.route("/snap", lambda req: Reply(     # or a function of the request
            status=304 if req.headers.get("if-none-match") == '"v1"' else 200,
            body=b"location_id,sku,...", headers={"ETag": '"v1"'}))
        url = server.url("/events")                  # http://127.0.0.1:<port>/events
        ...
        assert [r.param("cursor") for r in server.requests_to("/events")] == [None, None, None]

Faults a ``Reply`` can inject: ``delay`` (seconds before anything is sent),
``cut_after`` (send the headers and that many body bytes, then drop the
connection), ``stall_after`` (send that many body bytes, then hang for
``stall_for`` seconds or until the server stops), ``chunked`` (no Content-Length).
Paths that were not scripted answer 404. Every request is recorded
(``server.requests``): method, path, query, lower-cased headers, body.

``PagedFeed`` serves a POS-style paged JSON feed keyed by cursor.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted response, optionally with a fault."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    cut_after: int | None = None
    stall_after: int | None = None
    stall_for: float = 30.0
    chunked: bool = False
    chunk_size: int = 64 * 1024


def json_reply(
    obj: Any, status: int = 200, headers: Mapping[str, str] | None = None, **fault: Any
) -> Reply:
    """A JSON body (``obj`` is dumped; pass ``bytes`` to send them verbatim)."""
    body = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return Reply(
        status=status,
        body=body,
        headers={"Content-Type": "application/json", **(headers or {})},
        **fault,
    )


def text_reply(
    text: str, status: int = 200, headers: Mapping[str, str] | None = None, **fault: Any
) -> Reply:
    """A text body, ``text/csv`` unless headers say otherwise."""
    return Reply(
        status=status,
        body=text.encode(),
        headers={"Content-Type": "text/csv", **(headers or {})},
        **fault,
    )


@dataclass(frozen=True)
class Request:
    """What the server received."""

    method: str
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    at: float

    def param(self, name: str) -> str | None:
        """First value of query parameter ``name`` (``None`` when absent)."""
        values = self.query.get(name)
        return values[0] if values else None


Responder = Callable[[Request], Reply]


class _Sequence:
    """Replies in order; the last one repeats once the others are used."""

    def __init__(self, replies: Sequence[Reply | Responder]) -> None:
        if not replies:
            raise ValueError("a sequence needs at least one reply")
        self._replies = list(replies)
        self._next = 0
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        with self._lock:
            item = self._replies[min(self._next, len(self._replies) - 1)]
            self._next += 1
        return item(request) if callable(item) else item


class _QuietServer(ThreadingHTTPServer):
    """Clients that give up (the timeouts under test) reset connections: not server errors."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class FeedServer:
    """Scriptable HTTP/1.1 server on an ephemeral port of 127.0.0.1."""

    def __init__(self) -> None:
        self._routes: dict[str, Responder] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # -- scripting -------------------------------------------------------------
    def route(self, path: str, responder: Responder) -> None:
        """Answer requests to ``path`` (query ignored) with ``responder(request)``."""
        with self._lock:
            self._routes[path] = responder

    def sequence(self, path: str, *replies: Reply | Responder) -> None:
        """Answer successive requests to ``path`` with ``replies`` in order (last repeats)."""
        self.route(path, _Sequence(replies))

    def always(self, path: str, reply: Reply) -> None:
        self.route(path, lambda _req: reply)

    # -- inspection ------------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def requests(self) -> list[Request]:
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # -- life cycle ------------------------------------------------------------
    def start(self) -> FeedServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="feedserver", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; stalled or delayed replies are released at once."""
        self._stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> FeedServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- serving ---------------------------------------------------------------
    def _record(self, request: Request) -> Responder | None:
        with self._lock:
            self._requests.append(request)
            return self._routes.get(request.path)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            timeout = 10  # idle keep-alive connections close after this
            # Headers and body go out in separate writes: with Nagle's algorithm on, the
            # body waits for the client's delayed ACK (~40 ms a response on keep-alive).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _serve(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(
                    method=self.command,
                    path=split.path,
                    raw_query=split.query,
                    query=parse_qs(split.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    at=time.monotonic(),
                )
                responder = server._record(request)
                try:
                    reply = (
                        responder(request) if responder else Reply(status=404, body=b"not scripted")
                    )
                except Exception as exc:  # a broken script shows up as a 500 naming it
                    reply = Reply(status=500, body=f"feedserver responder failed: {exc!r}".encode())
                self._send(reply)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _serve

            def _send(self, reply: Reply) -> None:
                if reply.delay and server._stopping.wait(reply.delay):
                    self.close_connection = True
                    return
                self.send_response(reply.status)
                names = {k.lower() for k in reply.headers}
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if reply.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                elif "content-length" not in names:
                    self.send_header("Content-Length", str(len(reply.body)))
                faulty = reply.cut_after is not None or reply.stall_after is not None
                if faulty:
                    self.send_header("Connection", "close")
                self.end_headers()
                if self.command == "HEAD":
                    return
                limit = reply.cut_after if reply.cut_after is not None else reply.stall_after
                body = reply.body if limit is None else reply.body[:limit]
                try:
                    if reply.chunked:
                        for i in range(0, len(body), reply.chunk_size):
                            piece = body[i : i + reply.chunk_size]
                            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                        if limit is None:
                            self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.wfile.write(body)
                    self.wfile.flush()
                    if reply.stall_after is not None:
                        server._stopping.wait(reply.stall_for)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                if faulty:
                    self.close_connection = True

        return Handler


class PagedFeed:
    """A POS-style feed: page ``i`` is served for cursor ``c{i}`` (page 0 without one).

    ``PagedFeed(pages)`` where each page is a list of event dicts; page ``i`` carries
    ``next_cursor`` ``c{i+1}`` and ``has_more`` while pages remain. The cursor after
    the last page answers an empty page until more pages are appended. ``faults`` maps a page
    index to replies used (in order, then the real page) for requests of that page.
    """

    def __init__(
        self, pages: Sequence[Sequence[Mapping[str, Any]]], *, cursor_prefix: str = "c"
    ) -> None:
        self.pages: list[Sequence[Mapping[str, Any]]] = [list(p) for p in pages]
        self.prefix = cursor_prefix
        self.faults: dict[int, list[Reply]] = {}
        self._lock = threading.Lock()

    def cursor(self, index: int) -> str:
        return f"{self.prefix}{index}"

    def page_body(self, index: int) -> dict[str, Any]:
        """Page ``index``; past the end, an empty page that keeps the cursor (nothing new yet)."""
        if index >= len(self.pages):
            return {"events": [], "next_cursor": self.cursor(index), "has_more": False}
        return {
            "events": self.pages[index],
            "next_cursor": self.cursor(index + 1),
            "has_more": index + 1 < len(self.pages),
        }

    def index_of(self, cursor: str | None) -> int | None:
        if cursor is None:
            return 0
        if not cursor.startswith(self.prefix) or not cursor[len(self.prefix) :].isdigit():
            return None
        return int(cursor[len(self.prefix) :])

    def __call__(self, request: Request) -> Reply:
        index = self.index_of(request.param("cursor"))
        if index is None or index > len(self.pages):
            return json_reply({"error": "unknown cursor"}, status=400)
        with self._lock:
            queued = self.faults.get(index)
            if queued:
                return queued.pop(0)
        return json_reply(self.page_body(index))


def iter_events(feed: PagedFeed) -> Iterator[Mapping[str, Any]]:
    for page in feed.pages:
        yield from page
