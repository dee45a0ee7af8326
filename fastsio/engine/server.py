"""The Engine.IO server: handshake, request routing, errors, CORS, lifecycle."""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Union

import orjson

from fastsio.engine.http import Headers, HttpConnection, Request
from fastsio.engine.polling import PollingTransport
from fastsio.engine.socket import EngineSocket
from fastsio.engine.websocket import Flusher, WebSocketTransport, hand_over

log = logging.getLogger("fastsio.engine")

UNKNOWN_TRANSPORT = 0
UNKNOWN_SID = 1
BAD_HANDSHAKE_METHOD = 2
BAD_REQUEST = 3
FORBIDDEN = 4
UNSUPPORTED_PROTOCOL_VERSION = 5

ERROR_MESSAGES = {
    UNKNOWN_TRANSPORT: "Transport unknown",
    UNKNOWN_SID: "Session ID unknown",
    BAD_HANDSHAKE_METHOD: "Bad handshake method",
    BAD_REQUEST: "Bad request",
    FORBIDDEN: "Forbidden",
    UNSUPPORTED_PROTOCOL_VERSION: "Unsupported protocol version",
}

CorsOrigins = Union[None, str, Iterable[str], "re.Pattern[str]", Callable[[str], bool]]
HttpHandler = Callable[[Request], "tuple[int, Headers, bytes] | None"]
AllowRequest = Callable[[Request], bool | str | Awaitable[bool | str | None] | None]


class EngineServer:
    """A bare Engine.IO v4 server. ``on_connection(socket)`` is called for each new session."""

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
        cors_allowed_origins: CorsOrigins = None,
        cors_credentials: bool = False,
        allow_request: AllowRequest | None = None,
        sid_generator: Callable[[Request], str] | None = None,
        websocket_handshake_timeout: float = 10.0,
        max_request_line: int = 8192,
        max_header_size: int = 16384,
        max_header_count: int = 100,
        on_connection: Callable[[EngineSocket], None] | None = None,
        http_handler: HttpHandler | None = None,
    ) -> None:
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
        self.cors_allowed_origins = cors_allowed_origins
        self.cors_credentials = cors_credentials
        self.allow_request = allow_request
        self.sid_generator = sid_generator
        self.websocket_handshake_timeout = websocket_handshake_timeout
        self.max_request_line = max_request_line
        self.max_header_size = max_header_size
        self.max_header_count = max_header_count
        self.on_connection = on_connection
        self.http_handler = http_handler
        self.clients: dict[str, EngineSocket] = {}
        self._flusher = Flusher()
        self._http_connections: set[HttpConnection] = set()
        self._servers: list[asyncio.base_events.Server] = []
        self._lingering: dict[str, tuple[PollingTransport, asyncio.TimerHandle]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.port: int | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0, **kwargs: Any) -> int:
        """Listen on ``host:port`` (0 picks a free port); returns the bound port."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: HttpConnection(self), host, port, **kwargs)
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        """Stop accepting, close every session (``forced server close``), drop every timer."""
        for srv in self._servers:
            srv.close()
        for sock in list(self.clients.values()):
            sock.close("forced server close")
        for transport, handle in self._lingering.values():
            handle.cancel()
            transport.abort()
        self._lingering.clear()
        for conn in list(self._http_connections):
            conn.close()
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

    def _remove(self, sock: EngineSocket) -> None:
        if self.clients.get(sock.sid) is sock:
            del self.clients[sock.sid]
        transport = sock.transport
        if isinstance(transport, PollingTransport) and transport._should_close:
            # The close packet waits for the client's next GET: keep the sid reachable briefly.
            loop = asyncio.get_running_loop()
            handle = loop.call_later(self.ping_timeout, self._unlinger, sock.sid)
            self._lingering[sock.sid] = (transport, handle)

    def _unlinger(self, sid: str) -> None:
        item = self._lingering.pop(sid, None)
        if item is not None:
            item[0].abort()

    def _upgrades_for(self, transport: str) -> list[str]:
        if transport == "polling" and self.allow_upgrades and "websocket" in self.transports:
            return ["websocket"]
        return []

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- CORS --------------------------------------------------------------------------------
    def _origin_allowed(self, origin: str) -> bool:
        allowed = self.cors_allowed_origins
        if allowed is None:
            return False
        if allowed == "*":
            return True
        if isinstance(allowed, str):
            return origin == allowed
        if isinstance(allowed, re.Pattern):
            return allowed.fullmatch(origin) is not None
        if callable(allowed):
            return bool(allowed(origin))
        return origin in allowed

    def _cors_headers(self, req: Request) -> Headers:
        if self.cors_allowed_origins is None:
            return []
        origin = req.headers.get("origin")
        if origin is None:
            return []
        if not self._origin_allowed(origin):
            return []
        headers: Headers = []
        if self.cors_allowed_origins == "*" and not self.cors_credentials:
            headers.append(("Access-Control-Allow-Origin", "*"))
        else:
            headers.append(("Access-Control-Allow-Origin", origin))
            headers.append(("Vary", "Origin"))
        if self.cors_credentials:
            headers.append(("Access-Control-Allow-Credentials", "true"))
        return headers

    # -- HTTP routing ------------------------------------------------------------------------
    def _is_ours(self, req: Request) -> bool:
        return req.path == self.path or req.path.startswith(self._path_slash)

    def _handle_http(self, req: Request, conn: HttpConnection) -> None:
        if req.too_large:
            self._refuse_too_large(req, conn)
            return
        if not self._is_ours(req):
            answer = self.http_handler(req) if self.http_handler is not None else None
            if answer is None:
                conn.respond(req, 404, [("Content-Type", "text/plain")], b"Not Found")
            else:
                conn.respond(req, *answer)
            return
        if req.path not in (self.path, self._path_slash) and self.http_handler is not None:
            answer = self.http_handler(req)
            if answer is not None:
                conn.respond(req, *answer)
                return
        if req.method == "OPTIONS":
            headers = self._cors_headers(req)
            if headers:
                headers.append(("Access-Control-Allow-Methods", "GET,HEAD,PUT,PATCH,POST,DELETE"))
                requested = req.headers.get("access-control-request-headers")
                if requested:
                    headers.append(("Access-Control-Allow-Headers", requested))
            conn.respond(req, 204, headers, b"")
            return
        error = self._verify(req, upgrade=False)
        if error is not None:
            self._abort_request(conn, req, *error)
            return
        sid = req.query.get("sid")
        if sid:
            sock = self.clients.get(sid)
            if sock is None:
                lingering = self._lingering.get(sid)
                if lingering is not None and req.method == "GET":
                    polling, handle = lingering
                    handle.cancel()
                    del self._lingering[sid]
                    polling.closed = False
                    polling._get = None
                    polling.on_get(conn, req)
                    if polling._should_close:
                        # That GET took the last packets; the close packet waits for the next.
                        polling.closed = True
                        self._lingering[sid] = (
                            polling,
                            asyncio.get_running_loop().call_later(
                                self.ping_timeout, self._unlinger, sid
                            ),
                        )
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
        if self.allow_request is None:
            self._handshake_polling(req, conn)
        else:
            self._spawn(self._allow_then(req, lambda: self._handshake_polling(req, conn),
                                         lambda m: self._abort_request(conn, req, FORBIDDEN, m)))

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
        conn.respond(req, 413, self._cors_headers(req), b"", close=True)

    async def _allow_then(
        self, req: Request, accept: Callable[[], None], refuse: Callable[[str | None], None]
    ) -> None:
        assert self.allow_request is not None
        try:
            result = self.allow_request(req)
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                result = await result
        except Exception as exc:
            refuse(str(exc) or None)
            return
        if result is True or result is None:
            accept()
        else:
            refuse(result if isinstance(result, str) else None)

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
        if req.query.get("EIO") != "4":
            return UNSUPPORTED_PROTOCOL_VERSION, None
        return None

    def _abort_request(
        self, conn: HttpConnection, req: Request, code: int, message: str | None
    ) -> None:
        status = 403 if code == FORBIDDEN else 400
        body = orjson.dumps({"code": code, "message": message or ERROR_MESSAGES[code]})
        headers = [*self._cors_headers(req), ("Content-Type", "application/json")]
        conn.respond(req, status, headers, body)

    def _new_sid(self, req: Request) -> str:
        if self.sid_generator is not None:
            return str(self.sid_generator(req))
        # 120 random bits from the OS CSPRNG, URL-safe, 20 characters.
        return secrets.token_urlsafe(15)

    def _handshake_polling(self, req: Request, conn: HttpConnection) -> None:
        if not conn.is_open:
            return  # gone while allow_request decided
        sid = self._new_sid(req)
        transport = PollingTransport()
        sock = EngineSocket(self, sid, transport, req)
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
    def _handle_upgrade(self, req: Request, conn: HttpConnection) -> None:
        if not self._is_ours(req) or req.headers.get("upgrade", "").lower() != "websocket":
            conn.abort_upgrade("Bad request")
            return
        error = self._verify(req, upgrade=True)
        if error is not None:
            conn.abort_upgrade(error[1] or ERROR_MESSAGES[error[0]])
            return
        sid = req.query.get("sid")
        if sid:
            sock = self.clients[sid]
            if (
                sock.upgrading
                or sock.upgraded
                or not self.allow_upgrades
                or sock.transport.name != "polling"
            ):
                # Only a polling session upgrades, and only once at a time.
                conn.abort_upgrade(ERROR_MESSAGES[BAD_REQUEST])
                return
            listener = WebSocketTransport(lambda ws: self._on_probe_open(sid, ws), self._flusher)
        elif self.allow_request is not None:
            self._spawn(self._allow_then(
                req,
                lambda: self._upgrade_new(req, conn),
                lambda m: conn.abort_upgrade(m or ERROR_MESSAGES[FORBIDDEN]),
            ))
            return
        else:
            self._upgrade_new(req, conn)
            return
        hand_over(conn, req, listener, self.max_http_buffer_size,
                  self.websocket_handshake_timeout)

    def _upgrade_new(self, req: Request, conn: HttpConnection) -> None:
        if not conn.is_open:
            return  # gone while allow_request decided
        listener = WebSocketTransport(lambda ws: self._on_ws_open(req, ws), self._flusher)
        hand_over(conn, req, listener, self.max_http_buffer_size,
                  self.websocket_handshake_timeout)

    def _on_ws_open(self, req: Request, ws: WebSocketTransport) -> None:
        sid = self._new_sid(req)
        sock = EngineSocket(self, sid, ws, req)
        self.clients[sid] = sock
        sock.open()
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
