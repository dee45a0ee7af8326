"""A Socket.IO socket: one client's connection to one namespace."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, overload

from fastsio._core import sio_packet
from fastsio._core.outbox import Outbox
from fastsio.adapter import BroadcastOptions, Session
from fastsio.broadcast import BroadcastOperator, _as_rooms, check_event
from fastsio.encoding import encode_fallback
from fastsio.exceptions import AckTimeout, Disconnected
from fastsio.stats import counted
from fastsio.trace import flags as _trace

if TYPE_CHECKING:
    from fastsio.client import Client
    from fastsio.namespace import Namespace

log = logging.getLogger("fastsio.socket")

# Disconnects after which connection state recovery keeps the session (the official list):
# the client did not leave the namespace on purpose.
RECOVERABLE_REASONS = frozenset(
    (
        "transport error",
        "transport close",
        "forced close",
        "ping timeout",
        "server shutting down",
        "forced server close",
    )
)

Room = Hashable
Handler = Callable[..., Any]
_H = TypeVar("_H", bound=Callable[..., Any])


@dataclass(slots=True)
class Handshake:
    """What the client sent when it connected (the official ``socket.handshake``)."""

    headers: dict[str, str]
    time: str
    address: str
    xdomain: bool
    secure: bool
    issued: int
    url: str
    query: dict[str, str]
    auth: dict[str, Any] = field(default_factory=dict)


def _ack_value(args: tuple[Any, ...]) -> Any:
    if not args:
        return None
    return args[0] if len(args) == 1 else args


class Socket:
    """The server side of one client in one namespace."""

    __slots__ = (
        "__weakref__",
        "_acks",
        "_any",
        "_cleaned",
        "_events",
        "_handlers",
        "_log_position",
        "_middlewares",
        "_out_any",
        "_outbox",
        "client",
        "connected",
        "data",
        "handshake",
        "id",
        "nsp",
        "pid",
        "recovered",
    )

    def __init__(self, nsp: Namespace, client: Client, sid: str, handshake: Handshake) -> None:
        self.nsp = nsp
        self.client = client
        self.id = sid
        self.pid: str | None = None
        self.handshake = handshake
        self.data: dict[str, Any] = {}
        self.connected = False
        self.recovered = False
        self._acks: dict[int, Callable[..., None]] = {}
        self._cleaned = False  # left every room for good: join() does nothing any more
        self._handlers: dict[str, list[Handler]] | None = None
        self._any: list[Handler] | None = None
        self._out_any: list[Handler] | None = None
        self._middlewares: list[Handler] | None = None
        # Where the core's inbox hands this socket's EVENT packets (_core/inbox.pyx): its
        # namespace's _deliver_event, with no _on_packet frame between (about 1k instructions
        # of every event); None while catch-all listeners or middlewares must see them first.
        self._events: Namespace | None = nsp
        self._log_position = 0  # recovery: the log position when this socket's session began
        # Where this socket's own packets go, with no Python call between: the session's outbox
        # (which drops them once the session is no longer open, as EngineSocket.send
        # does); Engine.IO 3 sessions send through their engine socket.
        conn = client.conn
        self._outbox: Outbox | None = conn.outbox if conn.protocol != 3 else None

    def __repr__(self) -> str:
        return f"<Socket {self.nsp.name} {self.id} connected={self.connected}>"

    # -- properties --------------------------------------------------------------------------
    @property
    def rooms(self) -> set[Room]:
        """The rooms this socket is in (a copy); it is always in the room named by its id."""
        return self.nsp.adapter.socket_rooms(self.id)

    @property
    def transport(self) -> str:
        """The current Engine.IO transport: ``polling`` or ``websocket``."""
        return self.client.conn.transport_name

    @property
    def disconnected(self) -> bool:
        """True once the socket left its namespace."""
        return not self.connected

    # -- rooms -------------------------------------------------------------------------------
    def join(self, rooms: Room | Iterable[Room]) -> None:
        """Join one room or several (nothing once the socket has disconnected)."""
        if self._cleaned:
            return
        self.nsp.adapter.add_all(self.id, _as_rooms(rooms))

    def _cleanup(self) -> None:
        """Leave every room, and make any later join() a no-op (the official _cleanup)."""
        self._cleaned = True
        self.nsp.adapter.delete_all(self.id)
        self.nsp._remove(self)

    def leave(self, rooms: Room | Iterable[Room]) -> None:
        """Leave one room or several."""
        for room in _as_rooms(rooms):
            self.nsp.adapter.delete(self.id, room)

    # -- emitting ----------------------------------------------------------------------------
    def emit(self, event: str, *args: Any, callback: Callable[..., None] | None = None) -> None:
        """Send ``event`` to this client; ``callback`` receives the client's ack arguments."""
        self._emit(event, args, callback, None, False)

    def send(self, *args: Any, callback: Callable[..., None] | None = None) -> None:
        """Emit a ``message`` event."""
        self._emit("message", args, callback, None, False)

    write = send

    async def emit_with_ack(self, event: str, *args: Any) -> Any:
        """Emit and wait for the ack: one argument comes back as is, several as a tuple."""
        return await self._emit_with_ack(event, args, None, False)

    async def _emit_with_ack(
        self, event: str, args: tuple[Any, ...], timeout: float | None, volatile: bool
    ) -> Any:
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def on_ack(*ack: Any) -> None:
            if not fut.done():
                fut.set_result(_ack_value(ack))

        def fail(exc: BaseException) -> None:
            if not fut.done():
                fut.set_exception(exc)

        on_ack.fail = fail  # type: ignore[attr-defined]
        ack_id = self._emit(event, args, on_ack, None, volatile)
        if timeout is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            if ack_id is not None:
                self._acks.pop(ack_id, None)
            raise AckTimeout() from None

    def _emit(
        self,
        event: str,
        args: tuple[Any, ...],
        callback: Callable[..., None] | None,
        timeout: float | None,
        volatile: bool,
    ) -> int | None:
        check_event(event)
        data = [event, *args]
        ack_id = None
        if callback is not None:
            ack_id = self.nsp._next_ack_id()
            self._acks[ack_id] = callback
        adapter = self.nsp.adapter
        if adapter.stamps_offsets and ack_id is None and not volatile:
            # Through the adapter, so the packet is logged and stamped like a broadcast.
            adapter.broadcast(data, BroadcastOptions(rooms=frozenset((self.id,))))
            return None
        if self._out_any is not None:
            self._notify_outgoing(data)
        conn = self.client.conn
        if volatile and not conn.writable:
            if ack_id is not None:
                del self._acks[ack_id]
            return None
        try:
            packet = self.nsp.server.encode(sio_packet.EVENT, self.nsp.name, data, ack_id)
        except TypeError:  # not plain JSON: json_default, or a TypeError naming the event
            try:
                packet = encode_fallback(self.nsp.server, sio_packet.EVENT, self.nsp.name, data,
                                         ack_id)
            except TypeError:
                if ack_id is not None:
                    del self._acks[ack_id]
                raise
        server = self.nsp.server
        if server._packets is not None or _trace.socket:  # off: two tests, no call
            counted(server, self.id, packet)
        conn.send(packet)
        return ack_id

    def _send_packet(self, ptype: int, data: Any = None, ack_id: int | None = None) -> None:
        nsp = self.nsp
        server = nsp.server
        try:
            packet = server.encode(ptype, nsp.name, data, ack_id)
        except TypeError:
            packet = encode_fallback(server, ptype, nsp.name, data, ack_id)
        if server._packets is not None or _trace.socket:
            counted(server, self.id, packet)
        box = self._outbox
        if box is not None:
            box.push(packet)
        else:
            self.client.conn.send(packet)

    def timeout(self, seconds: float) -> SocketEmitter:
        """Emit with an ack deadline: ``await socket.timeout(5).emit_with_ack(...)``."""
        return SocketEmitter(self, timeout=seconds)

    @property
    def volatile(self) -> SocketEmitter:
        """Emit that may be dropped when the client is not ready to receive it right now."""
        return SocketEmitter(self, volatile=True)

    def compress(self, compress: bool) -> SocketEmitter:
        """Per-message compression flag (accepted for compatibility: frames are not compressed)."""
        return SocketEmitter(self)

    # -- broadcasting from this socket (everyone but itself) ---------------------------------
    def _broadcast(self) -> BroadcastOperator:
        return BroadcastOperator(
            self.nsp.adapter, BroadcastOptions(except_rooms=frozenset((self.id,)))
        )

    @property
    def broadcast(self) -> BroadcastOperator:
        """Every socket of the namespace but this one."""
        return self._broadcast()

    @property
    def local(self) -> BroadcastOperator:
        """Every socket of the namespace but this one, on this node only."""
        return self._broadcast().local

    def to(self, rooms: Room | Iterable[Room]) -> BroadcastOperator:
        """Sockets in ``rooms``, but not this one."""
        return self._broadcast().to(rooms)

    in_ = to

    def except_(self, rooms: Room | Iterable[Room]) -> BroadcastOperator:
        """Every socket of the namespace but this one and those in ``rooms``."""
        return self._broadcast().except_(rooms)

    # -- listeners ---------------------------------------------------------------------------
    @overload
    def on(self, event: str) -> Callable[[_H], _H]: ...
    @overload
    def on(self, event: str, handler: _H) -> _H: ...
    def on(self, event: str, handler: Handler | None = None) -> Any:
        """Listen to ``event`` from this client only (handler gets the event's arguments)."""

        def register(fn: Handler) -> Handler:
            if self._handlers is None:
                self._handlers = {}
            self._handlers.setdefault(event, []).append(fn)
            return fn

        return register(handler) if handler is not None else register

    def off(self, event: str | None = None, handler: Handler | None = None) -> None:
        """Remove one listener, every listener of ``event``, or every listener."""
        if self._handlers is None:
            return
        if event is None:
            self._handlers = None
        elif handler is None:
            self._handlers.pop(event, None)
        else:
            lst = self._handlers.get(event)
            if lst and handler in lst:
                lst.remove(handler)

    def on_any(self, handler: Handler) -> Handler:
        """Call ``handler(event, *args)`` for every incoming event."""
        self._any = [*(self._any or []), handler]
        self._events = None
        return handler

    def prepend_any(self, handler: Handler) -> Handler:
        """Like :meth:`on_any`, called before the listeners already registered."""
        self._any = [handler, *(self._any or [])]
        self._events = None
        return handler

    def off_any(self, handler: Handler | None = None) -> None:
        """Remove one catch-all listener, or all of them."""
        if handler is None or self._any is None:
            self._any = None
        else:
            rest = [h for h in self._any if h is not handler]
            self._any = rest or None
        self._events = self.nsp if self._any is None and not self._middlewares else None

    def listeners_any(self) -> list[Handler]:
        """The catch-all listeners, in call order."""
        return list(self._any or [])

    def on_any_outgoing(self, handler: Handler) -> Handler:
        """Call ``handler(event, *args)`` for every outgoing event (broadcasts included)."""
        self._out_any = [*(self._out_any or []), handler]
        self.nsp.adapter.update_delivery(self.id)
        return handler

    def prepend_any_outgoing(self, handler: Handler) -> Handler:
        """Like :meth:`on_any_outgoing`, called before the others."""
        self._out_any = [handler, *(self._out_any or [])]
        self.nsp.adapter.update_delivery(self.id)
        return handler

    def off_any_outgoing(self, handler: Handler | None = None) -> None:
        """Remove one outgoing catch-all listener, or all of them."""
        if handler is None or self._out_any is None:
            self._out_any = None
        else:
            rest = [h for h in self._out_any if h is not handler]
            self._out_any = rest or None
        self.nsp.adapter.update_delivery(self.id)

    def listeners_any_outgoing(self) -> list[Handler]:
        """The outgoing catch-all listeners, in call order."""
        return list(self._out_any or [])

    def _notify_outgoing(self, data: list[Any]) -> None:
        for h in list(self._out_any or ()):
            try:
                h(*data)
            except Exception:
                log.exception("error in an outgoing listener")

    def use(self, middleware: Handler) -> Handler:
        """Per-packet middleware ``fn(socket, [event, *args])``: raise to refuse the packet
        (the socket gets an ``error`` event with the exception)."""
        self._middlewares = [*(self._middlewares or []), middleware]
        self._events = None
        return middleware

    # -- disconnect --------------------------------------------------------------------------
    def disconnect(self, close: bool = False) -> None:
        """Leave the namespace (``server namespace disconnect``); ``close`` also closes the
        underlying connection and with it every other namespace of this client."""
        if not self.connected:
            return
        if close:
            self.client.disconnect_all()
            self.client.close()
        else:
            self._send_packet(sio_packet.DISCONNECT)
            self._on_close("server namespace disconnect")

    def _on_close(self, reason: str, description: Any = None) -> None:
        if not self.connected:
            return
        self.nsp.server._stats.disconnected(reason)
        self.nsp._dispatch_disconnect(self, "disconnecting", reason, description)
        adapter = self.nsp.adapter
        if self.pid is not None and reason in RECOVERABLE_REASONS:
            pending = adapter.persist_session(
                Session(self.id, self.pid, list(self.rooms), self.data, self._log_position)
            )
            if pending is not None:
                self.nsp.server._spawn(pending)
        self._cleanup()
        self.connected = False
        self.client._remove(self)
        for cb in self._acks.values():
            fail = getattr(cb, "fail", None)
            if fail is not None:
                fail(Disconnected())
        self._acks.clear()
        self.nsp._dispatch_disconnect(self, "disconnect", reason, description)

    # -- inbound -----------------------------------------------------------------------------
    def _on_packet(self, packet: sio_packet.Packet) -> None:
        ptype = packet.type
        if ptype == sio_packet.EVENT:
            if self._events is not None:
                self._events._deliver_event(self, packet.data, packet.id)
            else:
                self.nsp._dispatch_event(self, packet.data, packet.id)
        elif ptype == sio_packet.ACK:
            cb = self._acks.pop(packet.id, None) if packet.id is not None else None
            if cb is not None:
                try:
                    cb(*packet.data)
                except Exception:
                    log.exception("error in an ack callback")
        elif ptype == sio_packet.DISCONNECT:
            self._on_close("client namespace disconnect")
        else:
            # A second CONNECT, or a CONNECT_ERROR from a client: a protocol violation.
            self.client.protocol_violation()

    def _reply(self, ack_id: int, event: str, value: Any) -> None:
        """Acknowledge the client's ``event`` with its handler's return value: a tuple spreads
        into the ack's arguments, ``None`` sends none."""
        if not self.connected:
            return
        if value is None:
            args: list[Any] = []
        elif isinstance(value, tuple):
            args = list(value)
        else:
            args = [value]
        try:
            self._send_packet(sio_packet.ACK, args, ack_id)
        except TypeError as exc:
            raise TypeError(f"the return value of event {event!r}: {exc}") from None


class SocketEmitter:
    """``socket.timeout(s)`` / ``socket.volatile``: an emit with flags."""

    __slots__ = ("_socket", "_timeout", "_volatile")

    def __init__(self, socket: Socket, timeout: float | None = None, volatile: bool = False):
        self._socket = socket
        self._timeout = timeout
        self._volatile = volatile

    def timeout(self, seconds: float) -> SocketEmitter:
        return SocketEmitter(self._socket, seconds, self._volatile)

    @property
    def volatile(self) -> SocketEmitter:
        return SocketEmitter(self._socket, self._timeout, True)

    def compress(self, compress: bool) -> SocketEmitter:
        return self

    def emit(self, event: str, *args: Any, callback: Callable[..., None] | None = None) -> None:
        """Emit; with a timeout, ``callback(err, *args)`` gets ``AckTimeout`` or ``None`` first."""
        sock = self._socket
        if callback is None or self._timeout is None:
            sock._emit(event, args, callback, None, self._volatile)
            return
        loop = asyncio.get_running_loop()
        user_cb = callback
        state: dict[str, Any] = {}

        def on_ack(*ack: Any) -> None:
            state["timer"].cancel()
            user_cb(None, *ack)

        def fail(exc: BaseException) -> None:
            state["timer"].cancel()
            user_cb(exc)

        on_ack.fail = fail  # type: ignore[attr-defined]

        ack_id = sock._emit(event, args, on_ack, None, self._volatile)

        def on_timeout() -> None:
            if ack_id is not None and sock._acks.pop(ack_id, None) is not None:
                user_cb(AckTimeout())

        state["timer"] = loop.call_later(self._timeout, on_timeout)

    async def emit_with_ack(self, event: str, *args: Any) -> Any:
        return await self._socket._emit_with_ack(event, args, self._timeout, self._volatile)

    def send(self, *args: Any) -> None:
        self.emit("message", *args)
