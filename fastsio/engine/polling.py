"""HTTP long-polling transport: GET waits for packets, POST carries packets in."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from fastsio._core import eio_packet
from fastsio._core.errors import EnginePacketError
from fastsio.engine import eio3
from fastsio.engine.clientlog import slow_clients

if TYPE_CHECKING:
    from fastsio._core.outbox import Outbox
    from fastsio.engine.http import Headers, HttpConnection, Request
    from fastsio.engine.options import ResponsePolicy
    from fastsio.engine.socket import EngineSocket

log = logging.getLogger("fastsio.engine")

_CLOSE = (b"1", False)
_NOOP = (b"6", False)
# As the official server: no cache may keep a poll's answer (GH-43 / old IE).
_NO_STORE = ("Cache-Control", "no-store")
_TEXT = ("Content-Type", "text/plain; charset=UTF-8")
_BINARY = ("Content-Type", "application/octet-stream")


class PollingTransport:
    """One polling session's pending GET; the packets waiting for it are in the session's
    :class:`~fastsio._core.outbox.Outbox` (attached with :meth:`attach`), which drains them
    into one response per loop iteration while a GET waits. What the server's options add to
    each answer (CORS, the cookie, the hooks, compression) comes from ``policy``, the server's
    :class:`~fastsio.engine.options.ResponsePolicy`."""

    name = "polling"

    __slots__ = (
        "_box",
        "_get",
        "_owed",
        "_policy",
        "_should_close",
        "closed",
        "socket",
    )

    def __init__(self, policy: ResponsePolicy) -> None:
        self._policy = policy
        self.socket: EngineSocket | None = None
        self.closed = False
        self._get: tuple[HttpConnection, Request] | None = None
        self._box: Outbox | None = None
        self._should_close = False
        # The answer owed to a GET that raced the client's close (see shutdown).
        self._owed: list[tuple[bytes, bool]] | None = None

    def attach(self, box: Outbox) -> None:
        """Serve the session that owns ``box``."""
        self._box = box
        box.use_packets(self)
        box.ready = self._get is not None and not self.closed

    def _set_get(self, get: tuple[HttpConnection, Request] | None) -> None:
        self._get = get
        if self._box is not None:
            self._box.ready = get is not None and not self.closed

    def _take(self) -> list[tuple[bytes, bool]]:
        return self._box.take() if self._box is not None else []

    @property
    def writable(self) -> bool:
        return self._get is not None and not self.closed

    @property
    def idle(self) -> bool:
        """A GET is waiting and no answer to it is being prepared."""
        if self._box is not None:
            return bool(self._box.idle)
        return self._get is not None and not self.closed

    # -- requests --------------------------------------------------------------------------
    def on_get(self, conn: HttpConnection, req: Request) -> None:
        sock = self.socket
        assert sock is not None
        owed = self._owed
        if owed is not None:
            self._owed = None
            self.closed = True
            self._answer(conn, req, owed)
            return
        if self._get is not None:
            # Two GETs at once: the official server fails the session.
            conn.respond(req, 400, self._policy.cors_headers(req), b"")
            sock._on_error("overlap from client")
            return
        self._set_get((conn, req))
        conn.on_lost(self._on_get_lost)
        if (self._box is not None and self._box.has_queued) or self._should_close:
            self._drain()

    def on_post(self, conn: HttpConnection, req: Request) -> None:
        sock = self.socket
        assert sock is not None
        headers = self._policy.cors_headers(req)
        if req.too_large:
            conn.respond(req, 413, headers, b"", close=True)
            sock._on_error("payload too large")
            return
        binary_body = req.headers.get("content-type") == "application/octet-stream"
        if binary_body and sock.protocol != 3:
            conn.respond(req, 400, headers, b"")
            sock._on_error("invalid content")
            return
        try:
            if sock.protocol == 3:
                packets = eio3.decode_payload(req.body, binary_body)
            else:
                packets = eio_packet.decode_payload(req.body)
        except EnginePacketError:
            conn.respond(req, 400, headers, b"")
            sock._on_close("parse error")
            return
        # text/html, as the official server: text/plain made some browsers offer a download.
        headers.append(("Content-Type", "text/html"))
        self._headers(req, headers)
        conn.respond(req, 200, headers, b"ok")
        for data, binary in packets:
            if self.closed:
                break
            sock._on_packet(self, data, binary)

    def _on_get_lost(self) -> None:
        self._set_get(None)
        if self.socket is not None and not self.closed:
            self.socket._on_error("poll connection closed prematurely")

    # -- sending ---------------------------------------------------------------------------
    def send(self, packets: list[tuple[bytes, bool]]) -> None:
        """Queue Engine.IO packets (text ones carry their type digit) for the next GET."""
        if self._box is not None:
            self._box.push_packets(packets)

    def _overflow(self, queued: int) -> None:
        sock = self.socket
        if sock is None or self.closed:
            return
        # A client that stopped polling must not grow memory without bound.
        slow_clients.log("polling client not reading: %d bytes queued, disconnecting", queued)
        if self._box is not None:
            self._box.clear()
        sock._on_error("write buffer limit exceeded")

    def _drain(self) -> None:
        # Everything queued in one loop iteration goes out in one response (the outbox calls
        # this once per iteration while a GET waits, or on_get when one arrives).
        get = self._get
        if get is None:
            return
        has = self._box is not None and self._box.has_queued
        if not has and not self._should_close:
            return
        self._set_get(None)
        conn, req = get
        packets = self._take()
        if self._should_close and not packets:
            # The close packet travels alone, after what was buffered: clients act on it at
            # once but hand the packets before it out a tick later (socket.io-client would
            # report "transport close" instead of the DISCONNECT it was sent).
            packets.append(_CLOSE)
            self._should_close = False
            self.closed = True
        self._answer(conn, req, packets)

    def _answer(
        self, conn: HttpConnection, req: Request, packets: list[tuple[bytes, bool]]
    ) -> None:
        sock = self.socket
        if sock is None:
            conn.respond(req, 200, [_TEXT, _NO_STORE], eio_packet.encode_payload(packets))
            return
        policy = self._policy
        headers = policy.cors_headers(req)
        if sock.protocol == 3:
            # XHR2 binary payloads unless the client asked for base64 (``b64``).
            body, binary = eio3.encode_payload(packets, not req.query.get("b64"))
            headers.append(_BINARY if binary else _TEXT)
        else:
            body = eio_packet.encode_payload(packets)
            headers.append(_TEXT)
        body = policy.compress(req, body, headers)
        self._headers(req, headers)
        conn.respond(req, 200, headers, body)

    def _headers(self, req: Request, headers: Headers) -> None:
        """What every successful polling response carries, then the cookie and the hooks."""
        headers.append(_NO_STORE)
        ua = req.headers.get("user-agent")
        if ua and (";MSIE" in ua or "Trident/" in ua):
            headers.append(("X-XSS-Protection", "0"))  # as the official server, for old IE
        sock = self.socket
        if sock is not None:
            self._policy.session_headers(req, headers, sock.sid)

    def release(self) -> None:
        """Answer a pending GET with a noop (the upgrade asks the client to stop polling)."""
        get = self._get
        if get is not None and not (self._box is not None and self._box.has_queued):
            self._set_get(None)
            self._answer(get[0], get[1], [_NOOP])

    def take_buffer(self) -> list[tuple[bytes, bool]]:
        return self._take()

    def discard(self) -> None:
        """The session moved to WebSocket: answer a pending GET and stop (the session's outbox
        is the new transport's from now on)."""
        self.release()
        self.closed = True
        self._set_get(None)
        self._box = None

    def close(self) -> None:
        """Orderly close (the server closes the session): what is buffered and a close packet go
        out on the pending GET, or on the next one (the server keeps the sid reachable)."""
        if self.closed:
            return
        self._should_close = True
        if self._get is not None:
            self._drain()
        self.closed = True

    def shutdown(self, noop: bool = False) -> None:
        """Close now, without waiting for a GET: a pending GET gets what is buffered and a close
        packet (a noop when the client itself closed, as the official server answers)."""
        if self.closed:
            return
        self.closed = True
        self._should_close = False
        get = self._get
        packets = self._take()
        if get is None:
            if noop:
                # A client's GET and POST travel on different connections and may arrive in
                # either order: the GET sent along with the POST that closed gets the answer it
                # would have had if it had come first (what is queued, then a noop), and the
                # server keeps the sid reachable for that one GET (EngineServer._remove).
                packets.append(_NOOP)
                self._owed = packets
            return
        self._set_get(None)
        conn, req = get
        packets.append(_NOOP if noop else _CLOSE)
        self._answer(conn, req, packets)

    def abort(self) -> None:
        self.closed = True
        if self._get is not None:
            conn, _ = self._get
            self._set_get(None)
            conn.on_lost(None)
            conn.close()

    def write_buffer_size(self) -> int:
        return int(self._box.queued) if self._box is not None else 0
