"""The adapter: rooms, broadcast fan-out and (later) sessions, for one namespace.

This in-memory adapter serves one process. Everything that a cluster adapter would have to ask
other nodes about is ``async`` here too, so code above the adapter never assumes that every
socket lives in this process.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from fastsio._core import sio_packet
from fastsio._core.rooms import RoomIndex

if TYPE_CHECKING:
    from fastsio.namespace import Namespace
    from fastsio.socket import Socket

Room = Hashable


@dataclass(frozen=True)
class BroadcastOptions:
    """Who a broadcast goes to and how: the official adapter's ``{rooms, except, flags}``."""

    rooms: frozenset[Room] = frozenset()
    except_rooms: frozenset[Room] = frozenset()
    volatile: bool = False
    compress: bool = True
    local: bool = False
    timeout: float | None = None
    flags: dict[str, Any] = field(default_factory=dict)


class Adapter:
    """In-memory adapter over the Cython room index."""

    def __init__(self, nsp: Namespace) -> None:
        self.nsp = nsp
        self.index = RoomIndex()

    # -- rooms -------------------------------------------------------------------------------
    def add_all(self, sid: str, rooms: Iterable[Room]) -> None:
        self.index.add_all(sid, rooms)

    def delete(self, sid: str, room: Room) -> None:
        self.index.delete(sid, room)

    def delete_all(self, sid: str) -> None:
        self.index.delete_all(sid)

    def socket_rooms(self, sid: str) -> set[Room]:
        return self.index.rooms_of(sid)

    @property
    def rooms(self) -> dict[Room, set[str]]:
        return self.index.rooms

    def _targets(self, opts: BroadcastOptions) -> list[Socket]:
        sockets = self.nsp.sockets
        out = []
        for sid in self.index.targets(opts.rooms, opts.except_rooms):
            sock = sockets.get(sid)
            if sock is not None:
                out.append(sock)
        return out

    # -- fan-out -----------------------------------------------------------------------------
    def broadcast(self, data: list[Any], opts: BroadcastOptions) -> None:
        """Send the EVENT ``data`` (``[event, *args]``) to every target: encoded once."""
        self._write(data, None, opts)

    def _write(self, data: list[Any], ack_id: int | None, opts: BroadcastOptions) -> list[Socket]:
        parts = sio_packet.encode(sio_packet.EVENT, self.nsp.name, data, ack_id)
        packets = [(parts[0], False)]
        packets.extend((p, True) for p in parts[1:])
        single = parts[0] if len(parts) == 1 else None
        volatile = opts.volatile
        targets = self._targets(opts)
        for sock in targets:
            if sock._out_any is not None:
                sock._notify_outgoing(data)
            conn = sock.client.conn
            if volatile and not conn.writable:
                continue
            if single is not None:
                conn.send_packet(single, False)
            else:
                conn.send_packets(packets)
        return targets

    def broadcast_with_ack(
        self,
        data: list[Any],
        opts: BroadcastOptions,
        ack_id: int,
        on_count: Callable[[int], None],
        on_ack: Callable[[str, list[Any]], None],
    ) -> None:
        """Broadcast with one ack id for all targets; ``on_count`` learns how many will answer."""
        targets = self._targets(opts)
        for sock in targets:
            sock._acks[ack_id] = _AckRelay(sock.id, on_ack)
        self._write(data, ack_id, opts)
        on_count(len(targets))

    # -- utilities (awaitable: a cluster adapter asks the other nodes) ---------------------------
    async def fetch_sockets(self, opts: BroadcastOptions) -> list[Socket]:
        return self._targets(opts)

    async def add_sockets(self, opts: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = list(rooms)
        for sock in self._targets(opts):
            sock.join(rooms)

    async def del_sockets(self, opts: BroadcastOptions, rooms: Iterable[Room]) -> None:
        rooms = list(rooms)
        for sock in self._targets(opts):
            sock.leave(rooms)

    async def disconnect_sockets(self, opts: BroadcastOptions, close: bool) -> None:
        for sock in self._targets(opts):
            sock.disconnect(close)

    async def server_count(self) -> int:
        return 1

    async def server_side_emit(self, data: list[Any], expect_acks: bool = False) -> list[Any]:
        """Send to the other nodes of the cluster: there are none in memory."""
        return []

    def close(self) -> None:
        """Release what the adapter holds (nothing in memory)."""


class _AckRelay:
    """An ack callback that also says which socket answered (for broadcast acks)."""

    __slots__ = ("callback", "sid")

    def __init__(self, sid: str, callback: Callable[[str, list[Any]], None]) -> None:
        self.sid = sid
        self.callback = callback

    def __call__(self, *args: Any) -> None:
        self.callback(self.sid, list(args))
