"""WebSocket transport, and the hand-over of an upgraded HTTP connection.

The HTTP front reads and checks the upgrade request; :func:`hand_over` gives the connection to
the core's ``WebSocketProtocol`` (``_core/websocket.pyx``), which writes the ``101`` and reads
frames for a picows ``WSListener`` (this module's transports), sending through a picows
``WSTransport``. ``pyproject.toml`` pins picows's version: the core is compiled against its C
layout (``picows.pxd``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from picows import (
    WSCloseCode,
    WSFrame,
    WSListener,
    WSMsgType,
    WSTransport,
)

from fastsio._core import websocket as _ws
from fastsio._core.eio_packet import ws_frame
from fastsio._core.errors import EnginePacketError
from fastsio._core.inbox import Inbox
from fastsio._core.outbox import Flusher, Outbox, direct_fd
from fastsio.engine import eio3
from fastsio.engine.clientlog import PicowsLog, slow_clients
from fastsio.engine.upgrade import response_head

if TYPE_CHECKING:
    from fastsio.engine.http import Headers, HttpConnection, Request

# The flusher that writes each WebSocket's frames once per loop iteration lives in the core.
__all__ = ["Flusher", "WebSocketTransport", "WebSocketTransport3", "hand_over"]

# What a client's malformed frame logs (at ERROR in picows's words: clientlog puts it at DEBUG,
# rate-limited), and, at DEBUG, each accepted connection.
log = logging.getLogger("fastsio.engine")
_picows_log = PicowsLog(logging.getLogger("fastsio.engine.ws"))
_is_debug = _picows_log.logger.isEnabledFor

# The versions the official server's ``ws`` accepts.
_VERSIONS = ("13", "8")


class WebSocketProtocol(_ws.WebSocketProtocol, asyncio.BufferedProtocol):
    """The core's protocol as a ``BufferedProtocol``: asyncio's own loop checks for the base
    class (uvloop for ``get_buffer``)."""

    __slots__ = ()


def _drop(data: bytes) -> None:
    pass


class _Released(asyncio.Protocol):
    """What a transport is given between the HTTP front and the WebSocket. uvloop's transport
    keeps the ``data_received`` of the last plain protocol it was given after a buffered one
    replaces it: the front's ``HttpConnection`` (about 1 KiB with its timer and lists) would
    live as long as the WebSocket. A static method, so that every transport shares one."""

    data_received = staticmethod(_drop)


_RELEASED = _Released()


def hand_over(
    conn: HttpConnection,
    req: Request,
    listener: WSListener,
    max_frame_size: int,
    headers: Headers | None = None,
    first_frame: bytes = b"",
) -> bool:
    """Complete the upgrade of ``req`` on ``conn``'s transport for ``listener``: the ``101``
    (with ``headers``: the cookie, the hooks'; and ``first_frame``, the open packet of a new
    session, in the same write), then ``listener.on_ws_connected``, in this call. False: the
    request's WebSocket key or version is not one a client may send, and it was answered with
    a 400 (as the official server's ``ws`` answers it); the listener is never told."""
    accept = _ws.accept_key(req.headers.get("sec-websocket-key", ""))
    if accept is None:
        conn.abort_upgrade("Missing or invalid Sec-WebSocket-Key header")
        return False
    if req.headers.get("sec-websocket-version") not in _VERSIONS:
        conn.abort_upgrade("Missing or invalid Sec-WebSocket-Version header")
        return False
    head = response_head([(str(k), str(v)) for k, v in headers] if headers else None)
    transport, tail = conn.detach()
    req.raw_headers = []  # ``req.headers`` keeps them all
    fd = -1 if conn.secure else direct_fd(transport)
    listener.max_message_size = max_frame_size  # type: ignore[attr-defined]
    if isinstance(listener, Inbox):
        listener.direct_fd = fd  # (the other app's WebSockets have no outbox)
    protocol = WebSocketProtocol(listener, max_frame_size, _picows_log, asyncio.get_running_loop())
    if _is_debug(logging.DEBUG):
        sock = transport.get_extra_info("socket")
        _picows_log.logger.debug(
            "New connection accepted: %s <- %s, nodelay=%d",
            transport.get_extra_info("sockname"), transport.get_extra_info("peername"),
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) if sock is not None else -1)
    transport.set_protocol(_RELEASED)
    transport.set_protocol(protocol)
    protocol.open(transport, fd, head, accept, first_frame, tail)
    return True


class WebSocketTransport(Inbox):
    """An Engine.IO transport over one picows WebSocket connection.

    Frames in are the core's (:class:`~fastsio._core.inbox.Inbox`: picows calls its
    ``on_ws_frame`` at C level); they come here only through ``_deliver``, as Engine.IO messages
    for :meth:`EngineSocket._on_packet`, unless the session set a packet sink (``set_sink``).

    What it sends goes through its session's :class:`~fastsio._core.outbox.Outbox` (attached
    with :meth:`attach`), which queues frames and writes them once per loop iteration. A probe
    (a WebSocket that is not yet its session's transport) writes its few packets directly."""

    name = "websocket"

    # One of these lives as long as its connection: no per-instance __dict__.
    __slots__ = (
        "_flusher",
        "_on_open",
        "_paused",
        "closed",
        "writable",
        "ws",
    )

    def __init__(
        self, on_open: Callable[[WebSocketTransport], None], flusher: Flusher | None = None
    ) -> None:
        super().__init__()
        self.ws: WSTransport | None = None
        if flusher is None:
            flusher = Flusher(get_loop=asyncio.get_running_loop)
        self._flusher = flusher
        self._box: Outbox | None = None  # the session's outbox once this is its transport
        self._paused = False  # the socket's write buffer is over its high-water mark
        self.closed = False
        self.writable = False
        self._on_open: Callable[[WebSocketTransport], None] | None = on_open

    # -- picows callbacks ----------------------------------------------------------------------
    def on_ws_connected(self, transport: WSTransport) -> None:
        self.ws = transport
        transport.underlying_transport.set_write_buffer_limits(high=self._flusher.high_water)
        self.writable = True
        cb, self._on_open = self._on_open, None
        if cb is not None:
            cb(self)

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        underlying = transport.underlying_transport
        if not underlying.is_closing():
            # As HttpConnection.connection_lost: asyncio's TLS transport before Python 3.11
            # counts itself unclosed unless its owner closes it, even after the peer has gone.
            underlying.close()
        self._unwritable()
        if self._box is not None:
            self._box.clear()
        if not self.closed:
            self.closed = True
            if self.socket is not None:
                self.socket._on_transport_close(self)

    # -- Engine.IO transport -------------------------------------------------------------------
    def _protocol_error(self, code: WSCloseCode) -> None:
        # called by the core (Inbox.on_ws_frame) on a frame that fails the connection
        self._unwritable()
        if self.ws is not None:
            self.ws.send_close(code)
            self.ws.disconnect()

    def _unwritable(self) -> None:
        self.writable = False
        if self._box is not None:
            self._box.writable = False

    def attach(self, box: Outbox) -> None:
        """Become the transport of the session that owns ``box`` (what ``box`` holds already,
        from an upgraded polling transport, is framed and goes out first)."""
        self._box = box
        if self.writable and self.ws is not None:
            box.paused = self._paused
            box.use_frames(self, self.ws.underlying_transport, self.direct_fd)
        else:
            box.writable = False

    def _overflow(self, queued: int) -> None:
        # A client that stopped reading must not grow memory without bound.
        slow_clients.log("websocket client not reading: %d bytes queued, disconnecting", queued)
        self.abort()
        if self.socket is not None:
            self.socket._on_error("write buffer limit exceeded")

    @property
    def idle(self) -> bool:
        """Open, with no frame waiting for this iteration's flush and the socket's buffer
        under its high-water mark (a volatile packet is dropped otherwise)."""
        if self._box is not None:
            return bool(self._box.idle)
        return self.writable and not self._paused

    # picows forwards the transport's flow control here (its default logs a warning).
    def pause_writing(self) -> None:
        self._paused = True
        if self._box is not None:
            self._box.paused = True

    def resume_writing(self) -> None:
        self._paused = False
        if self._box is not None:
            self._box.paused = False

    def send(self, packets: list[tuple[bytes, bool]]) -> None:
        """Queue Engine.IO packets (text ones carry their type digit)."""
        if self._box is not None:
            self._box.push_packets(packets)
        elif self.writable and self.ws is not None:
            # a probe: "3probe", seldom anything else
            self.ws.underlying_transport.write(
                b"".join([ws_frame(data, binary) for data, binary in packets]))

    def flush(self) -> None:
        """Write what is queued now (before a close frame)."""
        if self._box is not None:
            self._box.flush()

    def close(self) -> None:
        """Close the connection (after what was already written)."""
        self.flush()
        self._unwritable()
        ws = self.ws
        if ws is not None and not ws.is_disconnected:
            ws.send_close(WSCloseCode.OK)
            ws.disconnect()

    def shutdown(self, noop: bool = False) -> None:
        """Close now (the session ended on an error or on the client's close packet)."""
        self.close()

    def abort(self) -> None:
        self._unwritable()
        if self.ws is not None:
            self.ws.disconnect(False)

    def write_buffer_size(self) -> int:
        ws = self.ws
        queued = int(self._box.queued) if self._box is not None else 0
        if ws is None:
            return queued
        return queued + int(ws.underlying_transport.get_write_buffer_size())


class WebSocketTransport3(WebSocketTransport):
    """Engine.IO revision 3 over WebSocket (Socket.IO v2 clients): a binary message carries
    its packet type (``0x04``) as its first byte, both ways; a text ``b4<base64>`` frame is a
    binary message too, and is what is sent to a client that asked for ``b64``. Text packets
    are the same as in revision 4, so broadcast frames are shared."""

    def __init__(
        self,
        on_open: Callable[[WebSocketTransport], None],
        flusher: Flusher | None = None,
        b64: bool = False,
    ) -> None:
        super().__init__(on_open, flusher)
        self.b64 = b64

    __slots__ = ("b64",)

    def _v3(self, data: bytes, binary: bool) -> tuple[bytes, bool]:
        if not binary:
            return data, False
        if self.b64:
            return eio3.encode_base64_packet(data), False
        return eio3.encode_binary_packet(data), True

    def send(self, packets: list[tuple[bytes, bool]]) -> None:
        super().send([self._v3(data, binary) for data, binary in packets])

    def _deliver(self, data: bytes, binary: bool) -> None:
        try:
            if binary:
                data, binary = eio3.decode_binary_packet(data)
            elif data[:1] == b"b":
                data, binary = eio3.decode_text_packet(data.decode())
        except (EnginePacketError, UnicodeDecodeError):
            data, binary = b"", False  # an empty text packet: the session's parse error
        super()._deliver(data, binary)


class AppWebSocket(WSListener):
    """A WebSocket of the ASGI application behind the own front (``Server(other_asgi_app=)``,
    see :class:`fastsio.asgi.OtherApp`): frames in become ASGI ``websocket.receive`` messages on
    ``incoming``; the application's sends become frames. Not an Engine.IO transport."""

    __slots__ = ("_fragment_type", "_fragments", "_size", "closed", "incoming",
                 "max_message_size", "opened", "ws")

    def __init__(self) -> None:
        super().__init__()
        self.ws: WSTransport | None = None
        self.incoming: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.opened = asyncio.Event()
        self.closed = False
        self.max_message_size = 1_000_000
        self._fragments: list[bytes] | None = None
        self._fragment_type: Any = None
        self._size = 0

    def on_ws_connected(self, transport: WSTransport) -> None:
        self.ws = transport
        self.opened.set()

    def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
        kind = frame.msg_type
        if kind == WSMsgType.CLOSE:
            code: Any = frame.get_close_code() if frame.payload_size >= 2 else 1005
            if not transport.is_close_frame_sent:
                transport.send_close(WSCloseCode.OK)
            transport.disconnect()
            self._gone(int(code))
            return
        if transport.is_close_frame_sent:
            return
        if kind == WSMsgType.TEXT or kind == WSMsgType.BINARY:
            if not frame.fin:
                self._fragments = [frame.get_payload_as_bytes()]
                self._fragment_type = kind
                self._size = frame.payload_size
                return
            self._deliver(frame.get_payload_as_bytes(), kind == WSMsgType.BINARY)
        elif kind == WSMsgType.CONTINUATION and self._fragments is not None:
            self._size += frame.payload_size
            if self._size > self.max_message_size:
                self._fragments = None
                transport.send_close(WSCloseCode.MESSAGE_TOO_BIG)
                transport.disconnect()
                return
            self._fragments.append(frame.get_payload_as_bytes())
            if frame.fin:
                data = b"".join(self._fragments)
                self._fragments = None
                self._deliver(data, self._fragment_type == WSMsgType.BINARY)

    def _deliver(self, data: bytes, binary: bool) -> None:
        if binary:
            self.incoming.put_nowait({"type": "websocket.receive", "bytes": data})
            return
        try:
            text = data.decode()
        except UnicodeDecodeError:
            if self.ws is not None:
                self.ws.send_close(WSCloseCode.INVALID_TEXT)
                self.ws.disconnect()
            return
        self.incoming.put_nowait({"type": "websocket.receive", "text": text})

    def on_ws_disconnected(self, transport: WSTransport) -> None:
        self._gone(1006)
        self.opened.set()

    def _gone(self, code: int) -> None:
        if not self.closed:
            self.closed = True
            self.incoming.put_nowait({"type": "websocket.disconnect", "code": code})

    def send(self, data: str | bytes) -> None:
        """One message of the application: ``str`` as text, ``bytes`` as binary."""
        if self.ws is not None and not self.closed:
            if isinstance(data, str):
                self.ws.send(WSMsgType.TEXT, data.encode())
            else:
                self.ws.send(WSMsgType.BINARY, data)

    def close(self, code: int = 1000, reason: str = "") -> None:
        ws = self.ws
        if ws is not None and not ws.is_disconnected:
            try:
                close_code = WSCloseCode(code)
            except ValueError:
                close_code = WSCloseCode.OK
            ws.send_close(close_code, reason.encode() or None)
            ws.disconnect()
