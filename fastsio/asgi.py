"""Engine.IO over ASGI: ``ASGIApp`` serves a fastsio server from any ASGI server (uvicorn,
hypercorn, granian, ...) or mounted in a Starlette/FastAPI application.

The ASGI ``http`` scope carries long-polling, the ``websocket`` scope the WebSocket transport.
Both plug into the same :class:`~fastsio.engine.server.EngineServer` as fastsio's own front:
the handshake, verification and error codes, CORS, cookie, hooks, heartbeat, upgrade, limits,
backpressure and connection state recovery are the engine's. What ASGI cannot give is the
coalesced writes of the own front (each message is its own ``send``): see ``docs/guide.md``,
"Choosing a front".
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import mimetypes
import os
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any, cast

from fastsio.engine import eio3
from fastsio.engine.http import Headers, Request
from fastsio.engine.server import (
    BAD_REQUEST,
    ERROR_MESSAGES,
    FORBIDDEN,
    request_protocol,
)

if TYPE_CHECKING:
    from fastsio.engine.server import EngineServer
    from fastsio.engine.socket import EngineSocket
    from fastsio.server import Server

__all__ = ["ASGIApp", "AsgiRequest", "AsgiWebSocket"]

log = logging.getLogger("fastsio.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApplication = Callable[[Scope, Receive, Send], Awaitable[None]]

# Default deadline (seconds) of the graceful close at lifespan shutdown.
DEFAULT_SHUTDOWN_TIMEOUT = 5.0


class AsgiRequest(Request):
    """A request that came through an ASGI server: the environ of python-socketio style
    handlers also gets ``asgi.scope`` (see :mod:`fastsio.compat`)."""

    __slots__ = ("environ_extra",)

    environ_extra: dict[str, Any]


def _headers(scope: Scope) -> Headers:
    return [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]


def _bheaders(headers: Headers) -> list[tuple[bytes, bytes]]:
    return [(k.encode("latin-1"), str(v).encode("latin-1")) for k, v in headers]


def make_request(scope: Scope, url: str, body: bytes = b"") -> AsgiRequest:
    """The engine's view of an ASGI request; ``url`` is the path the engine routes on."""
    client = scope.get("client")
    req = AsgiRequest(
        scope.get("method", "GET"),
        url,
        _headers(scope),
        body,
        str(scope.get("http_version", "1.1")),
        True,
        client[0] if client else "",
    )
    req.secure = scope.get("scheme") in ("https", "wss")
    req.environ_extra = {"asgi.scope": scope, **scope.get("fastsio.environ", {})}
    if client:
        req.environ_extra["REMOTE_PORT"] = str(client[1])
    return req


# -- long-polling ---------------------------------------------------------------------------------
class _PollConnection:
    """Stands in for the own front's ``HttpConnection`` for one ASGI http request: the engine
    answers through :meth:`respond`, now or later (a long-polling GET)."""

    __slots__ = ("_on_lost", "answer", "done")

    def __init__(self) -> None:
        self.answer: tuple[int, Headers, bytes] | None = None
        self.done = asyncio.get_running_loop().create_future()
        self._on_lost: Callable[[], None] | None = None

    def respond(
        self, req: Request, status: int, headers: Headers, body: bytes, close: bool = False
    ) -> None:
        self._on_lost = None
        if self.done.done():
            return
        if req.method == "HEAD":
            body = b""
        self.answer = (status, headers, body)
        self.done.set_result(None)

    def on_lost(self, callback: Callable[[], None] | None) -> None:
        self._on_lost = callback

    def lost(self) -> None:
        cb, self._on_lost = self._on_lost, None
        if not self.done.done():
            self.done.set_result(None)
        if cb is not None:
            cb()

    @property
    def is_open(self) -> bool:
        return not self.done.done()

    @property
    def busy(self) -> bool:
        return not self.done.done()

    def close(self) -> None:
        # The own front drops the TCP connection here; an ASGI app can only end its answer.
        self._on_lost = None
        if not self.done.done():
            self.answer = (400, [("Connection", "close")], b"")
            self.done.set_result(None)

    abort = close


async def _read_body(receive: Receive, limit: int, declared: str | None) -> tuple[bytes, bool]:
    """The request body and whether it went over ``limit`` (then it is not kept)."""
    if declared is not None:
        try:
            if int(declared) > limit:
                return b"", True  # refused before reading, as the own front
        except ValueError:
            pass
    parts: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ConnectionResetError
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        if chunk:
            parts.append(chunk)
        if not msg.get("more_body"):
            return b"".join(parts), False


async def serve_http(engine: EngineServer, scope: Scope, receive: Receive, send: Send,
                     url: str) -> None:
    """One ASGI http request for the engine (long-polling, preflight, client bundle)."""
    headers = dict(_headers(scope))
    try:
        body, too_large = await _read_body(receive, engine.max_http_buffer_size,
                                           headers.get("content-length"))
    except ConnectionResetError:
        return
    req = make_request(scope, url, body)
    if too_large:
        req.too_large = True
        req.keep_alive = False
    conn = _PollConnection()
    try:
        engine._handle_http(req, cast(Any, conn))
    except Exception:
        log.exception("error while handling an HTTP request")
        if not conn.done.done():
            conn.respond(req, 500, [], b"")
    if not conn.done.done():
        # A long-polling GET: answered when packets come, or dropped if the client goes.
        watch = asyncio.ensure_future(_wait_disconnect(receive))
        try:
            await asyncio.wait((conn.done, watch), return_when=asyncio.FIRST_COMPLETED)
        finally:
            watch.cancel()
        if watch.done() and not watch.cancelled() and not conn.done.done():
            conn.lost()
            return
    if conn.answer is None:
        return
    status, out, payload = conn.answer
    head = _bheaders(out)
    head.append((b"content-length", str(len(payload)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": payload})


async def _wait_disconnect(receive: Receive) -> None:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return


# -- WebSocket ----------------------------------------------------------------------------------
_CLOSE = object()
# The last broadcast frame and its text: a broadcast hands the same frame object to every
# recipient in a row, so each payload is decoded once, not once per connection.
_last_frame: bytes | None = None
_last_payload: tuple[str | bytes, bool] = ("", False)


def _unframe(frame: bytes) -> tuple[str | bytes, bool]:
    """The payload of an unmasked server frame made by ``eio_packet.ws_frame``."""
    global _last_frame, _last_payload
    if frame is _last_frame:
        return _last_payload
    n = frame[1] & 0x7F
    head = 2 if n < 126 else (4 if n == 126 else 10)
    binary = (frame[0] & 0x0F) == 2
    payload: str | bytes = frame[head:] if binary else frame[head:].decode()
    _last_frame, _last_payload = frame, (payload, binary)
    return _last_payload


class AsgiWebSocket:
    """The Engine.IO WebSocket transport over an ASGI ``websocket`` scope.

    The engine queues packets synchronously; a writer task hands them to the ASGI server one
    ``websocket.send`` at a time (the server's ``send`` waits while the peer does not read).
    Backpressure as on the own front: with packets waiting the connection is busy (volatile
    packets skip it), past ``max_queued_bytes`` it is closed (``transport error``).
    """

    name = "websocket"

    __slots__ = (
        "_b64",
        "_high_water",
        "_max_queued",
        "_queue",
        "_queued",
        "_send",
        "_v3",
        "_wake",
        "_writer",
        "closed",
        "max_message_size",
        "socket",
        "writable",
    )

    def __init__(self, send: Send, engine: EngineServer, protocol: int = 4,
                 b64: bool = False) -> None:
        self._send = send
        self._queue: deque[Any] = deque()
        self._queued = 0
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._high_water = engine.write_buffer_high_water
        self._max_queued = engine.max_queued_bytes
        self._v3 = protocol == 3
        self._b64 = b64
        self.socket: EngineSocket | None = None
        self.closed = False
        self.writable = True
        self.max_message_size = engine.max_http_buffer_size

    # -- Engine.IO transport -------------------------------------------------------------------
    @property
    def idle(self) -> bool:
        """Open, with nothing waiting to be written."""
        return self.writable and not self._queue

    def _put(self, payload: str | bytes) -> None:
        if not self.writable:
            return
        self._queue.append(payload)
        self._queued += len(payload)
        self._wake.set()
        if self._queued > self._max_queued and self.socket is not None:
            log.warning("websocket client not reading: %d bytes queued, disconnecting",
                        self._queued)
            sock = self.socket
            self.abort()
            sock._on_error("write buffer limit exceeded")

    def _encode(self, data: bytes, binary: bool) -> str | bytes:
        if binary:
            if self._v3:
                if self._b64:
                    return eio3.encode_base64_packet(data).decode()
                return eio3.encode_binary_packet(data)
            return data
        return data.decode()

    def send(self, packets: list[tuple[bytes, bool]]) -> None:
        for data, binary in packets:
            self._put(self._encode(data, binary))

    def send_one(self, data: bytes, binary: bool) -> None:
        self._put(self._encode(data, binary))

    def send_frame(self, frame: bytes) -> None:
        """A packet already framed for a raw WebSocket (a broadcast): its payload is sent."""
        payload, binary = _unframe(frame)
        if binary and isinstance(payload, bytes):
            self._put(self._encode(payload, True))
        else:
            self._put(payload)

    def flush(self) -> None:
        """Nothing to do: the writer task writes as soon as the loop lets it."""

    def close(self) -> None:
        """Close after what was already queued."""
        if not self.writable:
            return
        self.writable = False
        self._queue.append(_CLOSE)
        self._wake.set()

    def shutdown(self, noop: bool = False) -> None:
        self.close()

    def abort(self) -> None:
        """Close now: what is queued is dropped."""
        self.writable = False
        self._queue.clear()
        self._queued = 0
        self._queue.append(_CLOSE)
        self._wake.set()

    def write_buffer_size(self) -> int:
        return self._queued

    # -- the connection ------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        send = self._send
        queue = self._queue
        while True:
            while queue:
                item = queue.popleft()
                if item is _CLOSE:
                    await send({"type": "websocket.close", "code": 1000})
                    return
                self._queued -= len(item)
                if isinstance(item, str):
                    await send({"type": "websocket.send", "text": item})
                else:
                    await send({"type": "websocket.send", "bytes": item})
            self._wake.clear()
            await self._wake.wait()

    async def _read(self, receive: Receive) -> None:
        while True:
            msg = await receive()
            kind = msg["type"]
            if kind == "websocket.disconnect":
                return
            if kind != "websocket.receive" or self.closed:
                continue
            text = msg.get("text")
            if text is not None:
                data, binary = text.encode(), False
            else:
                data, binary = bytes(msg.get("bytes") or b""), True
            if len(data) > self.max_message_size:
                # As the own front (picows): the connection is failed with 1009.
                self.writable = False
                self._queue.clear()
                await self._send({"type": "websocket.close", "code": 1009})
                return
            if self._v3:
                try:
                    if binary:
                        data, binary = eio3.decode_binary_packet(data)
                    elif data[:1] == b"b":
                        data, binary = eio3.decode_text_packet(data.decode())
                except Exception:
                    data, binary = b"", False  # an empty text packet: the session's parse error
            if self.socket is not None:
                self.socket._on_packet(cast(Any, self), data, binary)

    async def run(self, receive: Receive) -> None:
        """Serve until the peer goes or the transport closes."""
        if self._writer is None:
            self.start()
        writer = self._writer
        assert writer is not None
        reader = asyncio.ensure_future(self._read(receive))
        try:
            await asyncio.wait((reader, writer), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, writer):
                if not task.done():
                    task.cancel()
            await asyncio.gather(reader, writer, return_exceptions=True)
            self.writable = False
            self._queue.clear()
            if not self.closed:
                self.closed = True
                if self.socket is not None:
                    self.socket._on_transport_close(cast(Any, self))


async def _refuse_ws(scope: Scope, send: Send, status: int, message: str) -> None:
    """Refuse a WebSocket handshake: with a real HTTP answer where the server supports ASGI's
    ``websocket.http.response`` extension (as the own front answers), else a plain close
    (the server answers 403)."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        body = message.encode()
        await send({"type": "websocket.http.response.start", "status": status,
                    "headers": [(b"content-type", b"text/html"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1008})


async def serve_websocket(engine: EngineServer, scope: Scope, receive: Receive, send: Send,
                          url: str) -> None:
    """One ASGI websocket connection for the engine: a new session or an upgrade probe."""
    msg = await receive()
    if msg["type"] != "websocket.connect":
        return
    req = make_request(scope, url)
    error = engine._verify(req, upgrade=True)
    if error is not None:
        await _refuse_ws(scope, send, 400, error[1] or ERROR_MESSAGES[error[0]])
        return
    if engine._closing:
        await _refuse_ws(scope, send, 503, "Service Unavailable")
        return
    sid = req.query.get("sid")
    if sid:
        sock = engine.clients[sid]
        if (sock.upgrading or sock.upgraded or not engine.allow_upgrades
                or sock.transport.name != "polling"):
            await _refuse_ws(scope, send, 400, ERROR_MESSAGES[BAD_REQUEST])
            return
        ws = AsgiWebSocket(send, engine, sock.protocol, bool(req.query.get("b64")))
        if not await _accept(engine, req, send, sid):
            return
        ws.start()
        engine._on_probe_open(sid, cast(Any, ws))
        await ws.run(receive)
        return
    if engine.allow_request is not None:
        refusal = await _allowed(engine, req)
        if refusal is not None:
            await _refuse_ws(scope, send, 403, refusal or ERROR_MESSAGES[FORBIDDEN])
            return
    new_sid = await _make_sid(engine, req)
    if new_sid is None:
        await _refuse_ws(scope, send, 400, ERROR_MESSAGES[BAD_REQUEST])
        return
    if engine._closing:
        await _refuse_ws(scope, send, 503, "Service Unavailable")
        return
    protocol = request_protocol(req)
    ws = AsgiWebSocket(send, engine, protocol, bool(req.query.get("b64")))
    if not await _accept(engine, req, send, new_sid):
        return
    ws.start()
    engine._on_ws_open(req, cast(Any, ws), new_sid, protocol)
    await ws.run(receive)


async def _accept(engine: EngineServer, req: Request, send: Send, sid: str) -> bool:
    headers: Headers = []
    engine._response_headers(req, headers, sid)
    try:
        await send({"type": "websocket.accept", "headers": _bheaders(headers)})
    except Exception:  # the peer went away during the handshake
        return False
    return True


async def _allowed(engine: EngineServer, req: Request) -> str | None:
    """``None`` when ``allow_request`` accepts, else the refusal's message (maybe empty)."""
    fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def accept() -> None:
        fut.set_result(None)

    def refuse(message: str | None) -> None:
        fut.set_result(message or "")

    await engine._allow_then(req, accept, refuse)
    return await fut


async def _make_sid(engine: EngineServer, req: Request) -> str | None:
    fut: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()

    def then(sid: str) -> None:
        if not fut.done():
            fut.set_result(sid)

    def fail() -> None:
        if not fut.done():
            fut.set_result(None)

    engine._with_sid(req, then, fail)
    return await fut


# -- the application ----------------------------------------------------------------------------
def _native(io: Any) -> Server:
    """The native server of ``io`` (a ``fastsio.Server`` or a ``fastsio.compat`` server)."""
    inner = getattr(io, "io", None)
    return cast("Server", inner if inner is not None else io)


def _norm_path(path: str | None) -> str | None:
    if path is None:
        return None
    return "/" + path.strip("/")


async def _maybe_await(value: Any) -> None:
    if inspect.isawaitable(value):
        await value


class ASGIApp:
    """An ASGI application serving the Socket.IO server ``io`` under ``/socketio_path/``.

    ``io`` is a :class:`fastsio.Server` or a :class:`fastsio.compat.AsyncServer`. Other
    requests go to ``other_asgi_app`` (a FastAPI or Starlette app, say), else to
    ``static_files`` (python-socketio's mapping: ``{"/": "index.html", "/static": "./public"}``,
    a value may be ``{"filename": ..., "content_type": ...}``), else get 404.

    Mounted (``app.mount("/ws", ASGIApp(io))``), the Socket.IO path is found below the mount
    point (``root_path``) as well as at the full path. ``on_startup``/``on_shutdown`` (sync or
    async) run on the ASGI lifespan events; at shutdown the server closes gracefully within
    ``shutdown_timeout`` seconds (default: the server's ``shutdown_timeout``, else 5).
    """

    def __init__(
        self,
        io: Any,
        other_asgi_app: ASGIApplication | None = None,
        static_files: dict[str, Any] | None = None,
        socketio_path: str | None = "socket.io",
        on_startup: Callable[[], Any] | None = None,
        on_shutdown: Callable[[], Any] | None = None,
        shutdown_timeout: float | None = None,
    ) -> None:
        self.server = _native(io)
        self.engine = self.server.engine
        self.other_asgi_app = other_asgi_app
        self.static_files = dict(static_files or {})
        self.socketio_path = _norm_path(socketio_path)
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        if shutdown_timeout is None:
            shutdown_timeout = self.server.shutdown_timeout
        self.shutdown_timeout = (
            DEFAULT_SHUTDOWN_TIMEOUT if shutdown_timeout is None else shutdown_timeout
        )
        self._shut = False

    # -- routing -------------------------------------------------------------------------------
    def engine_url(self, scope: Scope) -> str | None:
        """The URL the engine routes on for a request of ours, else ``None``."""
        path: str = scope.get("path", "/")
        qs = scope.get("query_string", b"").decode("latin-1")
        base = self.socketio_path
        if base is None:
            rest = "/"
        else:
            rest_or_none = self._below(path, base)
            root = scope.get("root_path", "")
            if rest_or_none is None and root and path.startswith(root):
                # Mounted: the path may or may not still carry the mount point (ASGI servers
                # and frameworks differ), so look below root_path too.
                rest_or_none = self._below(path[len(root):] or "/", base)
            if rest_or_none is None:
                return None
            rest = rest_or_none
        url = self.engine.path + rest
        return url + "?" + qs if qs else url

    @staticmethod
    def _below(path: str, base: str) -> str | None:
        if path == base or path == base + "/":
            return "/"
        if path.startswith(base + "/"):
            return path[len(base):]
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        url = self.engine_url(scope) if kind in ("http", "websocket") else None
        if url is not None:
            if kind == "http":
                await serve_http(self.engine, scope, receive, send, url)
            else:
                await serve_websocket(self.engine, scope, receive, send, url)
            return
        if kind == "http" and self.static_files:
            found = self._static(scope.get("path", "/"))
            if found is not None:
                await self._send_file(receive, send, *found)
                return
        if self.other_asgi_app is not None:
            await self.other_asgi_app(scope, receive, send)
        elif kind == "http":
            await send({"type": "http.response.start", "status": 404,
                        "headers": [(b"content-type", b"text/plain"),
                                    (b"content-length", b"9")]})
            await send({"type": "http.response.body", "body": b"Not Found"})
        elif kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1000})

    # -- static files --------------------------------------------------------------------------
    def _static(self, path: str) -> tuple[str, str] | None:
        """``(filename, content_type)`` for ``path`` under python-socketio's ``static_files``
        rules: an exact entry, else the longest folder entry above it plus the rest of the
        path; a folder gives its ``""`` entry or ``index.html``."""
        rules = self.static_files
        rule = rules.get(path)
        rest = ""
        if rule is None:
            head = path
            while head:
                head, _, last = head.rpartition("/")
                rest = "/" + last + rest
                rule = rules.get(head) or rules.get(head + "/")
                if rule is not None:
                    break
        if rule is None or "../" in rest or "/.." in rest:
            return None
        spec = {"filename": rule} if isinstance(rule, str) else dict(rule)
        filename = str(spec["filename"])
        if filename.endswith("/") and rest.startswith("/"):
            rest = rest[1:]
        filename += rest
        content_type = spec.get("content_type")
        if filename.endswith("/"):
            default = rules.get("")
            if default is None:
                filename += "index.html"
            elif isinstance(default, str):
                filename += default
            else:
                filename += default["filename"]
                content_type = default.get("content_type", content_type)
        if not os.path.isfile(filename):
            return None
        if content_type is None:
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return filename, content_type

    @staticmethod
    async def _send_file(receive: Receive, send: Send, filename: str, ctype: str) -> None:
        with open(filename, "rb") as f:  # noqa: ASYNC230 - small files, as python-socketio
            body = f.read()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", ctype.encode()),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    # -- lifespan ------------------------------------------------------------------------------
    async def startup(self) -> None:
        if self.on_startup is not None:
            await _maybe_await(self.on_startup())

    async def shutdown(self) -> None:
        """``on_shutdown``, then a graceful close of every session within the deadline."""
        if self._shut:
            return
        self._shut = True
        try:
            if self.on_shutdown is not None:
                await _maybe_await(self.on_shutdown())
        finally:
            await self.server.close(self.shutdown_timeout)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.other_asgi_app is not None:
            # The other app keeps its own lifespan; ours runs around its events.
            async def wrapped() -> Message:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await self.startup()
                elif msg["type"] == "lifespan.shutdown":
                    await self.shutdown()
                return msg

            await self.other_asgi_app(scope, wrapped, send)
            return
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("error in on_startup")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                try:
                    await self.shutdown()
                except Exception as exc:
                    log.exception("error in on_shutdown")
                    await send({"type": "lifespan.shutdown.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return
