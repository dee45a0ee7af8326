"""Broadcast operators (``io.to(room).except_(other).emit(...)``) and remote-socket handles."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from fastsio._core.sio_packet import RESERVED_EVENTS
from fastsio.adapter import BroadcastOptions
from fastsio.exceptions import AckTimeout

if TYPE_CHECKING:
    from fastsio.adapter import Adapter
    from fastsio.socket import Handshake, Socket

Room = Hashable

# Every operator without options shares this one (a frozen dataclass costs more to build than a
# whole broadcast to a few sockets: io.emit makes an operator each time). Its ``flags`` dict is
# never written to: adapters copy it (dict(opts.flags)) before adding to it.
_NO_OPTIONS = BroadcastOptions()


def _as_rooms(rooms: Room | Iterable[Room]) -> frozenset[Room]:
    if isinstance(rooms, (str, bytes, int)) or not isinstance(rooms, Iterable):
        return frozenset((rooms,))
    return frozenset(rooms)


def check_event(event: Any) -> None:
    if not isinstance(event, str):
        raise TypeError("event names are strings")
    if event in RESERVED_EVENTS:
        raise ValueError(f'"{event}" is a reserved event name')


class BroadcastOperator:
    """An immutable selection of sockets plus flags; each call returns a new operator."""

    __slots__ = ("_adapter", "_opts")

    def __init__(self, adapter: Adapter, opts: BroadcastOptions | None = None) -> None:
        self._adapter = adapter
        self._opts = opts if opts is not None else _NO_OPTIONS

    def _with(self, **changes: Any) -> BroadcastOperator:
        return BroadcastOperator(self._adapter, replace(self._opts, **changes))

    def to(self, rooms: Room | Iterable[Room]) -> BroadcastOperator:
        """Target these rooms too (union with the rooms already chosen)."""
        return self._with(rooms=self._opts.rooms | _as_rooms(rooms))

    in_ = to

    def except_(self, rooms: Room | Iterable[Room]) -> BroadcastOperator:
        """Leave out the sockets in these rooms."""
        return self._with(except_rooms=self._opts.except_rooms | _as_rooms(rooms))

    def compress(self, compress: bool) -> BroadcastOperator:
        """Per-message compression flag (accepted for compatibility: WebSocket frames are not
        compressed)."""
        return self._with(compress=compress)

    @property
    def volatile(self) -> BroadcastOperator:
        """Drop the packet for clients that are not ready to receive it right now."""
        return self._with(volatile=True)

    @property
    def local(self) -> BroadcastOperator:
        """Only the sockets of this node (the in-memory adapter has no other)."""
        return self._with(local=True)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """Deadline for :meth:`emit_with_ack`."""
        return self._with(timeout=seconds)

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` with ``args`` to every selected socket (encoded once)."""
        if type(event) is not str or event in RESERVED_EVENTS:
            check_event(event)  # raises
        adapter = self._adapter
        adapter.nsp.server._stats.broadcasts += 1
        adapter.broadcast([event, *args], self._opts)

    def send(self, *args: Any) -> None:
        """Emit a ``message`` event."""
        self.emit("message", *args)

    async def emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Emit and collect one answer per socket; :class:`AckTimeout` (with the answers that did
        arrive in ``responses``) when some are missing at the deadline. Zero sockets: ``[]``."""
        check_event(event)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        responses: list[Any] = []
        expected = -1

        def on_ack(_sid: str, args: list[Any]) -> None:
            responses.append(args[0] if len(args) == 1 else (args or None))
            if expected >= 0 and len(responses) >= expected and not done.done():
                done.set_result(None)

        def on_count(n: int) -> None:
            nonlocal expected
            expected = n
            if len(responses) >= n and not done.done():
                done.set_result(None)

        nsp = self._adapter.nsp
        ack_id = nsp._next_ack_id()
        nsp.server._stats.broadcasts += 1
        self._adapter.broadcast_with_ack([event, *args], self._opts, ack_id, on_count, on_ack)
        timeout = self._opts.timeout
        try:
            if timeout is None:
                await done
            else:
                await asyncio.wait_for(asyncio.shield(done), timeout)
        except asyncio.TimeoutError:
            raise AckTimeout(responses=list(responses)) from None
        finally:
            for sock in list(nsp.sockets.values()):
                sock._acks.pop(ack_id, None)
        return responses

    async def fetch_sockets(self) -> list[RemoteSocket]:
        """The selected sockets, as handles that also work for sockets on other nodes."""
        socks = await self._adapter.fetch_sockets(self._opts)
        # A cluster adapter may answer with RemoteSockets for sockets of other nodes.
        return [s if isinstance(s, RemoteSocket) else RemoteSocket.of(s) for s in socks]

    async def sockets_join(self, rooms: Room | Iterable[Room]) -> None:
        """Make the selected sockets join ``rooms``."""
        await self._adapter.add_sockets(self._opts, _as_rooms(rooms))

    async def sockets_leave(self, rooms: Room | Iterable[Room]) -> None:
        """Make the selected sockets leave ``rooms``."""
        await self._adapter.del_sockets(self._opts, _as_rooms(rooms))

    async def disconnect_sockets(self, close: bool = False) -> None:
        """Disconnect the selected sockets (``close`` also closes their connections)."""
        await self._adapter.disconnect_sockets(self._opts, close)

    async def server_side_emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to the other nodes of the cluster (their ``on_server_side``
        handlers); rooms and flags do not apply."""
        check_event(event)
        await self._adapter.server_side_emit([event, *args])

    async def server_side_emit_with_ack(self, event: str, *args: Any) -> list[Any]:
        """Like :meth:`server_side_emit`, collecting one answer per other node: after
        ``timeout(seconds)`` (the adapter's request timeout by default) :class:`AckTimeout`
        carries the answers that did come in ``responses``."""
        check_event(event)
        return await self._adapter.server_side_emit(
            [event, *args], expect_acks=True, timeout=self._opts.timeout
        )


class RemoteSocket:
    """What ``fetch_sockets`` returns: id, handshake, rooms, data, and actions by id."""

    __slots__ = ("_adapter", "data", "handshake", "id", "rooms")

    def __init__(
        self, adapter: Adapter, sid: str, handshake: Handshake, rooms: set[Room], data: Any
    ) -> None:
        self._adapter = adapter
        self.id = sid
        self.handshake = handshake
        self.rooms = rooms
        self.data = data

    @classmethod
    def of(cls, sock: Socket) -> RemoteSocket:
        """The handle of a socket of this node."""
        return cls(sock.nsp.adapter, sock.id, sock.handshake, sock.rooms, sock.data)

    def _op(self) -> BroadcastOperator:
        return BroadcastOperator(self._adapter, BroadcastOptions(rooms=frozenset((self.id,))))

    def emit(self, event: str, *args: Any) -> None:
        """Send ``event`` to this socket, wherever it is connected."""
        self._op().emit(event, *args)

    def timeout(self, seconds: float) -> BroadcastOperator:
        """An operator targeting this socket with an ack deadline (for ``emit_with_ack``)."""
        return self._op().timeout(seconds)

    def join(self, rooms: Room | Iterable[Room]) -> asyncio.Future[None] | None:
        """Join ``rooms``: at once for a local socket, through the adapter otherwise."""
        sock = self._adapter.nsp.sockets.get(self.id)
        if sock is not None:
            sock.join(rooms)
            return None
        return asyncio.ensure_future(self._op().sockets_join(rooms))

    def leave(self, rooms: Room | Iterable[Room]) -> asyncio.Future[None] | None:
        """Leave ``rooms``: at once for a local socket, through the adapter otherwise."""
        sock = self._adapter.nsp.sockets.get(self.id)
        if sock is not None:
            sock.leave(rooms)
            return None
        return asyncio.ensure_future(self._op().sockets_leave(rooms))

    def disconnect(self, close: bool = False) -> asyncio.Future[None] | None:
        """Disconnect it (``close``: its connection too), wherever it is connected."""
        sock = self._adapter.nsp.sockets.get(self.id)
        if sock is not None:
            sock.disconnect(close)
            return None
        return asyncio.ensure_future(self._op().disconnect_sockets(close))

