"""The Socket.IO client of one Engine.IO session: decodes packets, routes them to namespaces."""

from __future__ import annotations

import logging
import time
from collections.abc import Set as AbstractSet
from email.utils import formatdate
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from fastsio import trace
from fastsio._core import msgpack_packet, sio_packet
from fastsio._core.errors import ProtocolError
from fastsio.socket import Handshake, Socket
from fastsio.stats import counted
from fastsio.trace import flags as _trace

if TYPE_CHECKING:
    from fastsio.engine.socket import EngineSocket
    from fastsio.engine.timers import Timer
    from fastsio.server import Server

log = logging.getLogger("fastsio.client")

_NOTHING: frozenset[str] = frozenset()

TYPE_NAMES = ("CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT",
              "BINARY_ACK")



_date: list[Any] = [-1, ""]  # the second _http_date last formatted, and its text


def _http_date() -> str:
    """``formatdate(usegmt=True)``, formatted once per second (every handshake asks for it)."""
    now = time.time()
    second = int(now)
    if _date[0] != second:
        _date[1] = formatdate(now, usegmt=True)
        _date[0] = second
    return str(_date[1])


class Client:
    """Packets in from one connection, to the namespaces it joined; packets out to it."""

    __slots__ = (
        "_attachment_timer",
        "_connect_timer",
        "_connecting",
        "conn",
        "decoder",
        "nsps",
        "server",
    )

    def __init__(self, server: Server, conn: EngineSocket) -> None:
        self.server = server
        self.conn = conn
        decoder = msgpack_packet.Decoder if server.parser == "msgpack" else sio_packet.Decoder
        self.decoder: sio_packet.Decoder | msgpack_packet.Decoder = decoder(
            server.max_attachments,
            server.max_namespace_length,
            server.max_json_depth,
            server.max_event_args,
            server.max_attachment_bytes,
        )
        self._attachment_timer: Timer | None = None
        self.nsps: dict[str, Socket] = {}
        # Namespaces whose CONNECT is being handled (middlewares may be async). Almost always
        # empty: a shared empty frozenset until the first CONNECT (memory per connection).
        self._connecting: AbstractSet[str] = _NOTHING
        conn.on_message = self._on_message
        conn.on_close = self._on_close
        conn.data = self
        if server._packets is None:
            # What _on_message and _on_packet do with a whole packet, the engine's WebSocket
            # transport does in the core (one Python call per packet): see _core/inbox.pyx.
            conn.set_sink(self.decoder, self.nsps, self._on_packet)
        self._connect_timer: Timer | None = conn.server.timers.call_later(
            server.connect_timeout, self._on_connect_timeout
        )
        if conn.protocol == 3:
            # Socket.IO v2 clients never ask for "/": the server joins it for them at once.
            self.connecting_started("/")
            server._connect(self, "/", {})

    def connecting_started(self, nsp: str) -> None:
        self._connecting = self._connecting | {nsp}

    def connecting_done(self, nsp: str) -> None:
        if nsp in self._connecting:
            self._connecting = self._connecting - {nsp} or _NOTHING

    def handshake(self, auth: dict[str, Any]) -> Handshake:
        req = self.conn.request
        # The request's own dicts, not copies: one set per connection whatever the namespaces.
        return Handshake(
            headers=req.headers,
            time=_http_date(),
            address=req.remote_address,
            xdomain="origin" in req.headers,
            secure=req.secure,
            issued=int(time.time() * 1000),
            url=req.url,
            query=req.query,
            auth=auth,
        )

    # -- inbound -----------------------------------------------------------------------------
    def _on_message(self, data: bytes, binary: bool) -> None:
        counters = self.server._packets
        if counters is not None:
            counters.packets_in += 1
            counters.bytes_in += len(data)
        try:
            packet = self.decoder.add_binary(data) if binary else self.decoder.add_text(data, 1)
        except ProtocolError as exc:
            log.debug("invalid Socket.IO packet: %s", exc)
            for sock in list(self.nsps.values()):
                sock.nsp._emit_error(sock, exc)
            self.conn.close("forced close")
            return
        if packet is not None:
            if self._attachment_timer is not None:
                self._attachment_timer.cancel()
                self._attachment_timer = None
            self._on_packet(packet)
        elif self._attachment_timer is None:
            # Attachments that never come must not hold the decoder (and memory) forever.
            self._attachment_timer = self.conn.server.timers.call_later(
                self.server.attachment_timeout, self._on_attachment_timeout
            )

    def _on_attachment_timeout(self) -> None:
        self._attachment_timer = None
        if self.decoder.waiting and not self.conn.closed:
            log.debug("binary attachments did not arrive in time: closing")
            self.conn.close("forced close")

    def _on_packet(self, packet: sio_packet.Packet) -> None:
        if _trace.socket:
            trace.SOCKET.debug("%s < %s %s %s id=%s", self.conn.sid, TYPE_NAMES[packet.type],
                               packet.nsp, trace.shown(packet.data), packet.id)
        if packet.type == sio_packet.CONNECT and self.conn.protocol == 3:
            self._on_connect_v3(packet.nsp)
            return
        sock = self.nsps.get(packet.nsp)
        if sock is not None:
            sock._on_packet(packet)
        elif packet.type == sio_packet.CONNECT and packet.nsp not in self._connecting:
            self.connecting_started(packet.nsp)
            self.server._connect(self, packet.nsp, packet.data or {})
        else:
            # EVENT before CONNECT, a second CONNECT while the first runs, etc.
            self.protocol_violation()

    def _on_connect_v3(self, nsp: str) -> None:
        """A Socket.IO v2 CONNECT: its namespace carries the query (``/nsp?x=1``), which
        becomes the auth payload (``{"x": "1"}``), as the official client.ts does."""
        name, auth = parse_v3_namespace(nsp)
        if name in self.nsps or name in self._connecting:
            self.protocol_violation()
            return
        self.connecting_started(name)
        self.server._connect(self, name, auth)

    def _on_connect_timeout(self) -> None:
        self._connect_timer = None
        if not self.nsps and not self.conn.closed:
            log.debug("no namespace joined within connect_timeout: closing")
            self.conn.close("forced server close")

    # -- outbound ----------------------------------------------------------------------------
    def write(self, packet: sio_packet.Encoded) -> None:
        if self.server._packets is not None or _trace.socket:
            counted(self.server, self.conn.sid, packet)
        self.conn.send(packet)

    def connect_error(self, nsp: str, message: str, data: Any) -> None:
        self.connecting_done(nsp)
        if self.conn.protocol == 3:
            # Socket.IO v2 clients get one value: ``err.data || err.message``.
            self.write(self.server.encode(
                sio_packet.CONNECT_ERROR, nsp, data if _js_truthy(data) else message
            ))
            return
        payload: dict[str, Any] = {"message": message}
        if data is not None:
            payload["data"] = data
        self.write(self.server.encode(sio_packet.CONNECT_ERROR, nsp, payload))

    # -- bookkeeping -------------------------------------------------------------------------
    def _add(self, sock: Socket) -> None:
        self.nsps[sock.nsp.name] = sock
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None

    def _remove(self, sock: Socket) -> None:
        if self.nsps.get(sock.nsp.name) is sock:
            del self.nsps[sock.nsp.name]

    def protocol_violation(self) -> None:
        # The official server closes the client itself here ("forced server close"); a packet
        # that does not decode closes the connection instead ("forced close").
        log.debug("protocol violation: closing the connection")
        self.conn.close("forced server close")

    def disconnect_all(self) -> None:
        """Every namespace gets a DISCONNECT (``server namespace disconnect``)."""
        for sock in list(self.nsps.values()):
            sock.disconnect(False)

    def close(self) -> None:
        self.conn.close("forced server close")

    def _on_close(self, reason: str, description: str | None) -> None:
        if self._connect_timer is not None:
            self._connect_timer.cancel()
            self._connect_timer = None
        if self._attachment_timer is not None:
            self._attachment_timer.cancel()
            self._attachment_timer = None
        self.decoder.reset()
        for sock in list(self.nsps.values()):
            sock._on_close(reason, description)
        self.nsps.clear()


# -- Socket.IO v2 clients (Engine.IO revision 3) ---------------------------------------------------
def parse_v3_namespace(nsp: str) -> tuple[str, dict[str, str]]:
    """``/nsp?x=1`` -> ``("/nsp", {"x": "1"})``: a v2 client's namespace and query (the last
    value of a repeated key wins, as ``Object.fromEntries(url.searchParams)``)."""
    nsp = nsp.partition("#")[0]
    name, _, query = nsp.partition("?")
    return name or "/", dict(parse_qsl(query, keep_blank_values=True))


def _js_truthy(value: Any) -> bool:
    """JavaScript's truthiness (``{}`` and ``[]`` are true, ``0`` and ``""`` false)."""
    if value is None or value is False or value == "":
        return False
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value == value and value != 0  # NaN and 0 are false
    return True
