"""One Engine.IO session: its transport, heartbeat, upgrade and close."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

from fastsio import trace
from fastsio._core import eio_packet
from fastsio._core.errors import EnginePacketError
from fastsio._core.inbox import Inbox
from fastsio._core.outbox import Outbox
from fastsio._core.sio_packet import Encoded
from fastsio.engine.timers import Timer
from fastsio.trace import flags as _trace

if TYPE_CHECKING:
    from fastsio._core import msgpack_packet, sio_packet
    from fastsio.engine.http import Request
    from fastsio.engine.polling import PollingTransport
    from fastsio.engine.server import EngineServer
    from fastsio.engine.websocket import WebSocketTransport

    Transport: TypeAlias = PollingTransport | WebSocketTransport

log = logging.getLogger("fastsio.engine")

_PING = b"2"
_PING_DUE = 1
_PONG_DUE = 2
_PONG = b"3"
_PONG_PROBE = b"3probe"


def _message(data: str | bytes) -> Encoded:
    """One Engine.IO MESSAGE as the outbox takes it."""
    if isinstance(data, str):
        return Encoded([b"4" + data.encode()])
    return Encoded([bytes(data)], True)


class EngineSocket:
    """An Engine.IO session. ``on_message(data, binary)`` gets every MESSAGE: text packets
    with their leading ``4`` (so the Socket.IO decoder can start at offset 1), binary as is.

    ``protocol`` is the Engine.IO revision: 4, or 3 for Socket.IO v2 clients (``allow_eio3``),
    whose transports translate the wire format so that this class sees the same packets."""

    __slots__ = (
        "_check_handle",
        "_hb_kind",
        "_heartbeat",
        "_probe",
        "_sink",
        "_upgrade_handle",
        "closed",
        "data",
        "on_close",
        "on_message",
        "outbox",
        "protocol",
        "ready_state",
        "request",
        "server",
        "sid",
        "transport",
        "upgraded",
        "upgrading",
    )

    def __init__(
        self,
        server: EngineServer,
        sid: str,
        transport: Transport,
        request: Request,
        protocol: int = 4,
    ) -> None:
        self.server = server
        self.sid = sid
        self.transport: Transport = transport
        self.request = request
        self.protocol = protocol
        self.ready_state = "opening"
        self.closed = False
        self.upgrading = False
        self.upgraded = False
        self.data: Any = None  # free slot for the layer above (the Socket.IO client)
        self.on_message: Callable[[bytes, bool], None] | None = None
        self.on_close: Callable[[str, str | None], None] | None = None
        # Heartbeat: one timer of the server's wheel, and what happens when it fires:
        # _PING_DUE (send a ping) or _PONG_DUE (no pong / no client ping: close).
        self._heartbeat: Timer = Timer(server.timers, self._on_heartbeat)
        self._hb_kind = 0
        self._upgrade_handle: Timer | None = None
        self._check_handle: Timer | None = None
        self._probe: WebSocketTransport | None = None
        self._sink: tuple[Any, dict[str, Any], Callable[[Any], None]] | None = None
        # Everything this session sends is queued here, whichever transport serves it (the
        # room index of every namespace writes to it directly: see Adapter).
        self.outbox = Outbox(server._flusher)
        transport.socket = self
        transport.attach(self.outbox)

    # -- lifecycle ---------------------------------------------------------------------------
    def open(self, sent: bool = False) -> None:
        """The session is open: the open packet goes out (``sent``: it went with the WebSocket
        ``101`` already), the heartbeat starts."""
        self.ready_state = "open"
        self.outbox.open = True
        if not sent:
            self.outbox.push_packet(
                self.server.open_packet(self.sid, self.transport.name, self.protocol))
        if _trace.engine:
            trace.ENGINE.debug("%s open over %s (EIO=%d) from %s", self.sid, self.transport.name,
                               self.protocol, self.request.remote_address)
        if self.protocol == 3:
            # Revision 3: the client pings, the server answers (see _on_client_ping).
            self._expect_client_ping()
        else:
            self._schedule_ping()

    @property
    def writable(self) -> bool:
        """False while a polling session has no GET waiting, or a WebSocket is busy (volatile
        packets are dropped)."""
        return not self.closed and bool(self.outbox.idle)

    @property
    def transport_name(self) -> str:
        return self.transport.name

    def send(self, data: Encoded | str | bytes, volatile: bool = False) -> None:
        """The session's one send: an encoded Socket.IO packet (a broadcast shares one with
        every recipient; ``volatile``: dropped while the session is not writable), or one
        Engine.IO MESSAGE, ``str`` as text and ``bytes`` as binary."""
        if self.ready_state != "open":
            return
        if not isinstance(data, Encoded):
            data = _message(data)
        if self.protocol == 3:
            # The transport translates binary packets (revision 3's framing).
            if not volatile or self.writable:
                self.transport.send(data.packets)
        else:
            self.outbox.push(data, volatile)

    def close(self, reason: str = "forced close") -> None:
        """Close the session after what was already queued; ``on_close`` gets ``reason``."""
        if self.ready_state != "open":
            return
        self.ready_state = "closing"
        self.outbox.open = False
        self._on_close(reason)

    def set_sink(
        self,
        decoder: sio_packet.Decoder | msgpack_packet.Decoder,
        nsps: dict[str, Any],
        on_packet: Callable[[sio_packet.Packet], None],
    ) -> None:
        """Let a WebSocket transport decode Engine.IO messages itself, in the core, and hand
        each packet to ``nsps[packet.nsp]._on_packet`` (else ``on_packet``): for a layer above
        that would do just that with what ``on_message`` gets. Every other packet, and any
        message the core does not take, still comes through ``on_message``."""
        if self.protocol != 4 or self.closed:
            return
        self._sink = (decoder, nsps, on_packet)
        if isinstance(self.transport, Inbox):
            self.transport.set_sink(decoder, nsps, on_packet)

    def clear_sink(self) -> None:
        """Every message through ``on_message`` again (a layer wraps it: see admin)."""
        self._sink = None
        if isinstance(self.transport, Inbox):
            self.transport.set_sink(None, None, None)

    # -- heartbeat ---------------------------------------------------------------------------
    def _schedule_ping(self) -> None:
        self._hb_kind = _PING_DUE
        self._heartbeat.start(self.server.ping_interval)

    def _on_heartbeat(self) -> None:
        if self.closed:
            return
        if self._hb_kind == _PING_DUE:
            self.outbox.push_packet(_PING)
            self._hb_kind = _PONG_DUE
            # The pong deadline counts from when the ping was due, not from when the loop got
            # to it: a silent session ends ping_interval + ping_timeout after its last sign of
            # life, to the millisecond (the official suite polls at that instant). A ping that
            # a stalled loop sent late still leaves the client half of ping_timeout to answer.
            hb = self._heartbeat
            timeout = self.server.ping_timeout
            now = asyncio.get_running_loop().time()
            hb.start_at(max(hb.due + timeout, now + timeout / 2))
        else:
            self._on_close("ping timeout")

    def expire_if_due(self) -> None:
        """Close the session now if its ping timeout has passed, even though the timer has not
        run yet: a request that arrives in the loop iteration where the deadline falls (I/O
        callbacks run before timers) finds the session gone, as it is from that instant."""
        hb = self._heartbeat
        if (
            self._hb_kind == _PONG_DUE
            and hb.active
            and hb.due <= asyncio.get_running_loop().time()
        ):
            hb.cancel()
            self._on_close("ping timeout")

    def _on_pong(self) -> None:
        self._schedule_ping()

    def _expect_client_ping(self) -> None:
        """Revision 3: the session ends unless the client pings within pingInterval +
        pingTimeout (the official server's timeout for that revision)."""
        srv = self.server
        self._hb_kind = _PONG_DUE
        self._heartbeat.start(srv.ping_interval + srv.ping_timeout)

    def _on_client_ping(self) -> None:
        self._expect_client_ping()
        self.outbox.push_packet(_PONG)  # text: no revision 3 translation to do

    # -- inbound -----------------------------------------------------------------------------
    def _on_packet(self, transport: Transport, data: bytes, binary: bool) -> None:
        if _trace.engine:
            trace.ENGINE.debug("%s < %s %s%s", self.sid, transport.name,
                               "binary " if binary else "", trace.shown(data))
        if transport is not self.transport:
            if transport is self._probe:
                self._on_probe_packet(transport, data, binary)
            return
        if self.closed:
            return
        if binary:
            if self.on_message is not None:
                self.on_message(data, True)
            return
        try:
            ptype = eio_packet.packet_type(data)
        except EnginePacketError:
            self._on_close("parse error")
            return
        if ptype == eio_packet.MESSAGE:
            if self.on_message is not None:
                self.on_message(data, False)
        elif ptype == eio_packet.PONG:
            if self.protocol == 3:
                self._on_error("invalid heartbeat direction")
            else:
                self._on_pong()
        elif ptype == eio_packet.CLOSE:
            self._on_close("transport close")
        elif ptype == eio_packet.PING:
            if self.protocol == 3:
                self._on_client_ping()
            else:
                self._on_error("invalid heartbeat direction")
        # NOOP and UPGRADE outside an upgrade carry nothing.

    def _on_error(self, message: str) -> None:
        log.debug("transport error on an Engine.IO session: %s", message)
        self._on_close("transport error", message)

    def _on_transport_close(self, transport: Transport) -> None:
        if transport is self.transport:
            self._on_close("transport close")
        elif transport is self._probe:
            self._end_upgrade()

    # -- upgrade -----------------------------------------------------------------------------
    def maybe_upgrade(self, ws: WebSocketTransport) -> None:
        self.upgrading = True
        self._probe = ws
        ws.socket = self
        self._upgrade_handle = self.server.timers.call_later(
            self.server.upgrade_timeout, self._upgrade_timeout
        )

    def _upgrade_timeout(self) -> None:
        self._upgrade_handle = None
        probe = self._probe
        self._end_upgrade()
        if probe is not None:
            probe.close()

    def _end_upgrade(self) -> None:
        self.upgrading = False
        self._probe = None
        for h in (self._upgrade_handle, self._check_handle):
            if h is not None:
                h.cancel()
        self._upgrade_handle = self._check_handle = None

    def _check_poll(self) -> None:
        # Release the pending GET so the client can finish the upgrade quickly.
        self._check_handle = None
        if not self.upgrading or self.closed:
            return
        self.transport.release()  # type: ignore[union-attr]
        self._check_handle = self.server.timers.call_later(0.1, self._check_poll)

    def _on_probe_packet(self, ws: WebSocketTransport, data: bytes, binary: bool) -> None:
        if not binary and data == b"2probe":
            ws.send([(_PONG_PROBE, False)])
            if self._check_handle is not None:
                self._check_handle.cancel()
            self._check_handle = self.server.timers.call_later(0.1, self._check_poll)
        elif not binary and data == b"5" and not self.closed:
            self._end_upgrade()
            polling = self.transport
            pending = polling.take_buffer()  # type: ignore[union-attr]
            polling.discard()  # type: ignore[union-attr]
            self.transport = ws
            self.upgraded = True
            if _trace.engine:
                trace.ENGINE.debug("%s upgraded to websocket", self.sid)
            ws.attach(self.outbox)
            if self._sink is not None and isinstance(ws, Inbox):  # not an ASGI WebSocket
                ws.set_sink(*self._sink)
            if pending:
                ws.send(pending)
            on_upgrade = self.server.on_upgrade
            if on_upgrade is not None:
                try:
                    on_upgrade(self)
                except Exception:
                    log.exception("error in the upgrade handler")
            if self.ready_state == "closing":
                self._on_close("forced close")
        else:
            self._end_upgrade()
            ws.close()

    # -- close -------------------------------------------------------------------------------
    def _on_close(self, reason: str, description: str | None = None) -> None:
        if self.closed:
            return
        if _trace.engine:
            trace.ENGINE.debug("%s closed: %s%s", self.sid, reason,
                               f" ({description})" if description else "")
        self.closed = True
        self.ready_state = "closed"
        self.outbox.open = False
        if self._sink is not None:
            self.clear_sink()  # nothing more reaches the namespaces
        self._heartbeat.close()  # also drops the timer's reference to this session
        probe = self._probe
        self._end_upgrade()
        if probe is not None:
            probe.close()
        transport = self.transport
        if reason in ("forced close", "forced server close"):
            # Closed by the server: the client learns it from a close packet, on a polling
            # session with its next GET if none is waiting (the server keeps the sid that long).
            transport.close()
        elif reason == "ping timeout" and transport.name == "websocket":
            # The peer stopped answering: nothing left worth flushing.
            transport.abort()
        else:
            # A pending GET is answered at once (a noop when the client closed); the sid is
            # gone for any later request, as in the official server.
            transport.shutdown(noop=reason == "transport close")
        self.outbox.detach()  # what it still holds was written above (or waits for a GET)
        self.server._remove(self)
        cb = self.on_close
        self.on_close = None
        self.on_message = None
        if cb is not None:
            cb(reason, description)
