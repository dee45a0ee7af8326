"""The Engine.IO server: handshake, request routing, errors, CORS, cookie, hooks, lifecycle."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from fastsio._core import ids
from fastsio._core.eio_packet import ws_frame
from fastsio.engine.http import Headers, HttpConnection, Request, Router
from fastsio.engine.options import (
    DEFAULT_CORS_METHODS,
    Compression,
    Cookie,
    Cors,
    CorsOrigins,
    HeadersHook,
    ResponsePolicy,
    TrustedProxies,
)
from fastsio.engine.polling import PollingTransport
from fastsio.engine.socket import EngineSocket
from fastsio.engine.timers import Timer, TimerWheel
from fastsio.engine.websocket import Flusher, WebSocketTransport, WebSocketTransport3, hand_over

log = logging.getLogger("fastsio.engine")

__all__ = ["AllowRequest", "CorsOrigins", "EngineServer", "HeadersHook", "HttpHandler"]

UNKNOWN_TRANSPORT = 0
UNKNOWN_SID = 1
BAD_HANDSHAKE_METHOD = 2
BAD_REQUEST = 3
FORBIDDEN = 4
UNSUPPORTED_PROTOCOL_VERSION = 5

_DRAIN_POLL = 0.005  # how often a graceful close() looks at what is left (seconds)

ERROR_MESSAGES = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}

HttpHandler = Callable[[Request], "tuple[int, Headers, bytes] | None"]
AllowRequest = Callable[[Request], bool | str | Awaitable[bool | str | None] | None]
SidGenerator = Callable[[Request], "str | Awaitable[str]"]


def request_protocol(req: Request) -> int:
    """The Engine.IO revision a handshake asks for: 4 for ``EIO=4``, else 3 (as the official
    server, which reads a missing ``EIO`` as revision 3)."""
    return 4 if req.query.get("EIO") == "4" else 3


class EngineServer:
    """A bare Engine.IO server (revision 4; revision 3 too with ``allow_eio3``).
    ``on_connection(socket)`` is called for each new session. Times are in seconds.

    HTTP options, after the official server's (snake_case):

    - ``cors_allowed_origins`` (``"*"``, ``True``, an origin, a list, a regex, a callable;
      ``None``: no CORS header at all), ``cors_credentials``, ``cors_methods``,
      ``cors_allowed_headers`` (default: those the preflight asks for),
      ``cors_exposed_headers``, ``cors_max_age``;
    - ``cookie``: ``True`` or a dict (see :class:`~fastsio.engine.options.Cookie`): the session
      id in a cookie on the handshake response;
    - ``http_compression``: gzip/deflate of polling responses (``True``: from 1024 bytes);
    - ``initial_headers(headers, request)``: called for the handshake response (polling, or the
      WebSocket ``101``); ``headers(headers, request)``: for every polling response and every
      ``101``; both may append ``(name, value)`` pairs to ``headers``;
    - ``allow_request(request)``: ``True``/``None`` accepts a handshake, ``False`` or a message
      refuses it (403); may be async. ``sid_generator(request)``: the session id (may be async).

    Timeouts of the HTTP front (slowloris): ``http_request_timeout`` (default 10 s) bounds the
    time from a connection's start, or a request's first byte, to the end of the request
    (headers and body, a WebSocket upgrade request included): past it the client gets ``408`` and
    the connection is closed. ``http_keep_alive_timeout`` (default 5 s, Node's
    ``keepAliveTimeout``) closes a connection idle between requests. ``None`` disables either.
    A request read whole and waiting for its answer (a long-polling GET) is not timed.
    ``websocket_handshake_timeout`` is accepted for compatibility and bounds nothing: every
    WebSocket handshake (an Engine.IO upgrade, or one the ASGI application behind the front
    accepts, ``Server(other_asgi_app=)``) is answered in the call that hands the connection
    over, its request read whole under ``http_request_timeout``.
    """

    def __init__(
        self,
        *,
        path: str = "/socket.io",
        transports: Iterable[str] = ("polling", "websocket"),
        allow_upgrades: bool = True,
        upgrade_timeout: float = 10.0,
        ping_interval: float = 25.0,
        ping_timeout: float = 20.0,
        max_http_buffer_size: int = 1_000_000,
        write_buffer_high_water: int = 64 * 1024,
        max_queued_bytes: int = 16 * 1024 * 1024,
        cors_allowed_origins: CorsOrigins = None,
        cors_credentials: bool = False,
        cors_methods: str | Iterable[str] = DEFAULT_CORS_METHODS,
        cors_allowed_headers: str | Iterable[str] | None = None,
        cors_exposed_headers: str | Iterable[str] | None = None,
        cors_max_age: float | None = None,
        cookie: bool | dict[str, Any] | None = None,
        http_compression: bool | dict[str, Any] = True,
        per_message_deflate: bool | dict[str, Any] | None = None,
        allow_eio3: bool = False,
        allow_request: AllowRequest | None = None,
        sid_generator: SidGenerator | None = None,
        initial_headers: HeadersHook | None = None,
        headers: HeadersHook | None = None,
        websocket_handshake_timeout: float = 10.0,
        max_request_line: int = 8192,
        max_header_size: int = 16384,
        max_header_count: int = 100,
        http_request_timeout: float | None = 10.0,
        http_keep_alive_timeout: float | None = 5.0,
        trusted_proxies: bool | str | Iterable[str] | None = None,
        on_connection: Callable[[EngineSocket], None] | None = None,
        http_handler: HttpHandler | None = None,
    ) -> None:
        if per_message_deflate:
            raise ValueError(
                "per_message_deflate is not supported: picows, fastsio's WebSocket layer, "
                "implements no WebSocket extension (permessage-deflate included); polling "
                "responses are compressed with http_compression"
            )
        path = "/" + path.strip("/")
        self.path = path
        self._path_slash = path + "/"
        self.transports = tuple(transports)
        for t in self.transports:
            if t not in ("polling", "websocket"):
                raise ValueError(f"unknown transport {t!r}")
        self.allow_upgrades = allow_upgrades
        self.upgrade_timeout = upgrade_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_http_buffer_size = max_http_buffer_size
        # Backpressure: a connection whose unsent bytes pass write_buffer_high_water is busy
        # (volatile packets are dropped for it); past max_queued_bytes it is disconnected
        # ("transport error"), so a client that stops reading cannot grow memory unbounded.
        if not 0 < write_buffer_high_water <= max_queued_bytes:
            raise ValueError("need 0 < write_buffer_high_water <= max_queued_bytes")
        self.write_buffer_high_water = write_buffer_high_water
        self.max_queued_bytes = max_queued_bytes
        self.cors_allowed_origins = cors_allowed_origins
        self.cors_credentials = cors_credentials
        self.cors = Cors(
            cors_allowed_origins,
            cors_credentials,
            cors_methods,
            cors_allowed_headers,
            cors_exposed_headers,
            cors_max_age,
        )
        self.cookie = Cookie(cookie) if cookie else None
        self.http_compression = Compression(http_compression) if http_compression else None
        self.allow_eio3 = allow_eio3
        self.allow_request = allow_request
        self.sid_generator = sid_generator
        self.initial_headers = initial_headers
        self.headers = headers
        # What these options add to every answer, for whatever answers (transports, the 101,
        # ASGI, the file server): they read nothing else of the server's.
        self.responses = ResponsePolicy(
            self.cors, self.cookie, self.http_compression, initial_headers, headers
        )
        self.websocket_handshake_timeout = websocket_handshake_timeout
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        for name, value in (
            ("http_request_timeout", http_request_timeout),
            ("http_keep_alive_timeout", http_keep_alive_timeout),
        ):
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be a positive number of seconds, or None")
        self.http_request_timeout = http_request_timeout
        self.http_keep_alive_timeout = http_keep_alive_timeout
        # X-Forwarded-For / -Proto from these peers set each request's address and secure.
        self.trusted_proxies = (
            TrustedProxies(trusted_proxies) if trusted_proxies not in (None, False) else None
        )
        self.on_connection = on_connection
        # Set in each worker of ``fastsio run --workers N`` (see fastsio.workers), before any
        # connection: every HttpConnection made afterwards asks it about other workers' sids.
        self.router: Router | None = None
        # Called with the session once it has moved to a WebSocket (the official socket's
        # "upgrade" event), for whoever watches the engine; None costs nothing.
        self.on_upgrade: Callable[[EngineSocket], None] | None = None
        self.http_handler = http_handler
        # fastsio.asgi.OtherApp: the ASGI application that gets the HTTP requests and
        # WebSocket upgrades outside the Engine.IO path (Server(other_asgi_app=...)).
        self.other_app: Any = None
        self.clients: dict[str, EngineSocket] = {}
        # Every deadline of this server and of the Socket.IO layer above it: heartbeats, the
        # HTTP front's timeouts, connect and upgrade timeouts, lingering polling sessions,
        # recovery sessions (fastsio.engine.timers).
        self.timers = TimerWheel()
        self._closing = False  # close() has begun: no new session is accepted
        self._draining: list[WebSocketTransport] = []
        self._flusher = Flusher(write_buffer_high_water, max_queued_bytes, self.timers.loop)
        self._http_connections: set[HttpConnection] = set()
        self._servers: list[asyncio.base_events.Server] = []
        self._lingering: dict[str, tuple[PollingTransport, Timer]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: HttpConnection(self), host, port, **kwargs)
        self._closing = False
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        return self.port

    def stop_accepting(self) -> None:
        """The first step of :meth:`close`: stop listening, and refuse new sessions (``503``)
        on the connections already open. Sessions in progress go on."""
        if self._closing:
            return
        self._closing = True
        for srv in self._servers:
            srv.close()
        # The WebSockets whose close a graceful close() waits for (sessions forget their
        # transport once closed).
        self._draining = [
            t
            for sock in self.clients.values()
            for t in (sock.transport, sock._probe)
            if isinstance(t, WebSocketTransport)
        ]

    async def close(self, timeout: float | None = None) -> None:
        """Stop accepting, close every session (``forced server close``), drop every timer.

        Without ``timeout``, at once: a WebSocket still writes what was queued for it before its
        close frame (in the background), but a polling session's packets that its client has not
        fetched yet are dropped with it, and every connection is closed.

        With ``timeout`` (seconds), gracefully: every WebSocket sends what was queued for it and
        a close frame, and is closed once that is written; every polling session hands what was
        queued and a close packet to its pending GET, or to the client's next one on a
        connection already open; connections are closed once nothing is due on them. Whatever
        is still open when ``timeout`` runs out is cut off, and ``close`` returns.
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + max(0.0, timeout)
        self.stop_accepting()
        for sock in list(self.clients.values()):
            sock.close("forced server close")
        draining, self._draining = self._draining, []
        if deadline is not None:
            await self._drain(draining, deadline)
        for transport, timer in self._lingering.values():
            timer.close()
            transport.abort()
        self._lingering.clear()
        self.timers.close()
        for conn in list(self._http_connections):
            if deadline is None:
                conn.close()
            else:
                conn.abort()  # still open at the deadline
        if deadline is not None:
            for ws in draining:
                if not ws.closed:
                    ws.abort()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        for srv in self._servers:
            await srv.wait_closed()
        self._servers.clear()
        # Let transports run their connection_lost callbacks.
        await asyncio.sleep(0)

    async def _drain(self, websockets: list[WebSocketTransport], deadline: float) -> None:
        """Wait (until ``deadline``) for the closing sessions to hand out what they hold, then
        close the HTTP connections and wait for them to go."""
        loop = asyncio.get_running_loop()

        def settled() -> bool:
            return (
                not self.clients
                and not self._lingering
                and all(ws.closed for ws in websockets)
                and not any(conn.busy for conn in self._http_connections)
            )

        async def wait(done: Callable[[], bool]) -> None:
            # Polled: what it waits for changes in callbacks all over the engine (shutdown only).
            while not done() and loop.time() < deadline:  # noqa: ASYNC110
                await asyncio.sleep(_DRAIN_POLL)

        await wait(settled)
        for conn in list(self._http_connections):
            conn.close()
        await wait(lambda: not self._http_connections)

    def _remove(self, sock: EngineSocket) -> None:
        if self.clients.get(sock.sid) is sock:
            del self.clients[sock.sid]
        transport = sock.transport
        if isinstance(transport, PollingTransport) and (
            transport._should_close or transport._owed is not None
        ):
            # The close packet (or the noop owed to a GET that raced the client's close) waits
            # for the client's next GET: keep the sid reachable briefly.
            self._linger(sock.sid, transport)

    def _linger(self, sid: str, transport: PollingTransport) -> None:
        timer = self.timers.call_later(self.ping_timeout, lambda: self._unlinger(sid))
        self._lingering[sid] = (transport, timer)

    def _unlinger(self, sid: str) -> None:
        item = self._lingering.pop(sid, None)
        if item is not None:
            item[0].abort()

    def open_packet(self, sid: str, transport: str, protocol: int) -> bytes:
        """The Engine.IO open packet of a new session (``0{"sid":...}``)."""
        handshake: dict[str, Any] = {
            "sid": sid,
            "upgrades": self._upgrades_for(transport),
            "pingInterval": int(self.ping_interval * 1000),
            "pingTimeout": int(self.ping_timeout * 1000),
        }
        if protocol != 3:
            handshake["maxPayload"] = self.max_http_buffer_size
        return b"0" + orjson.dumps(handshake)

    def _upgrades_for(self, transport: str) -> list[str]:
        if transport == "polling" and self.allow_upgrades and "websocket" in self.transports:
            return ["websocket"]
        return []

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- HTTP routing ------------------------------------------------------------------------
    def _is_ours(self, req: Request) -> bool:
        return req.path == self.path or req.path.startswith(self._path_slash)

    def _handle_http(self, req: Request, conn: HttpConnection) -> None:
        if req.too_large:
            self._refuse_too_large(req, conn)
            return
        if not self._is_ours(req):
            answer = self.http_handler(req) if self.http_handler is not None else None
            if answer is None and self.other_app is not None:
                self.other_app.http(req, conn)  # Server(other_asgi_app=...)
            elif answer is None:
                conn.respond(req, 404, [("Content-Type", "text/plain")], b"Not Found")
            else:
                conn.respond(req, *answer)
            return
        if req.path not in (self.path, self._path_slash) and self.http_handler is not None:
            answer = self.http_handler(req)
            if answer is not None:
                conn.respond(req, *answer)
                return
        if req.method == "OPTIONS" and self.responses.cors_enabled:
            # A CORS preflight. Without CORS configured, OPTIONS is refused like any other
            # method (as the official server, which answers preflights only through ``cors``).
            conn.respond(req, 204, self.responses.preflight_headers(req), b"")
            return
        sid = req.query.get("sid")
        if sid and (sock := self.clients.get(sid)) is not None:
            sock.expire_if_due()
        error = self._verify(req, upgrade=False)
        if error is not None:
            self._abort_request(conn, req, *error)
            return
        if sid:
            sock = self.clients.get(sid)
            if sock is None:
                lingering = self._lingering.get(sid)
                if lingering is not None and req.method == "GET":
                    polling, timer = lingering
                    timer.close()
                    del self._lingering[sid]
                    polling.closed = False
                    polling._get = None
                    polling.on_get(conn, req)
                    if polling._should_close:
                        # That GET took the last packets; the close packet waits for the next.
                        polling.closed = True
                        self._linger(sid, polling)
                    return
                self._abort_request(conn, req, UNKNOWN_SID, None)
                return
            transport = sock.transport
            if not isinstance(transport, PollingTransport):
                self._abort_request(conn, req, BAD_REQUEST, None)
                return
            if req.method == "GET":
                transport.on_get(conn, req)
            elif req.method == "POST":
                transport.on_post(conn, req)
            else:
                self._abort_request(conn, req, BAD_REQUEST, None)
            return
        if self._closing:
            self._refuse_closing(req, conn)
        elif self.allow_request is None:
            self._handshake_polling(req, conn)
        else:
            self._allow(req, lambda: self._handshake_polling(req, conn),
                        lambda m: self._abort_request(conn, req, FORBIDDEN, m))

    def _refuse_closing(self, req: Request, conn: HttpConnection) -> None:
        """A new session asked for while the server closes (a connection opened before)."""
        headers = [*self.responses.cors_headers(req), ("Content-Type", "text/plain")]
        conn.respond(req, 503, headers, b"Service Unavailable", close=True)

    def _refuse_too_large(self, req: Request, conn: HttpConnection) -> None:
        """A body over ``max_http_buffer_size`` (the connection closes after the answer): on a
        polling session's POST it also ends that session."""
        sid = req.query.get("sid")
        sock = self.clients.get(sid) if sid and self._is_ours(req) else None
        if (
            sock is not None
            and req.method == "POST"
            and isinstance(sock.transport, PollingTransport)
            and req.query.get("transport") == "polling"
        ):
            sock.transport.on_post(conn, req)
            return
        conn.respond(req, 413, self.responses.cors_headers(req), b"", close=True)

    def _allow(
        self, req: Request, accept: Callable[[], None], refuse: Callable[[str | None], None]
    ) -> None:
        """Ask ``allow_request`` about the handshake ``req``, then ``accept()`` or
        ``refuse(message)``: at once for a sync answer; only an async one gets a task (a task
        per handshake was a good part of a handshake's cost)."""
        later = self._allow_then(req, accept, refuse)
        if later is not None:
            self._spawn(later)

    def _allow_then(
        self, req: Request, accept: Callable[[], None], refuse: Callable[[str | None], None]
    ) -> Awaitable[None] | None:
        """:meth:`_allow`'s decision: ``None`` once made (``accept`` or ``refuse`` called), or,
        for an async ``allow_request``, what makes it when awaited."""
        assert self.allow_request is not None
        try:
            result = self.allow_request(req)
        except Exception as exc:
            refuse(str(exc) or None)
            return None
        if result is True or result is None:
            accept()
        elif asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            return self._await_allowed(result, accept, refuse)
        else:
            refuse(result if isinstance(result, str) else None)
        return None

    async def _await_allowed(
        self, result: Awaitable[Any], accept: Callable[[], None],
        refuse: Callable[[str | None], None],
    ) -> None:
        try:
            answer = await result
        except Exception as exc:
            refuse(str(exc) or None)
            return
        if answer is True or answer is None:
            accept()
        else:
            refuse(answer if isinstance(answer, str) else None)

    def _verify(self, req: Request, upgrade: bool) -> tuple[int, str | None] | None:
        transport = req.query.get("transport")
        if transport not in self.transports:
            return UNKNOWN_TRANSPORT, None
        sid = req.query.get("sid")
        if sid:
            sock = self.clients.get(sid)
            if sock is None:
                if sid in self._lingering and not upgrade:
                    return None
                return UNKNOWN_SID, None
            if not upgrade and sock.transport.name != transport:
                return BAD_REQUEST, None
            return None
        if req.method != "GET":
            return BAD_HANDSHAKE_METHOD, None
        if transport == "websocket" and not upgrade:
            return BAD_REQUEST, None
        if request_protocol(req) == 3 and not self.allow_eio3:
            return UNSUPPORTED_PROTOCOL_VERSION, None
        return None

    def _abort_request(
        self, conn: HttpConnection, req: Request, code: int, message: str | None
    ) -> None:
        status = 403 if code == FORBIDDEN else 400
        body = orjson.dumps({"code": code, "message": message or ERROR_MESSAGES[code]})
        headers = [*self.responses.cors_headers(req), ("Content-Type", "application/json")]
        conn.respond(req, status, headers, body)

    # -- session ids -------------------------------------------------------------------------
    def _with_sid(
        self, req: Request, then: Callable[[str], None], fail: Callable[[], None]
    ) -> None:
        """Make a session id for the handshake ``req`` and call ``then(sid)``; ``fail()`` when
        ``sid_generator`` raises or gives an empty or taken id (the handshake gets 400)."""
        gen = self.sid_generator
        if gen is None:
            # 120 random bits from the OS CSPRNG, URL-safe, 20 characters.
            then(ids.token(15))
            return
        try:
            result = gen(req)
        except Exception:
            log.exception("error in sid_generator")
            fail()
            return
        if inspect.isawaitable(result):
            self._spawn(self._await_sid(result, then, fail))
            return
        self._check_sid(result, then, fail)

    async def _await_sid(
        self, result: Awaitable[str], then: Callable[[str], None], fail: Callable[[], None]
    ) -> None:
        try:
            sid = await result
        except Exception:
            log.exception("error in sid_generator")
            fail()
            return
        self._check_sid(sid, then, fail)

    def _check_sid(self, sid: Any, then: Callable[[str], None], fail: Callable[[], None]) -> None:
        sid = "" if sid is None else str(sid)
        if not sid or sid in self.clients or sid in self._lingering:
            # Never the id itself: a session id is the credential of its session.
            log.error("sid_generator gave an empty or already used session id")
            fail()
            return
        then(sid)

    # -- polling handshake -------------------------------------------------------------------
    def _handshake_polling(self, req: Request, conn: HttpConnection) -> None:
        if not conn.is_open:
            return  # gone while allow_request decided
        self._with_sid(
            req,
            lambda sid: self._open_polling(req, conn, sid),
            lambda: self._abort_request(conn, req, BAD_REQUEST, None),
        )

    def _open_polling(self, req: Request, conn: HttpConnection, sid: str) -> None:
        if not conn.is_open:
            return  # gone while sid_generator ran
        if self._closing:
            self._refuse_closing(req, conn)
            return
        transport = PollingTransport(self.responses)
        sock = EngineSocket(self, sid, transport, req, request_protocol(req))
        self.clients[sid] = sock
        sock.open()
        transport.on_get(conn, req)
        self._connected(sock)

    def _connected(self, sock: EngineSocket) -> None:
        if self.on_connection is not None:
            try:
                self.on_connection(sock)
            except Exception:
                log.exception("error in the connection handler")
                sock.close()

    # -- WebSocket ---------------------------------------------------------------------------
    def _ws_transport(
        self, protocol: int, req: Request, on_open: Callable[[WebSocketTransport], None]
    ) -> WebSocketTransport:
        if protocol == 3:
            return WebSocketTransport3(on_open, self._flusher, b64=bool(req.query.get("b64")))
        return WebSocketTransport(on_open, self._flusher)

    def _hand_over(
        self,
        req: Request,
        conn: HttpConnection,
        listener: WebSocketTransport,
        sid: str,
        first_frame: bytes = b"",
    ) -> None:
        headers: Headers = []
        self.responses.session_headers(req, headers, sid)
        # The HTTP front read the request whole (within http_request_timeout): hand_over
        # answers it (101, or 400 and a close) before it returns.
        hand_over(conn, req, listener, self.max_http_buffer_size, headers, first_frame)

    def _handle_upgrade(self, req: Request, conn: HttpConnection) -> None:
        is_websocket = req.headers.get("upgrade", "").lower() == "websocket"
        ours = self._is_ours(req)
        if not ours and is_websocket and self.other_app is not None:
            self.other_app.websocket(req, conn)  # Server(other_asgi_app=...)
            return
        if not ours or not is_websocket:
            conn.abort_upgrade("Bad request")
            return
        error = self._verify(req, upgrade=True)
        if error is not None:
            conn.abort_upgrade(error[1] or ERROR_MESSAGES[error[0]])
            return
        if self._closing:
            conn._upgrade_tail = None
            self._refuse_closing(req, conn)
            return
        sid = req.query.get("sid")
        if sid:
            sock = self.clients[sid]
            if not (sock.upgrading or sock.upgraded) and (
                not self.allow_upgrades or sock.transport.name != "polling"
            ):
                # Only a polling session upgrades.
                conn.abort_upgrade(ERROR_MESSAGES[BAD_REQUEST])
                return
            # A session upgrades once at a time: a WebSocket for one already upgrading or
            # upgraded completes its handshake and is then closed (_on_probe_open), as the
            # official server answers it (its clients see a close, not a refused upgrade).
            listener = self._ws_transport(
                sock.protocol, req, lambda ws: self._on_probe_open(sid, ws)
            )
            self._hand_over(req, conn, listener, sid)
        elif self.allow_request is not None:
            self._allow(
                req,
                lambda: self._upgrade_new(req, conn),
                lambda m: conn.abort_upgrade(m or ERROR_MESSAGES[FORBIDDEN]),
            )
        else:
            self._upgrade_new(req, conn)

    def _upgrade_new(self, req: Request, conn: HttpConnection) -> None:
        if not conn.is_open:
            return  # gone while allow_request decided
        # The id is made before the 101, so that the cookie and the hooks can go in it.
        self._with_sid(
            req,
            lambda sid: self._upgrade_with_sid(req, conn, sid),
            lambda: conn.abort_upgrade(ERROR_MESSAGES[BAD_REQUEST]),
        )

    def _upgrade_with_sid(self, req: Request, conn: HttpConnection, sid: str) -> None:
        if not conn.is_open:
            return  # gone while sid_generator ran
        if self._closing:
            conn._upgrade_tail = None
            self._refuse_closing(req, conn)
            return
        protocol = request_protocol(req)
        listener = self._ws_transport(
            protocol, req, lambda ws: self._on_ws_open(req, ws, sid, protocol, sent=True)
        )
        # The open packet goes out in the 101's write (one write per handshake less). The 101
        # and _on_ws_open follow in this same call (the whole request is handed to picows at
        # once), so nothing can take the sid or close the server in between.
        first = ws_frame(self.open_packet(sid, "websocket", protocol), False)
        self._hand_over(req, conn, listener, sid, first)

    def _on_ws_open(
        self, req: Request, ws: WebSocketTransport, sid: str, protocol: int, sent: bool = False
    ) -> None:
        """A new session's WebSocket is open (``sent``: its open packet went with the 101)."""
        if sid in self.clients or sid in self._lingering or self._closing:
            ws.close()  # taken while the WebSocket handshake completed, or closing
            return
        sock = EngineSocket(self, sid, ws, req, protocol)
        self.clients[sid] = sock
        sock.open(sent=sent)
        self._connected(sock)

    def _on_probe_open(self, sid: str, ws: WebSocketTransport) -> None:
        sock = self.clients.get(sid)
        if (
            sock is None
            or sock.closed
            or sock.upgrading
            or sock.upgraded
            or sock.transport.name != "polling"
        ):
            ws.close()
            return
        sock.maybe_upgrade(ws)
