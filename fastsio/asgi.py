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
    from fastsio._core.outbox import Outbox
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


class AsgiWebSocket:
    """The Engine.IO WebSocket transport over an ASGI ``websocket`` scope.

    It serves the session's :class:`~fastsio._core.outbox.Outbox` the way long-polling does
    (``use_packets``): while the writer task is idle the outbox is ``ready`` and hands over
    everything queued in an iteration at once; the writer gives it to the ASGI server one
    ``websocket.send`` per packet (the server's ``send`` waits while the peer does not read).
    Backpressure as on the own front: while the writer is busy the connection is not idle
    (volatile packets skip it), and past ``max_queued_bytes`` waiting it is closed
    (``transport error``).
    """

    name = "websocket"

    __slots__ = ("_b64", "_box", "_out", "_send", "_v3", "_wake", "_writer", "closed",
                 "max_message_size", "socket", "writable")

    def __init__(self, send: Send, engine: EngineServer, protocol: int = 4,
                 b64: bool = False) -> None:
        self._send = send
        self._box: Outbox | None = None
        self._out: deque[Any] = deque()  # messages handed to the writer task
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._v3 = protocol == 3
        self._b64 = b64
        self.socket: EngineSocket | None = None
        self.closed = False
        self.writable = True
        self.max_message_size = engine.max_http_buffer_size

    # -- Engine.IO transport -------------------------------------------------------------------
    def attach(self, box: Outbox) -> None:
        """Become the transport of the session that owns ``box``."""
        self._box = box
        box.use_packets(self)
        self._ready()

    def _ready(self) -> None:
        box = self._box
        if box is None:
            return
        box.ready = self.writable and not self._out
        if box.ready and box.has_queued:
            box.schedule()

    def _drain(self) -> None:
        box = self._box
        if box is None or not self.writable:
            return
        packets = box.take()
        if not packets:
            return
        box.ready = False
        for data, binary in packets:
            self._out.append(self._encode(data, binary))
        self._wake.set()

    def _overflow(self, queued: int) -> None:
        sock = self.socket
        if sock is None or not self.writable:
            return
        # A client that stopped reading must not grow memory without bound.
        log.warning("websocket client not reading: %d bytes queued, disconnecting", queued)
        self.abort()
        sock._on_error("write buffer limit exceeded")

    @property
    def idle(self) -> bool:
        """Open, with nothing waiting to be written."""
        if self._box is not None:
            return bool(self._box.idle)
        return self.writable and not self._out

    def _encode(self, data: bytes, binary: bool) -> str | bytes:
        if binary:
            if self._v3:
                if self._b64:
                    return eio3.encode_base64_packet(data).decode()
                return eio3.encode_binary_packet(data)
            return data
        return data.decode()

    def send(self, packets: list[tuple[bytes, bool]]) -> None:
        """Queue Engine.IO packets (text ones carry their type digit)."""
        if self._box is not None:
            self._box.push_packets(packets)
        elif self.writable:
            for data, binary in packets:
                self._out.append(self._encode(data, binary))
            self._wake.set()

    def close(self) -> None:
        """Close after what was already queued."""
        if not self.writable:
            return
        box = self._box
        if box is not None:
            for data, binary in box.take():
                self._out.append(self._encode(data, binary))
            box.ready = False
        self.writable = False
        self._out.append(_CLOSE)
        self._wake.set()

    def shutdown(self, noop: bool = False) -> None:
        self.close()

    def abort(self) -> None:
        """Close now: what is queued is dropped."""
        self.writable = False
        if self._box is not None:
            self._box.clear()
            self._box.ready = False
        self._out.clear()
        self._out.append(_CLOSE)
        self._wake.set()

    def release(self) -> None:
        """Nothing to release (a polling transport's duty)."""

    def write_buffer_size(self) -> int:
        queued = int(self._box.queued) if self._box is not None else 0
        return queued + sum(len(m) for m in self._out if m is not _CLOSE)

    # -- the connection ------------------------------------------------------------------------
    def start(self) -> None:
        self._writer = asyncio.ensure_future(self._write())

    async def _write(self) -> None:
        send = self._send
        out = self._out
        while True:
            while out:
                item = out.popleft()
                if item is _CLOSE:
                    await send({"type": "websocket.close", "code": 1000})
                    return
                if isinstance(item, str):
                    await send({"type": "websocket.send", "text": item})
                else:
                    await send({"type": "websocket.send", "bytes": item})
            self._ready()
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
                self._out.clear()
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
            self._out.clear()
            if self._box is not None:
                self._box.ready = False
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
    engine.responses.session_headers(req, headers, sid)
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

    later = engine._allow_then(req, accept, refuse)
    if later is not None:
        await later
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


def own_front_server(target: Any) -> Server:
    """The native server that serves ``target`` (an :class:`ASGIApp` or a ``fastsio.compat``
    server) on fastsio's own front: an ``ASGIApp``'s ``other_asgi_app`` becomes the server's
    and its ``on_startup``/``on_shutdown`` run with ``start``/``close`` (``fastsio run app:app``
    for an app written for uvicorn). Its ``static_files`` and a
    ``socketio_path`` other than the server's ``path`` are not carried over (a warning says
    so): the own front serves the server's own ``static_files`` and ``path``."""
    if not isinstance(target, ASGIApp):
        return _native(target)
    server = target.server
    if target.socketio_path is not None and target.socketio_path != server.engine.path:
        log.warning("ASGIApp socketio_path %r: the own front serves Socket.IO at %r (the "
                    "server's path option)", target.socketio_path, server.engine.path)
    if target.static_files:
        log.warning("ASGIApp static_files are not served by the own front: give them to the "
                    "server (Server(static_files=...)) or to the other ASGI app")
    other = target.other_asgi_app
    hooks = target.on_startup is not None or target.on_shutdown is not None
    if (other is not None or hooks) and server.engine.other_app is None:
        server.other_asgi_app = other
        server.engine.other_app = OtherApp(other if other is not None else _not_found, server,
                                           target.on_startup, target.on_shutdown)
    return server


async def _not_found(scope: Scope, receive: Receive, send: Send) -> None:
    """What the own front answers without another app: 404, and no WebSocket."""
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"Not Found"})
    elif scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000})
    else:
        raise RuntimeError("no lifespan")  # OtherApp then runs only the hooks


# -- the other way round: an ASGI app behind fastsio's own front --------------------------------
class OtherApp:
    """Runs an ASGI application for the requests fastsio's own front does not serve itself
    (``fastsio.Server(other_asgi_app=app)``): HTTP requests and WebSocket connections outside
    the Socket.IO path, and the application's lifespan with the server's.

    Limits of this in-process bridge: a request body is read whole first (bounded by the
    server's ``max_http_buffer_size``; larger ones get 413), and there is no HTTP/2. Responses
    stream: a body sent in parts goes out chunked as it comes (server-sent events work), and a
    client that stops reading one is cut off past ``max_queued_bytes``.
    """

    def __init__(self, app: ASGIApplication, server: Server,
                 on_startup: Callable[[], Any] | None = None,
                 on_shutdown: Callable[[], Any] | None = None) -> None:
        self.app = app
        self.server = server
        # An ASGIApp's own hooks, when fastsio run serves it on the own front.
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown
        self._lifespan: asyncio.Task[None] | None = None
        self._lifespan_in: asyncio.Queue[Message] | None = None
        self._lifespan_out: asyncio.Queue[Message] | None = None

    def _scope(self, kind: str, req: Request, conn: Any) -> dict[str, Any]:
        path, _, qs = req.url.partition("?")
        transport = getattr(conn, "transport", None)
        sockname = transport.get_extra_info("sockname") if transport is not None else None
        peer = transport.get_extra_info("peername") if transport is not None else None
        secure = req.secure
        return {
            "type": kind,
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": req.http_version or "1.1",
            "method": req.method,
            "scheme": ("wss" if secure else "ws") if kind == "websocket"
            else ("https" if secure else "http"),
            "path": req.path,
            "raw_path": path.encode("latin-1"),
            "query_string": qs.encode("latin-1"),
            "root_path": "",
            "headers": [(k.encode("latin-1"), v.encode("latin-1"))
                        for k, v in req.headers.items()],
            "client": (peer[0], peer[1]) if isinstance(peer, tuple) else None,
            "server": (sockname[0], sockname[1]) if isinstance(sockname, tuple) else None,
            "state": {},
        }

    # -- http ----------------------------------------------------------------------------------
    def http(self, req: Request, conn: Any) -> None:
        """Answer ``req`` on ``conn`` (fastsio's ``HttpConnection``) with the application."""
        self.server._spawn(self._http(req, conn))

    async def _http(self, req: Request, conn: Any) -> None:
        gone = asyncio.Event()
        conn.on_lost(gone.set)
        sent_body = False
        answer: dict[str, Any] = {}
        body: list[bytes] = []
        # "buffer": nothing sent yet; "stream": the head went out, parts follow; "done".
        state = "buffer"

        async def receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": req.body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(msg: Message) -> None:
            nonlocal state
            kind = msg["type"]
            if kind == "http.response.start":
                answer["status"] = int(msg["status"])
                answer["headers"] = [
                    (k.decode("latin-1"), v.decode("latin-1"))
                    for k, v in msg.get("headers", [])
                    if k.lower() not in (b"content-length", b"connection",
                                         b"transfer-encoding")
                ]
                return
            if kind != "http.response.body" or "status" not in answer or state == "done":
                return
            chunk = bytes(msg.get("body", b""))
            more = bool(msg.get("more_body"))
            if state == "buffer" and not more:
                # The whole response in one message (most responses): sized, keep-alive.
                state = "done"
                gone.set()  # receive() says disconnect from now on, as the spec asks
                conn.respond(req, answer["status"], answer["headers"], chunk)
                return
            if state == "buffer":
                # A streaming response (server-sent events, large downloads): parts go out
                # as they come.
                state = "stream"
                if not conn.respond_start(req, answer["status"], answer["headers"]):
                    state = "done"
                    gone.set()
                    return
            if not conn.respond_body(chunk):
                state = "done"
                gone.set()
                return
            if not more:
                state = "done"
                gone.set()
                conn.respond_end()

        try:
            await self.app(self._scope("http", req, conn), receive, send)
        except Exception:
            log.exception("error in the other ASGI application")
            answer["error"] = True
            if state == "stream":
                conn.abort()  # the head went out: the client sees the body cut short
                return
        if state == "buffer":
            if "status" in answer and not answer.get("error"):
                conn.respond(req, answer["status"], answer["headers"], b"".join(body))
            else:
                conn.respond(req, 500, [("Content-Type", "text/plain")],
                             b"Internal Server Error")
        elif state == "stream":
            conn.respond_end()  # the app returned without its last part

    # -- websocket -----------------------------------------------------------------------------
    def websocket(self, req: Request, conn: Any) -> None:
        """Run the application for the WebSocket upgrade ``req`` (not ours) on ``conn``."""
        self.server._spawn(self._websocket(req, conn))

    async def _websocket(self, req: Request, conn: Any) -> None:
        from fastsio.engine.websocket import AppWebSocket, hand_over

        engine = self.server.engine
        listener = AppWebSocket()
        state = {"accepted": False, "closed": False}
        scope = self._scope("websocket", req, conn)
        subprotocols = req.headers.get("sec-websocket-protocol")
        scope["subprotocols"] = [p.strip() for p in subprotocols.split(",")] if subprotocols \
            else []
        connected = False

        async def receive() -> Message:
            nonlocal connected
            if not connected:
                connected = True
                return {"type": "websocket.connect"}
            return await listener.incoming.get()

        async def send(msg: Message) -> None:
            kind = msg["type"]
            if kind == "websocket.accept":
                if state["accepted"] or not conn.is_open:
                    return
                state["accepted"] = True
                headers: Headers = [(k.decode("latin-1"), v.decode("latin-1"))
                                    for k, v in msg.get("headers", [])]
                if msg.get("subprotocol"):
                    headers.append(("Sec-WebSocket-Protocol", msg["subprotocol"]))
                if not hand_over(conn, req, listener, engine.max_http_buffer_size, headers):
                    listener._gone(1006)  # answered 400: a key or version no client sends
                    return
                await listener.opened.wait()
            elif kind == "websocket.send":
                text = msg.get("text")
                listener.send(text if text is not None else msg.get("bytes") or b"")
            elif kind == "websocket.close":
                if state["accepted"]:
                    listener.close(int(msg.get("code", 1000)), msg.get("reason") or "")
                elif not state["closed"]:
                    state["closed"] = True
                    conn._upgrade_tail = None
                    conn.respond(req, 403, [], b"", close=True)

        try:
            await self.app(scope, receive, send)
        except Exception:
            log.exception("error in the other ASGI application (websocket)")
        if state["accepted"]:
            listener.close(1011 if not listener.closed else 1000, "")
        elif not state["closed"]:
            conn._upgrade_tail = None
            conn.respond(req, 403, [], b"", close=True)

    # -- lifespan ------------------------------------------------------------------------------
    async def startup(self) -> None:
        """Run ``on_startup``, then the application's lifespan startup (if it speaks the
        lifespan protocol)."""
        if self.on_startup is not None:
            await _maybe_await(self.on_startup())
        inbox: asyncio.Queue[Message] = asyncio.Queue()
        outbox: asyncio.Queue[Message] = asyncio.Queue()
        self._lifespan_in, self._lifespan_out = inbox, outbox

        async def run() -> None:
            try:
                await self.app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}},
                               inbox.get, outbox.put)
            except Exception:
                # An application without lifespan support raises here (as with uvicorn's
                # "lifespan: auto"): it is served without one.
                log.debug("the other ASGI application does not support lifespan",
                          exc_info=True)
            await outbox.put({"type": "lifespan.unsupported"})

        self._lifespan = asyncio.ensure_future(run())
        await inbox.put({"type": "lifespan.startup"})
        msg = await outbox.get()
        if msg["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the other ASGI application failed to start: "
                               f"{msg.get('message', '')}")
        if msg["type"] == "lifespan.unsupported":
            self._lifespan = None

    async def shutdown(self, timeout: float | None = None) -> None:
        """The application's lifespan shutdown, then ``on_shutdown``."""
        try:
            await self._shutdown_app(timeout)
        finally:
            if self.on_shutdown is not None:
                await _maybe_await(self.on_shutdown())

    async def _shutdown_app(self, timeout: float | None) -> None:
        task, self._lifespan = self._lifespan, None
        if task is None or self._lifespan_in is None or self._lifespan_out is None:
            return
        await self._lifespan_in.put({"type": "lifespan.shutdown"})
        try:
            # Closing at once (no deadline) still gives the application a few seconds.
            await asyncio.wait_for(self._lifespan_out.get(),
                                   DEFAULT_SHUTDOWN_TIMEOUT if timeout is None else timeout)
        except asyncio.TimeoutError:
            log.warning("the other ASGI application's shutdown did not finish in time")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
