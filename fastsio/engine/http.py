"""The HTTP/1.1 front on the listening socket.

picows only accepts WebSocket upgrades, so every connection starts here: long-polling requests
are parsed with httptools and answered in order (keep-alive, pipelining); an upgrade request is
handed over to picows on the same transport (see :mod:`fastsio.engine.websocket`).

Two timeouts bound what a connection may hold without doing anything useful (slowloris):
``http_request_timeout`` from a connection's start, or a request's first byte, to the end of that
request (its headers and body; a WebSocket upgrade request included): past it the connection gets
``408`` and is closed; ``http_keep_alive_timeout`` for a connection idle between requests: past it
the connection is closed. A request that was read whole and waits for its answer (a long-polling
GET) runs no timer. Each connection's deadline is a timer of the server's wheel
(:mod:`fastsio.engine.timers`), which lets go of the connection the moment it is done (upgraded,
closed), not at its deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qsl, unquote

import httptools

from fastsio import trace
from fastsio._core.httphead import parse_get
from fastsio.engine.timers import Timer
from fastsio.trace import flags as _trace

if TYPE_CHECKING:
    from fastsio.engine.server import EngineServer

log = logging.getLogger("fastsio.engine.http")

REASONS = {
    101: "Switching Protocols",
    200: "OK",
    204: "No Content",
    304: "Not Modified",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    503: "Service Unavailable",
}



def reason(status: int) -> str:
    """The reason phrase of ``status`` (an ASGI app behind the front may answer any status)."""
    phrase = REASONS.get(status)
    if phrase is None:
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
    return phrase


# What a connection's deadline stands for.
_NO_TIMER = 0
_REQUEST_TIMER = 1  # a request (or the first one) is being read
_IDLE_TIMER = 2  # keep-alive: idle between requests

Headers = list[tuple[str, str]]


class _BodyTooLarge(Exception):
    """Raised from a parser callback to stop reading a body over ``max_http_buffer_size``."""


# The most a worker hands back with a connection (one control-socket message): the chunks read
# since the request began. A request of another worker's session that came with more of its body
# is answered here instead (unknown session), which only a pipelining client sharing a connection
# between sessions could meet.
HAND_BACK_MAX = 65536


class _HandBack(Exception):
    """Raised from a parser callback: the request belongs to another worker's session."""


class Router(Protocol):
    """What ``fastsio run --workers N`` puts on :attr:`EngineServer.router` in each worker: the
    connections come from a parent process that routes each one by session id; a keep-alive
    connection can then carry a request for another worker's session (browsers share their
    connection pool between tabs), which goes back to the parent to be routed again."""

    def foreign(self, url: bytes) -> bool:
        """Whether the request target ``url`` names a session of another worker."""

    def hand_back(self, transport: asyncio.Transport, data: bytes) -> None:
        """Give the connection back to the parent with ``data``, the bytes read from it since
        the request began; the transport is closed here, the connection stays open."""


class _DetachedParser:
    """Stands in for the parser of a connection that a WebSocket took over."""

    def feed_data(self, data: bytes) -> None:  # pragma: no cover - nothing reads after detach
        raise RuntimeError("connection was handed over to a WebSocket")


_DETACHED_PARSER: Any = _DetachedParser()
_NO_QUEUE: deque[Request] = deque(maxlen=0)  # shared by every detached connection


def parse_query(qs: str) -> dict[str, str]:
    """A query string as ``parse_qsl(qs, keep_blank_values=True)`` reads it, the first value of
    each name kept. Engine.IO's queries (``EIO=4&transport=websocket&sid=...``) have no escapes:
    those are split here, without ``parse_qsl``'s per-field calls (a handshake's share)."""
    query: dict[str, str] = {}
    if not qs:
        return query
    if "%" in qs or "+" in qs:
        for k, v in parse_qsl(qs, keep_blank_values=True):
            query.setdefault(k, v)
        return query
    for field in qs.split("&"):
        if field:
            k, _, v = field.partition("=")
            if k not in query:
                query[k] = v
    return query


class Request:
    """One parsed HTTP request. Header names are lower-case; ``query`` keeps the first value."""

    __slots__ = (
        "body",
        "headers",
        "http_version",
        "keep_alive",
        "method",
        "path",
        "query",
        "raw_headers",
        "remote_address",
        "secure",
        "too_large",
        "url",
    )

    def __init__(
        self,
        method: str,
        url: str,
        raw_headers: Headers,
        body: bytes,
        http_version: str,
        keep_alive: bool,
        remote_address: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.method = method
        self.url = url
        path, _, qs = url.partition("?")
        self.path = unquote(path) if "%" in path else path
        self.query = parse_query(qs)
        self.raw_headers = raw_headers
        if headers is None:  # else made from raw_headers by the caller, in the same pass
            headers = {}
            for k, v in raw_headers:
                headers[k] = headers[k] + ", " + v if k in headers else v
        self.headers = headers
        self.body = body
        self.http_version = http_version
        self.keep_alive = keep_alive
        self.remote_address = remote_address
        self.secure = False
        self.too_large = False


class HttpConnection(asyncio.Protocol):
    """One TCP connection until it is closed or upgraded to a WebSocket."""

    __slots__ = (
        "_body",
        "_body_size",
        "_busy",
        "_closed",
        "_deadline",
        "_head",
        "_header_bytes",
        "_headers",
        "_in_request",
        "_on_lost",
        "_parser",
        "_queue",
        "_router",
        "_stream",
        "_timer",
        "_too_large",
        "_upgrade_tail",
        "_url",
        "remote_address",
        "secure",
        "server",
        "transport",
    )

    def __init__(self, server: EngineServer) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        # httptools's parser is made for the first request that the core's reader of the common
        # one (a whole bodiless GET in one read: _core/httphead) leaves to it; most never need it.
        self._parser: Any = None
        self._queue: deque[Request] = deque()
        self._busy = False
        self._closed = False
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._header_bytes = 0
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self._on_lost: Callable[[], None] | None = None
        # Bytes that arrive after an upgrade request, until the WebSocket takes the transport.
        self._upgrade_tail: bytearray | None = None
        # A streamed response being written: its request and whether it is chunked.
        self._stream: tuple[Request, bool] | None = None
        self.remote_address = ""
        self.secure = False  # TLS (``start(ssl=...)``): the session cookie gets ``Secure``
        # Request and keep-alive timeouts: a timer of the server's wheel, which calls
        # ``_on_timeout`` then, and what the deadline is for.
        self._deadline: Timer = Timer(server.timers, self._on_timeout)
        self._timer = _NO_TIMER
        self._in_request = False  # between a request's first byte and its end
        # Workers (``fastsio run``): the chunks since a request began at a chunk boundary on an
        # idle connection, until its headers are read; handed back with the connection when
        # the request is for another worker's session.
        self._router = server.router
        self._head: list[bytes] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports do not subclass asyncio.Transport, but behave like one (no
        # typing.cast: a Python call per connection on 3.11).
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        self.remote_address = peer[0] if peer else ""
        self.secure = transport.get_extra_info("sslcontext") is not None
        self.server._http_connections.add(self)
        if self.server._closing:
            self._fail(503)  # accepted while the server closes: refused at once
            return
        # The first request must arrive whole within the request timeout (a connection that
        # sends nothing, or trickles its first request in, is cut off).
        self._arm(_REQUEST_TIMER)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        transport = self.transport
        if transport is not None and not transport.is_closing():
            # Closed by its owner even though the peer has gone: before Python 3.11, asyncio's
            # TLS transport otherwise counts itself unclosed (a ResourceWarning when collected).
            transport.close()
        self._timer = _NO_TIMER
        self._deadline.close()  # and the timer's reference to this connection
        self.server._http_connections.discard(self)
        cb, self._on_lost = self._on_lost, None
        if cb is not None:
            cb()

    def data_received(self, data: bytes) -> None:
        if self._upgrade_tail is not None:
            # The upgrade request is being decided on (allow_request may be async): keep what
            # follows it for the WebSocket, and parse nothing more as HTTP.
            self._upgrade_tail += data
            return
        if self._too_large:
            return  # the rest of a refused body: dropped, the connection closes after the 413
        if self._router is not None:
            if not (self._in_request or self._busy or self._queue):
                self._head = [data]
            elif self._head is not None:
                self._head.append(data)
        elif not (self._in_request or self._busy or self._queue or self._closed):
            srv = self.server
            got = parse_get(data, srv.max_request_line, srv.max_header_size, srv.max_header_count)
            if got is not None and (got[3] or got[2] == len(data)):
                self._got_get(got, data)
                return
        if self._parser is None:
            self._parser = httptools.HttpRequestParser(self)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            offset = exc.args[0] if exc.args else len(data)
            self._upgrade(data[offset:])
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, _BodyTooLarge):
                self._body_too_large()
            elif isinstance(exc.__context__, _HandBack):
                self._hand_back()
            else:
                self._fail(400)

    # -- timeouts ----------------------------------------------------------------------------
    def _arm(self, kind: int) -> None:
        """Start the request or the keep-alive timer (replacing the one running)."""
        srv = self.server
        delay = (
            srv.http_request_timeout if kind == _REQUEST_TIMER else srv.http_keep_alive_timeout
        )
        if delay is None:
            self._disarm()
            return
        self._timer = kind
        self._deadline.start(delay)

    def _disarm(self) -> None:
        self._timer = _NO_TIMER
        self._deadline.cancel()

    def _arm_idle(self) -> None:
        """Keep-alive: nothing is being read, answered or waiting to be answered."""
        if not (self._busy or self._queue or self._in_request or self._closed):
            self._arm(_IDLE_TIMER)

    def _on_timeout(self) -> None:
        """A deadline passed (called by the server's timer wheel)."""
        kind, self._timer = self._timer, _NO_TIMER
        if self._closed or self.transport is None:
            return
        if kind == _IDLE_TIMER:
            log.debug("idle keep-alive connection closed")
            self.close()
        elif kind == _REQUEST_TIMER:
            log.debug("request not received in time: closing")
            if self._busy or self._queue:
                # An answer is still due on this connection: a 408 cannot go before it.
                self._closed = True
                self.transport.abort()
            else:
                self._fail(408)

    # -- httptools callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._in_request = True
        if self._timer != _REQUEST_TIMER:
            self._arm(_REQUEST_TIMER)
        self._url = b""
        self._headers = []
        self._header_bytes = 0
        self._body = []
        self._body_size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self.server.max_request_line:
            raise httptools.HttpParserError("request line too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_bytes += len(name) + len(value)
        self._headers.append((name, value))
        if (
            self._header_bytes > self.server.max_header_size
            or len(self._headers) > self.server.max_header_count
        ):
            raise httptools.HttpParserError("headers too large")

    def on_headers_complete(self) -> None:
        head = self._head
        if head is not None:
            # Only the first request of the chunk that started it can be handed back whole.
            self._head = None
            if (
                self._router is not None
                and self._router.foreign(self._url)
                and sum(map(len, head)) <= HAND_BACK_MAX
            ):
                self._head = head
                raise _HandBack
        expect_continue = False
        for name, value in self._headers:
            if len(name) != 14 and len(name) != 6:
                continue  # neither Content-Length nor Expect (no lower-casing of the rest)
            lname = name.lower()
            if lname == b"content-length":
                # A declared length over the limit is refused before any of the body is read.
                try:
                    length = int(value)
                except ValueError:
                    continue  # the parser rejects it
                if length > self.server.max_http_buffer_size:
                    raise _BodyTooLarge
            elif lname == b"expect":
                expect_continue = value.strip().lower() == b"100-continue"
        if (
            expect_continue
            and not self._busy
            and not self._queue
            and self.transport is not None
            and not self._closed
            and self._parser.get_http_version() == "1.1"
        ):
            # curl sends this for larger POSTs and waits a second for it otherwise. Only when
            # nothing is pending: an interim answer must not overtake an earlier response.
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.server.max_http_buffer_size:
            raise _BodyTooLarge
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._in_request = False
        self._disarm()
        if self._parser.should_upgrade():
            return  # handled by data_received when httptools raises HttpParserUpgrade
        self._queue.append(self._make_request(b"".join(self._body)))
        if not self._busy:
            self._next()

    def _body_too_large(self) -> None:
        """The request being read has a body over the limit: stop reading; it is dispatched
        without its body (``too_large``) and its answer closes the connection."""
        self._too_large = True
        self._body = []
        self._in_request = False
        self._disarm()
        if self.transport is not None and not self._closed:
            self.transport.pause_reading()
        req = self._make_request(b"")
        req.too_large = True
        req.keep_alive = False
        self._queue.append(req)
        if not self._busy:
            self._next()

    def _got_get(
        self, got: tuple[bytes, list[tuple[bytes, bytes]], int, bool, bool], data: bytes
    ) -> None:
        """A whole bodiless GET read by the core (what httptools's callbacks do for it, from
        its first byte to its end)."""
        url, self._headers, end, upgrade, keep_alive = got
        self._in_request = False
        self._disarm()
        self._url = url
        req = self._request("GET", b"", "1.1", keep_alive)
        if upgrade:
            self._upgrade(data[end:], req)
            return
        self._queue.append(req)
        self._next()

    # -- dispatch ----------------------------------------------------------------------------
    def _make_request(self, body: bytes) -> Request:
        parser = self._parser
        return self._request(
            parser.get_method().decode("ascii", "replace"),
            body,
            parser.get_http_version(),
            bool(parser.should_keep_alive()),
        )

    def _request(self, method: str, body: bytes, version: str, keep_alive: bool) -> Request:
        """The request of ``_url`` and ``_headers`` as read."""
        raw: Headers = []
        headers: dict[str, str] = {}
        for name, value in self._headers:
            k = name.decode("latin-1").lower()
            v = value.decode("latin-1")
            raw.append((k, v))
            headers[k] = headers[k] + ", " + v if k in headers else v
        req = Request(
            method,
            self._url.decode("latin-1"),
            raw,
            body,
            version,
            keep_alive,
            self.remote_address,
            headers,
        )
        req.secure = self.secure
        proxies = self.server.trusted_proxies
        if proxies is not None:
            proxies.apply(req)
        return req

    def _next(self) -> None:
        while self._queue and not self._busy and not self._closed:
            req = self._queue.popleft()
            self._busy = True
            try:
                self.server._handle_http(req, self)
            except Exception:
                log.exception("error while handling an HTTP request")
                if self._busy:
                    self.respond(req, 500, [], b"")

    def respond(
        self,
        req: Request,
        status: int,
        headers: Headers,
        body: bytes,
        close: bool = False,
    ) -> None:
        """Write the response to ``req`` and move on to the next queued request."""
        if _trace.http:
            trace.HTTP.debug("%s %s %s -> %d (%d bytes)", self.remote_address, req.method,
                             req.url, status, len(body))
        self._on_lost = None
        if self._closed or self.transport is None:
            self._busy = False
            return
        keep_alive = req.keep_alive and not close and not req.too_large
        head = [f"HTTP/1.1 {status} {reason(status)}\r\n"]
        for k, v in headers:
            head.append(f"{k}: {v}\r\n")
        head.append(f"Content-Length: {len(body)}\r\n")
        if not keep_alive:
            head.append("Connection: close\r\n")
        elif req.http_version == "1.0":
            head.append("Connection: keep-alive\r\n")
        head.append("\r\n")
        if req.method == "HEAD":
            body = b""  # Content-Length above still describes what GET would send
        self.transport.write("".join(head).encode("latin-1") + body)
        self._finish(keep_alive)

    def _finish(self, keep_alive: bool) -> None:
        """A response is written: close, or go on with the next request."""
        self._busy = False
        if not keep_alive:
            self._closed = True
            self._disarm()
            if self.transport is not None:
                self.transport.close()
            return
        if self._queue:
            asyncio.get_running_loop().call_soon(self._next)
        else:
            self._arm_idle()

    # A response whose body comes in parts (an ASGI app's streaming response behind the own
    # front, fastsio.asgi.OtherApp): chunked on HTTP/1.1, delimited by the close on HTTP/1.0.
    def respond_start(self, req: Request, status: int, headers: Headers) -> bool:
        """Write the head of a response whose body follows with :meth:`respond_body` and ends
        with :meth:`respond_end`; False if the connection is gone."""
        if self._closed or self.transport is None:
            return False
        chunked = req.http_version != "1.0"
        head = [f"HTTP/1.1 {status} {reason(status)}\r\n"]
        for k, v in headers:
            head.append(f"{k}: {v}\r\n")
        head.append("Transfer-Encoding: chunked\r\n" if chunked else "Connection: close\r\n")
        head.append("\r\n")
        self._stream = (req, chunked)
        self.transport.write("".join(head).encode("latin-1"))
        return True

    def respond_body(self, data: bytes) -> bool:
        """One part of the body; False once the connection is gone (or was cut off because the
        client does not read: more than ``max_queued_bytes`` waiting)."""
        stream = self._stream
        if stream is None or self._closed or self.transport is None:
            return False
        req, chunked = stream
        if data and req.method != "HEAD":
            if chunked:
                self.transport.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.transport.write(data)
            if self.transport.get_write_buffer_size() > self.server.max_queued_bytes:
                log.warning("HTTP client not reading a streamed response: closing")
                self.abort()
                return False
        return True

    def respond_end(self) -> None:
        """The end of a streamed body: the connection goes on (keep-alive) or closes."""
        stream, self._stream = self._stream, None
        self._on_lost = None
        if stream is None or self._closed or self.transport is None:
            self._busy = False
            return
        req, chunked = stream
        if chunked and req.method != "HEAD":
            self.transport.write(b"0\r\n\r\n")
        self._finish(chunked and req.keep_alive and not req.too_large)

    def on_lost(self, callback: Callable[[], None] | None) -> None:
        """Call ``callback`` if the connection goes away before the pending response is sent."""
        self._on_lost = callback

    def _fail(self, status: int) -> None:
        if self.transport is None or self._closed:
            return
        self._closed = True
        self._disarm()
        body = REASONS.get(status, "Bad Request").encode()
        self.transport.write(
            f"HTTP/1.1 {status} {REASONS.get(status, 'Bad Request')}\r\n"
            f"Connection: close\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode("latin-1")
            + body
        )
        self.transport.close()

    def _upgrade(self, tail: bytes, req: Request | None = None) -> None:
        # The upgrade request is whole: from here picows's handshake timeout and then the
        # Engine.IO heartbeat watch the connection.
        self._in_request = False
        self._disarm()
        if req is None:
            req = self._make_request(b"")
        if self._busy or self._queue:
            # An upgrade pipelined behind unanswered requests has no sane ordering.
            self._fail(400)
            return
        self._upgrade_tail = bytearray(tail)
        self.server._handle_upgrade(req, self)

    def _hand_back(self) -> None:
        head, self._head = self._head, None
        transport = self.transport
        if transport is None or self._closed or head is None or self._router is None:
            return
        self._closed = True
        self._in_request = False
        self._disarm()
        self.server._http_connections.discard(self)
        self.transport = None
        self._router.hand_back(transport, b"".join(head))

    @property
    def is_open(self) -> bool:
        """Still connected and still ours (not closed, failed or handed over)."""
        return self.transport is not None and not self._closed

    def detach(self) -> tuple[asyncio.Transport, bytes]:
        """Give the transport away (WebSocket upgrade): this object stops handling it. Returns
        the transport and the bytes that followed the upgrade request."""
        assert self.transport is not None
        self._closed = True
        self._timer = _NO_TIMER
        self._deadline.close()
        self.server._http_connections.discard(self)
        transport, self.transport = self.transport, None
        tail = bytes(self._upgrade_tail or b"")
        self._upgrade_tail = None
        # uvloop's transport keeps the bound data_received of the protocol it started with, so
        # this object outlives the upgrade: drop what it holds (parser, buffers) right away.
        self._parser = _DETACHED_PARSER
        self._queue = _NO_QUEUE
        self._headers = []
        self._body = []
        return transport, tail

    def close(self) -> None:
        if self.transport is not None and not self._closed:
            self._closed = True
            self._disarm()
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now, unsent bytes included."""
        self._disarm()
        if self.transport is not None:
            self._closed = True
            self.transport.abort()

    @property
    def busy(self) -> bool:
        """A request is being read, or waits for its answer."""
        return self._busy or bool(self._queue) or self._in_request

    def abort_upgrade(self, message: str) -> None:
        """The official server's answer to a refused upgrade: 400, text body, close."""
        self._upgrade_tail = None
        if self.transport is None or self._closed:
            return
        self._disarm()
        body = message.encode()
        self.transport.write(
            b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-type: text/html\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        self._closed = True
        self.transport.close()
